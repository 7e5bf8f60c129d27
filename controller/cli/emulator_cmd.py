"""`cmkctl emulator ...`: run the project's Azure emulator (`python -m emulator ...`) to try cmkctl by hand.

The product must not import the emulator (import-linter: emulator-independent), so this starts it as
a separate process with the same interpreter and passes every other argument through unchanged. It
talks to the running emulator like any client: over HTTPS, through its admin API (`/_emulator/...`,
emulator/README.md) and through the Azure SDKs.

    cmkctl emulator [--seed-from-spec PATH]... [--fast] [--env-file FILE] [python -m emulator options]
    cmkctl emulator grant (--cluster NAME | --principal OBJECT_ID) [--vault NAME|URI] [-f PATH]...
                          [--subscription SUB]...

`--seed-from-spec` seeds what the spec assumes already exists (resource groups, workspaces, storage
accounts, user-assigned identities, vaults and HSMs with their keys and purge protection) but no
cluster and no link: that is `cmkctl apply`'s work. `--fast` makes long operations take seconds
(`/_emulator/config`). The env file is removed at start and written (whole, atomically) only once the
emulator is seeded, so a script may wait for it and then source it.

`grant` plays the platform team's step after a SystemAssigned cluster is created (rule C7): key access
for the cluster's principal, as `az keyvault set-policy` (an access policy through Resource Manager) or,
on a Managed HSM, `az keyvault role assignment create` (the emulator's documented admin call; the HSM
then lists the assignment on its role-assignment API, which `plan` reads).

Stopping `cmkctl emulator` (SIGTERM, SIGINT, SIGHUP) stops the emulator: the signal is forwarded and
the wrapper waits for the server to exit.

The container image ships without the emulator (an unauthenticated admin API has no place next to
Azure credentials): there, this command says so instead of failing with a Python import error.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import signal
import subprocess
import sys
import tempfile
import threading
from collections.abc import Sequence
from pathlib import Path
from types import FrameType
from typing import Any

import requests
import typer

from controller.azure import access
from controller.azure.clients import AzureClients
from controller.cli.guard import guarded
from controller.errors import CmkError
from controller.loading import load
from controller.model import clouds, ids
from controller.model.settings import Settings
from controller.model.spec import DesiredState
from controller.service.emulator_estate import HSM_CRYPTO_ROLE, VAULT_CRYPTO_ROLE, estate_for

NOT_INSTALLED = (
    "error: the emulator is not available in this installation. The container image leaves it out on"
    " purpose (it serves an unauthenticated admin API); run `cmkctl emulator` from a source checkout"
    " or a `pip install` of cmk-controller instead."
)

# `--fast`: simulated seconds per operation kind, short enough to try a whole story by hand in a
# minute, long enough that progress and "operation running" (rules C6, W5) are still visible.
FAST_DURATIONS: dict[str, float] = {
    "cluster_create": 4.0,
    "cluster_update": 1.0,
    "cluster_delete": 1.0,
    "link": 1.0,
    "unlink": 1.0,
    "workspace_create": 0.0,
}
# ... and how often the SDKs poll those operations (real Azure: 30 s; the emulator default 0 = spin).
FAST_POLLING_INTERVAL = "0.25"
FORWARDED_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)


class EmulatorCommandError(CmkError):
    """`cmkctl emulator` cannot do what was asked (no emulator to talk to, an unknown cluster...)."""


def register(app: typer.Typer) -> None:
    app.command(
        "emulator",
        context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
        add_help_option=False,
    )(emulator)


def emulator(ctx: typer.Context) -> None:
    """Run the local Azure emulator (`--seed-from-spec`, `--fast`), or `grant` key access in it."""
    if importlib.util.find_spec("emulator") is None:
        print(NOT_INSTALLED, file=sys.stderr)
        raise typer.Exit(1)
    args = list(ctx.args)
    if args and args[0] == "grant":
        raise typer.Exit(guarded(lambda: grant(args[1:])))
    raise typer.Exit(guarded(lambda: serve(args)))


# -- serve ----------------------------------------------------------------------------------------


def _serve_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="cmkctl emulator",
        add_help=False,
        description="Run the local Azure emulator. Options not listed here go to `python -m emulator`.",
        epilog="Then: `cmkctl emulator grant --help` grants a cluster identity key access (rule C7).",
    )
    p.add_argument("-h", "--help", action="store_true", help="this help, then the emulator's own")
    p.add_argument(
        "--seed-from-spec",
        action="append",
        default=[],
        metavar="PATH",
        help="seed what this spec assumes already exists: resource groups, workspaces, storage accounts, "
        "user-assigned identities, vaults and HSMs with keys (no clusters, no links); repeatable",
    )
    p.add_argument(
        "--fast",
        action="store_true",
        help="operations take seconds (cluster create 4 s, key update, link and unlink 1 s), and the env "
        f"file sets CMKCTL_POLLING_INTERVAL={FAST_POLLING_INTERVAL}",
    )
    p.add_argument(
        "--env-file",
        metavar="FILE",
        help="write the shell-sourceable environment here once the emulator is ready (and seeded)",
    )
    p.add_argument("--cloud", help="which Azure to play (and validate the spec for)")
    return p


def serve(argv: Sequence[str]) -> int:
    """Start the emulator, seed and configure it, publish its environment, then wait for it."""
    parser = _serve_parser()
    opts, rest = parser.parse_known_args(list(argv))
    command = [sys.executable, "-m", "emulator", *rest]
    if opts.cloud:
        command += ["--cloud", opts.cloud]
    if opts.help:
        parser.print_help()
        print("\n`python -m emulator` options:", flush=True)
        return subprocess.call([*command, "--help"])  # noqa: S603 - our interpreter and module, a list
    estate: dict[str, Any] | None = None
    if opts.seed_from_spec:
        cloud = clouds.select(opts.cloud, os.environ)
        estate = estate_for(load(list(opts.seed_from_spec), cloud=cloud))
    if opts.env_file:  # a script waiting for the file must never source the last run's
        Path(opts.env_file).unlink(missing_ok=True)
    child = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)  # noqa: S603 - our interpreter
    _forward_signals(child)
    try:
        env = _read_env(child)
        if env is None:  # the emulator could not start; it said why on stderr
            return child.wait()
        if opts.fast:
            _admin(env, "config", {"durations": FAST_DURATIONS})
            env["CMKCTL_POLLING_INTERVAL"] = FAST_POLLING_INTERVAL
        if estate is not None:
            _admin(env, "seed", estate)
    except BaseException:
        _stop(child)
        raise
    text = "".join(f"export {k}={v}\n" for k, v in env.items())
    if opts.env_file:
        _write_atomically(Path(opts.env_file), text)
    if estate is not None:
        print(
            f"# seeded: {len(estate['resource_groups'])} resource groups, {len(estate['workspaces'])} "
            f"workspaces, {len(estate['storage_accounts'])} storage accounts, {len(estate['identities'])} "
            f"user-assigned identities, {len(estate['vaults'])} vaults/HSMs (no clusters, no links)",
            file=sys.stderr,
        )
    print(text, end="", flush=True)
    relay = threading.Thread(target=_relay, args=(child,), daemon=True)
    relay.start()
    code = child.wait()
    relay.join(timeout=2)
    return code


def _forward_signals(child: subprocess.Popen[str]) -> None:
    """Stopping the wrapper stops the server: each signal goes to the child, which shuts down."""

    def forward(signum: int, _frame: FrameType | None) -> None:
        if child.poll() is None:
            child.send_signal(signum)

    for sig in FORWARDED_SIGNALS:
        signal.signal(sig, forward)


def _read_env(child: subprocess.Popen[str]) -> dict[str, str] | None:
    """The `export NAME=VALUE` lines the emulator prints once it listens (None if it exited)."""
    env: dict[str, str] = {}
    assert child.stdout is not None  # noqa: S101 - Popen(stdout=PIPE)
    while "CMKCTL_EMULATOR" not in env or "CMKCTL_CA_BUNDLE" not in env:
        line = child.stdout.readline()
        if not line:
            return None
        name, sep, value = line.strip().removeprefix("export ").partition("=")
        if sep:
            env[name] = value
    return env


def _relay(child: subprocess.Popen[str]) -> None:
    if child.stdout is None:
        return
    for line in child.stdout:
        sys.stdout.write(line)
        sys.stdout.flush()


def _stop(child: subprocess.Popen[str]) -> None:
    if child.poll() is None:
        child.terminate()
        try:
            child.wait(timeout=10)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()


def _write_atomically(path: Path, text: str) -> None:
    """Readers waiting for the file see it whole or not at all."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)
    Path(tmp).replace(path)


def _admin(env: dict[str, str], what: str, body: Any) -> Any:
    """One admin call (`/_emulator/{what}`) over HTTPS, trusting the emulator's own CA."""
    base = env.get("CMKCTL_EMULATOR")
    if not base:
        raise EmulatorCommandError(
            "no emulator to talk to: CMKCTL_EMULATOR is not set (start `cmkctl emulator --env-file FILE` "
            "and source FILE)"
        )
    session = requests.Session()
    session.trust_env = False  # REQUESTS_CA_BUNDLE or a proxy in the environment must not win
    try:
        resp = session.post(
            f"{base.rstrip('/')}/_emulator/{what}",
            json=body,
            verify=env.get("CMKCTL_CA_BUNDLE") or True,
            timeout=120,
        )
    except requests.RequestException as exc:
        raise EmulatorCommandError(
            f"the emulator at {base} did not answer /_emulator/{what}: {exc}"
        ) from None
    finally:
        session.close()
    if resp.status_code >= 400:
        try:
            message = resp.json()["error"]["message"]
        except (ValueError, KeyError, TypeError):
            message = resp.text[:300]
        raise EmulatorCommandError(f"the emulator refused /_emulator/{what} ({resp.status_code}): {message}")
    return resp.json()


# -- grant ----------------------------------------------------------------------------------------


def _grant_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="cmkctl emulator grant",
        description="Give a cluster identity get/wrapKey/unwrapKey on its key (rule C7) in the emulator, "
        "as `az keyvault set-policy` or, on a Managed HSM, `az keyvault role assignment create` would.",
    )
    who = p.add_mutually_exclusive_group(required=True)
    who.add_argument("--cluster", metavar="NAME", help="the cluster whose identity gets access")
    who.add_argument("--principal", metavar="OBJECT_ID", help="the principal (object id) that gets access")
    p.add_argument(
        "--vault",
        metavar="NAME|URI",
        help="a Key Vault name, or a vault or Managed HSM URI (default: the cluster's key in the spec)",
    )
    p.add_argument(
        "-f", "--file", action="append", default=[], metavar="PATH", help="the spec (finds the cluster's key)"
    )
    p.add_argument(
        "--subscription",
        action="append",
        default=[],
        metavar="SUB",
        help="where to look for the cluster and the vault (default: the spec's subscriptions)",
    )
    p.add_argument("--cloud", help="Azure cloud name (default $AZURE_CLOUD, else AzureCloud)")
    return p


def grant(argv: Sequence[str]) -> int:
    """Grant key access in the emulator; prints what it did in the Azure CLI's terms."""
    parser = _grant_parser()
    try:
        opts = parser.parse_args(list(argv))
    except SystemExit as exc:  # --help, or a usage error argparse already printed
        return int(exc.code or 0)
    settings = Settings.read()
    if not settings.emulator:
        raise EmulatorCommandError(
            "`cmkctl emulator grant` changes key access in the emulator only, and CMKCTL_EMULATOR is not set "
            "(source the env file `cmkctl emulator --env-file FILE` wrote); on Azure use "
            "`az keyvault set-policy` or `az keyvault role assignment create`"
        )
    cloud = clouds.select(opts.cloud, os.environ)
    desired = load(list(opts.file), cloud=cloud) if opts.file else None
    subscriptions = {s.lower() for s in opts.subscription} | (desired.subscriptions() if desired else set())
    clients = AzureClients(cloud=cloud)
    try:
        principal, vault_uri, label = _who_and_where(opts, desired, clients, subscriptions, cloud)
        host = ids.KeyRef(vault_uri, "x").vault_host
        if ids.KeyRef(vault_uri, "x").is_managed_hsm:
            _role_assignment(settings, vault_uri, principal, HSM_CRYPTO_ROLE)
            print(
                f"granted {label} ({principal}) the role '{HSM_CRYPTO_ROLE}' on Managed HSM {host} "
                f"(as: az keyvault role assignment create --hsm-name {host.split('.')[0]} "
                f"--role '{HSM_CRYPTO_ROLE}' --assignee-object-id {principal} --scope /keys)"
            )
            return 0
        vault = access.find_vault(clients, subscriptions, vault_uri)
        if vault is None:
            where = ", ".join(sorted(subscriptions)) or "no subscription (give --subscription or -f)"
            raise EmulatorCommandError(f"no Key Vault {host} in the subscriptions searched: {where}")
        if vault.rbac:
            _role_assignment(settings, vault_uri, principal, VAULT_CRYPTO_ROLE)
            print(
                f"granted {label} ({principal}) the role '{VAULT_CRYPTO_ROLE}' on vault {vault.name} "
                f"(as: az role assignment create --role '{VAULT_CRYPTO_ROLE}' --assignee-object-id "
                f"{principal} --scope {vault.id})"
            )
            return 0
        access.add_key_access_policy(clients, vault, principal)
        print(
            f"granted {label} ({principal}) get, wrapKey, unwrapKey on vault {vault.name} "
            f"(as: az keyvault set-policy -n {vault.name} --object-id {principal} "
            "--key-permissions get wrapKey unwrapKey)"
        )
        return 0
    finally:
        clients.close()


def _who_and_where(
    opts: argparse.Namespace,
    desired: DesiredState | None,
    clients: AzureClients,
    subscriptions: set[str],
    cloud: clouds.Cloud,
) -> tuple[str, str, str]:
    """(principal object id, vault URI, how to name the grantee) from the options and the spec."""
    vault_uri: str | None = None
    if opts.vault:
        given = str(opts.vault)
        if "/" not in given and "." not in given:
            given = f"https://{given}.{cloud.vault_suffix}/"
        vault_uri = ids.parse_vault_uri(given, cloud)
    if opts.principal:
        if not ids.is_guid(opts.principal):
            raise EmulatorCommandError(f"--principal {opts.principal!r} is not an object id (GUID)")
        if vault_uri is None:
            raise EmulatorCommandError("--principal needs --vault: which vault to grant access in")
        return str(opts.principal), vault_uri, "principal"
    name = str(opts.cluster)
    spec_cluster = (
        next((c for c in desired.clusters if name in (c.metadata.name, c.azure_name)), None)
        if desired
        else None
    )
    if spec_cluster is not None:
        subscriptions.add(spec_cluster.spec.subscription)
        name = spec_cluster.azure_name
        if vault_uri is None and spec_cluster.spec.key is not None:
            vault_uri = spec_cluster.spec.key.vault_uri
    if not subscriptions:
        raise EmulatorCommandError("--cluster needs -f SPEC or --subscription: where to look for it")
    found = access.find_clusters(clients, subscriptions, name)
    if spec_cluster is not None:
        found = [c for c in found if ids.id_key(c.id) == ids.id_key(spec_cluster.arm_id)]
    if not found:
        raise EmulatorCommandError(
            f"no cluster {name} in subscriptions {', '.join(sorted(subscriptions))}: "
            "`cmkctl apply` creates it"
        )
    if len(found) > 1:
        raise EmulatorCommandError(
            f"{len(found)} clusters are called {name}: {', '.join(c.id for c in found)}; give -f SPEC"
        )
    cluster = found[0]
    if not cluster.principal_id:
        raise EmulatorCommandError(
            f"cluster {name} has no identity principal yet (identity {cluster.identity_type})"
        )
    if vault_uri is None:
        if cluster.key is None:
            raise EmulatorCommandError(f"cluster {name} names no key: give --vault")
        vault_uri = cluster.key.vault_uri
    return cluster.principal_id, vault_uri, f"cluster {name}"


def _role_assignment(settings: Settings, vault_uri: str, principal: str, role: str) -> None:
    env = {"CMKCTL_EMULATOR": settings.emulator or "", "CMKCTL_CA_BUNDLE": settings.ca_bundle or ""}
    _admin(env, "role-assignments", {"vault": vault_uri, "principal_id": principal, "role": role})
