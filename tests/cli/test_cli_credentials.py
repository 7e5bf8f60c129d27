"""No Azure credential: the user reads one line that says what to do, never a traceback or a secret.

`cmkctl` runs as a user runs it, in a subprocess with an empty environment and no emulator, so the
real DefaultAzureCredential is built and fails. AZURE_TOKEN_CREDENTIALS (azure-identity's own
setting, which a user may set too) keeps managed identity out of the chain here: the instance
metadata endpoint (169.254.169.254) is never contacted by the test suite. The product builds the
credential with nothing excluded.
"""

from __future__ import annotations

import itertools
import subprocess
import sys
import time
from pathlib import Path

import pytest

from controller.azure import credentials
from controller.model import clouds

ROOT = Path(__file__).resolve().parents[2]
MINIMAL = ROOT / "examples" / "minimal" / "cluster.yaml"
SECRET_VALUE = "s3cr3t-value-never-printed"


def cmkctl(args: list[str], home: Path, **env: str) -> tuple[int, str, str, float]:
    began = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-m", "controller.cli", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=home,
        env={"PATH": "/usr/bin:/bin", "HOME": str(home), **env},
    )
    return proc.returncode, proc.stdout, proc.stderr, time.monotonic() - began


def spec_for(cloud: clouds.Cloud, directory: Path) -> Path:
    text = MINIMAL.read_text(encoding="utf-8").replace("vault.azure.net", cloud.vault_suffix)
    path = directory / "cluster.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_plan_without_credentials_says_az_login(tmp_path: Path) -> None:
    """Scenario: a first `cmkctl plan` on a machine that never signed in to Azure."""
    code, out, err, took = cmkctl(["plan", "-f", str(MINIMAL)], tmp_path, AZURE_TOKEN_CREDENTIALS="dev")

    assert code == 1
    assert out == ""
    assert err.count("\n") == 1 and "Traceback" not in err
    assert "no Azure credential for AzureCloud: run `az login`, or set AZURE_TENANT_ID" in err
    assert "AZURE_FEDERATED_TOKEN_FILE (workload identity)" in err
    assert "az cloud set" not in err  # public Azure is az's default cloud
    assert took < 60


def test_sovereign_cloud_says_az_cloud_set_first(tmp_path: Path) -> None:
    """Scenario: `apply --cloud AzureUSGovernment` without a sign-in: `az login` alone would sign in to
    public Azure, so the line says to switch the CLI's cloud first."""
    spec = spec_for(clouds.AZURE_US_GOVERNMENT, tmp_path)
    code, _, err, _ = cmkctl(
        ["apply", "-f", str(spec), "--auto-approve", "--cloud", "AzureUSGovernment"],
        tmp_path,
        AZURE_TOKEN_CREDENTIALS="dev",
    )

    assert code == 1
    assert err.count("\n") == 1 and "Traceback" not in err
    assert "no Azure credential for AzureUSGovernment: run `az login` (after " in err
    assert "`az cloud set --name AzureUSGovernment`)" in err


def test_incomplete_environment_names_what_is_missing_and_never_the_secret(tmp_path: Path) -> None:
    """Scenario: a CI job sets the client secret but forgot the tenant and client ids."""
    spec = spec_for(clouds.AZURE_CHINA, tmp_path)
    code, out, err, _ = cmkctl(
        ["plan", "-f", str(spec)],
        tmp_path,
        AZURE_CLOUD="AzureChinaCloud",
        AZURE_TOKEN_CREDENTIALS="EnvironmentCredential",
        AZURE_CLIENT_SECRET=SECRET_VALUE,
    )

    assert code == 1
    assert err.count("\n") == 1 and "Traceback" not in err
    assert (
        "no Azure credential for AzureChinaCloud: AZURE_CLIENT_SECRET set but AZURE_TENANT_ID and "
        "AZURE_CLIENT_ID missing" in err
    )
    assert SECRET_VALUE not in out + err


@pytest.mark.parametrize("cloud", clouds.CLOUDS, ids=lambda c: c.name)
def test_every_help_line_fits_and_hides_values(cloud: clouds.Cloud) -> None:
    """Every combination of set variables gives one line short enough to survive errors.map_error."""
    names = [credentials.TENANT, credentials.CLIENT, credentials.SECRET, credentials.CERTIFICATE,
             credentials.FEDERATED]
    details = ["", "DefaultAzureCredential failed\nAADSTS7000215: Invalid client secret provided."]
    for n in range(len(names) + 1):
        for chosen, detail in itertools.product(itertools.combinations(names, n), details):
            env = dict.fromkeys(chosen, SECRET_VALUE)
            line = credentials.no_credential_help(cloud, env, detail)
            assert "\n" not in line and len(line) <= credentials.HELP_LIMIT, line
            assert SECRET_VALUE not in line
            assert "az login" in line


def test_a_refused_sign_in_names_the_entra_error_code() -> None:
    detail = "DefaultAzureCredential failed\n\tEnvironmentCredential: AADSTS7000215: bad"
    line = credentials.no_credential_help(clouds.AZURE_CHINA, {}, detail)
    expected = "Microsoft Entra ID (login.chinacloudapi.cn) refused the credential (AADSTS7000215): "
    assert line.startswith(expected)
