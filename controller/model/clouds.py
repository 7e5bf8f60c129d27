"""The Azure clouds cmkctl can talk to, as data: public Azure, Azure US Government, Azure China.

One setting selects the cloud: `--cloud NAME` on the commands that talk to Azure, else the
`AZURE_CLOUD` environment variable, else public Azure. Names are the Azure CLI's (`az cloud list`),
so the value of `az cloud show --query name` can be used as is.

Each cloud is a separate Azure: its own Resource Manager endpoint, its own Microsoft Entra authority,
and its own DNS suffixes for Key Vault, Managed HSM and Storage. Values are the Azure CLI's cloud
table (`azure/cli/core/cloud.py`: resource_manager, active_directory, keyvault_dns, mhsm_dns,
storage_endpoint), azure-identity's `AzureAuthorityHosts`, and azure-mgmt-core's ARM token scopes
(`get_arm_endpoints`; US Government's is the management.core audience).

Pure: no environment reading here; callers pass the mapping they read.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from controller.errors import CmkError

ENV_VAR = "AZURE_CLOUD"


@dataclass(frozen=True, slots=True)
class Cloud:
    """One Azure cloud's endpoints and DNS suffixes (suffixes without a leading dot)."""

    name: str  # the Azure CLI's name: AzureCloud, AzureUSGovernment, AzureChinaCloud
    arm_endpoint: str  # Azure Resource Manager, no trailing slash
    arm_scope: str  # the token scope for Resource Manager (azure-mgmt-core's get_arm_endpoints)
    authority_host: str  # Microsoft Entra ID (azure-identity `authority`)
    vault_suffix: str  # <vault>.<vault_suffix>
    hsm_suffix: str  # <hsm>.<hsm_suffix>
    storage_suffix: str  # <account>.blob.<storage_suffix>

    @property
    def arm_host(self) -> str:
        return self.arm_endpoint.removeprefix("https://")

    def vault_scope(self, managed_hsm: bool = False) -> str:
        """The token scope a Key Vault / Managed HSM of this cloud asks for in its 401 challenge."""
        return f"https://{self.hsm_suffix if managed_hsm else self.vault_suffix}/.default"

    @property
    def key_vault_suffixes(self) -> tuple[str, str]:
        return (self.vault_suffix, self.hsm_suffix)

    def blob_endpoint(self, account: str) -> str:
        return f"https://{account}.blob.{self.storage_suffix}"

    def owns_vault_host(self, host: str) -> bool:
        """Is `host` a Key Vault or Managed HSM of this cloud (`<name>.<suffix>`)?"""
        _, _, suffix = host.lower().partition(".")
        return suffix in self.key_vault_suffixes

    def __str__(self) -> str:
        return self.name


AZURE_PUBLIC = Cloud(
    name="AzureCloud",
    arm_endpoint="https://management.azure.com",
    arm_scope="https://management.azure.com/.default",
    authority_host="login.microsoftonline.com",
    vault_suffix="vault.azure.net",
    hsm_suffix="managedhsm.azure.net",
    storage_suffix="core.windows.net",
)
AZURE_US_GOVERNMENT = Cloud(
    name="AzureUSGovernment",
    arm_endpoint="https://management.usgovcloudapi.net",
    arm_scope="https://management.core.usgovcloudapi.net/.default",
    authority_host="login.microsoftonline.us",
    vault_suffix="vault.usgovcloudapi.net",
    hsm_suffix="managedhsm.usgovcloudapi.net",
    storage_suffix="core.usgovcloudapi.net",
)
AZURE_CHINA = Cloud(
    name="AzureChinaCloud",
    arm_endpoint="https://management.chinacloudapi.cn",
    arm_scope="https://management.chinacloudapi.cn/.default",
    authority_host="login.chinacloudapi.cn",
    vault_suffix="vault.azure.cn",
    hsm_suffix="managedhsm.azure.cn",
    storage_suffix="core.chinacloudapi.cn",
)

CLOUDS: tuple[Cloud, ...] = (AZURE_PUBLIC, AZURE_US_GOVERNMENT, AZURE_CHINA)
DEFAULT = AZURE_PUBLIC
NAMES: tuple[str, ...] = tuple(c.name for c in CLOUDS)


class UnknownCloud(CmkError):
    """A cloud name that is not one of NAMES."""


def cloud_named(name: str, *, source: str = "--cloud") -> Cloud:
    """The cloud called `name` (case-insensitive, as `az cloud set` accepts it)."""
    wanted = name.strip().lower()
    for cloud in CLOUDS:
        if cloud.name.lower() == wanted:
            return cloud
    raise UnknownCloud(f"{source}: unknown Azure cloud {name!r}; valid names are {', '.join(NAMES)}")


def select(option: str | None, env: Mapping[str, str]) -> Cloud:
    """The one selection rule: `--cloud` if given, else $AZURE_CLOUD, else public Azure."""
    if option is not None and option.strip():
        return cloud_named(option, source="--cloud")
    from_env = env.get(ENV_VAR, "").strip()
    if from_env:
        return cloud_named(from_env, source=ENV_VAR)
    return DEFAULT


def cloud_of_vault_host(host: str) -> Cloud | None:
    """Which cloud a Key Vault / Managed HSM host name belongs to, if any."""
    for cloud in CLOUDS:
        if cloud.owns_vault_host(host):
            return cloud
    return None


def is_managed_hsm_host(host: str) -> bool:
    _, _, suffix = host.lower().partition(".")
    return any(suffix == c.hsm_suffix for c in CLOUDS)


def is_arm_host(host: str) -> bool:
    return any(host.lower() == c.arm_host for c in CLOUDS)
