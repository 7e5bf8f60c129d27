"""The Azure clouds the emulator can play: each is a separate Azure with its own host names.

One emulator instance plays one cloud (`python -m emulator --cloud AzureUSGovernment`), as a real
sovereign cloud shares nothing with public Azure. Host names are the real ones (Azure CLI cloud
table: resource_manager, keyvault_dns, mhsm_dns; Key Vault's challenge names the cloud's authority).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class CloudHosts:
    name: str
    arm_host: str
    login_host: str  # the authority in Key Vault's 401 challenge
    vault_suffix: str
    hsm_suffix: str


PUBLIC = CloudHosts(
    name="AzureCloud",
    arm_host="management.azure.com",
    login_host="login.windows.net",
    vault_suffix="vault.azure.net",
    hsm_suffix="managedhsm.azure.net",
)
US_GOVERNMENT = CloudHosts(
    name="AzureUSGovernment",
    arm_host="management.usgovcloudapi.net",
    login_host="login.microsoftonline.us",
    vault_suffix="vault.usgovcloudapi.net",
    hsm_suffix="managedhsm.usgovcloudapi.net",
)
CHINA = CloudHosts(
    name="AzureChinaCloud",
    arm_host="management.chinacloudapi.cn",
    login_host="login.chinacloudapi.cn",
    vault_suffix="vault.azure.cn",
    hsm_suffix="managedhsm.azure.cn",
)
CLOUDS = {c.name: c for c in (PUBLIC, US_GOVERNMENT, CHINA)}


def by_name(name: str) -> CloudHosts:
    for cloud in CLOUDS.values():
        if cloud.name.lower() == name.strip().lower():
            return cloud
    raise ValueError(f"unknown cloud {name!r}; known: {', '.join(CLOUDS)}")
