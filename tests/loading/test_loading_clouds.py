"""The selected Azure cloud (--cloud / AZURE_CLOUD) decides which vault URIs a spec may use.

Through the real CLI entry point, as a user runs it: each cloud accepts its own Key Vault and
Managed HSM host names, a vault of another cloud is refused at its file:line naming both clouds, and
an unknown cloud name is one line listing the valid names.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from controller.cli.app import main
from controller.errors import SpecError
from controller.loading import load
from controller.model import clouds

ROOT = Path(__file__).resolve().parents[2]
SUB = "3f2a6c1e-7b4d-4c2a-9e51-0a8b6d2f4c11"


def cluster(vault: str) -> str:
    """A Cluster document; the vaultUri is on line 13."""
    return (
        "apiVersion: cmk.azure.io/v1\n"  # 1
        "kind: Cluster\n"  # 2
        "metadata:\n"  # 3
        "  name: cmkprod01\n"  # 4
        "spec:\n"  # 5
        f"  subscription: {SUB}\n"  # 6
        "  resourceGroup: rg-mon\n"  # 7
        "  location: westeurope\n"  # 8
        "  identity:\n"  # 9
        "    type: SystemAssigned\n"  # 10
        "  capacity: 1000\n"  # 11
        "  key:\n"  # 12
        f"    vaultUri: {vault}\n"  # 13
        "    name: cmk\n"  # 14
    )


def spec_file(tmp_path: Path, vault: str) -> Path:
    path = tmp_path / "cluster.yaml"
    path.write_text(cluster(vault), encoding="utf-8")
    return path


@pytest.mark.parametrize("cloud", clouds.CLOUDS, ids=lambda c: c.name)
def test_each_cloud_accepts_its_vault_and_hsm_hosts(cloud: clouds.Cloud, tmp_path: Path) -> None:
    for host in (f"kv-cmk.{cloud.vault_suffix}", f"hsm-cmk.{cloud.hsm_suffix}"):
        desired = load([spec_file(tmp_path, f"https://{host.upper()}")], cloud=cloud)
        key = desired.clusters[0].spec.key
        assert key is not None and key.vault_uri == f"https://{host}/"
        assert key.ref().is_managed_hsm == host.startswith("hsm-")


@pytest.mark.parametrize("cloud", clouds.CLOUDS, ids=lambda c: c.name)
def test_a_vault_of_another_cloud_is_refused_naming_both(
    cloud: clouds.Cloud, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Scenario: a spec written for public Azure validated for US Government (and so on round the
    table) fails at the vaultUri line, saying which cloud the vault is in and how to select it."""
    monkeypatch.delenv(clouds.ENV_VAR, raising=False)
    other = clouds.CLOUDS[(clouds.CLOUDS.index(cloud) + 1) % len(clouds.CLOUDS)]
    path = spec_file(tmp_path, f"https://kv-cmk.{other.vault_suffix}/")

    code = main(["validate", str(path), "--cloud", cloud.name])

    err = capsys.readouterr().err
    assert code == 1
    assert f"{path}:13: spec.key.vaultUri: " in err
    assert f"is a vault in {other.name}, but the selected cloud is {cloud.name}" in err
    assert "--cloud or AZURE_CLOUD" in err


def test_azure_cloud_environment_variable_selects_the_cloud(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    path = spec_file(tmp_path, "https://kv-cmk.vault.azure.cn/")
    monkeypatch.delenv(clouds.ENV_VAR, raising=False)
    assert main(["validate", str(path)]) == 1  # public Azure by default
    capsys.readouterr()

    monkeypatch.setenv(clouds.ENV_VAR, "AzureChinaCloud")
    assert main(["validate", str(path)]) == 0
    assert "key https://kv-cmk.vault.azure.cn/keys/cmk" in capsys.readouterr().out
    # the option wins over the environment
    assert main(["validate", str(path), "--cloud", "AzureCloud"]) == 1


def test_public_azure_is_unchanged_by_default(tmp_path: Path) -> None:
    with pytest.raises(SpecError) as err:
        load([spec_file(tmp_path, "https://kv-cmk.vault.example.com/")])
    assert "https://<name>.vault.azure.net/ or https://<name>.managedhsm.azure.net/" in str(err.value)
    with pytest.raises(SpecError) as err:
        load([spec_file(tmp_path, "https://kv-cmk.vault.example.com/")], cloud=clouds.AZURE_US_GOVERNMENT)
    assert "https://<name>.vault.usgovcloudapi.net/" in str(err.value)


@pytest.mark.parametrize(
    ("argv", "env", "source"),
    [
        (["validate", "{spec}", "--cloud", "AzureGermanCloud"], {}, "--cloud"),
        (["plan", "-f", "{spec}", "--cloud", "azure-us-gov"], {}, "--cloud"),
        (["apply", "-f", "{spec}", "--auto-approve"], {"AZURE_CLOUD": "Public"}, "AZURE_CLOUD"),
        (["drift", "-f", "{spec}"], {"AZURE_CLOUD": "mars"}, "AZURE_CLOUD"),
        (["report", "-f", "{spec}"], {"AZURE_CLOUD": "mars"}, "AZURE_CLOUD"),
        (["controller", "--source", "{spec}", "--once", "--cloud", "mars"], {}, "--cloud"),
    ],
)
def test_an_unknown_cloud_is_one_line_listing_the_names(
    argv: list[str],
    env: dict[str, str],
    source: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.delenv(clouds.ENV_VAR, raising=False)
    monkeypatch.setenv("CMKCTL_STATE", str(tmp_path / "state"))
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    path = spec_file(tmp_path, "https://kv-cmk.vault.azure.net/")

    code = main([a.replace("{spec}", str(path)) for a in argv])

    err = capsys.readouterr().err
    assert code == 1
    assert err.count("\n") == 1 and "Traceback" not in err
    assert f"{source}: unknown Azure cloud" in err
    assert "valid names are AzureCloud, AzureUSGovernment, AzureChinaCloud" in err


def test_cloud_names_are_the_azure_clis_and_case_insensitive() -> None:
    assert clouds.select("azureusgovernment", {}) is clouds.AZURE_US_GOVERNMENT
    assert clouds.select(None, {"AZURE_CLOUD": "AzureChinaCloud"}) is clouds.AZURE_CHINA
    assert clouds.select(None, {}) is clouds.AZURE_PUBLIC
    assert clouds.select("AzureCloud", {"AZURE_CLOUD": "AzureChinaCloud"}) is clouds.AZURE_PUBLIC
