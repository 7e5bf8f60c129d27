"""The /metrics an operator alerts on, scraped after a pass against the emulator: blocked changes, days
to the nearest key expiry (rules K1, K2), the share of declared workspaces on the key, report findings
by severity, the last successful pass and the build's version."""

from __future__ import annotations

import time
from datetime import datetime, timedelta
from typing import Any

import requests
from gitops_repo import RG, SUB, UAI_PRINCIPAL, GitRepo, MakeReconciler, seed, spec_docs
from prometheus_client.parser import text_string_to_metric_families

from controller import __version__
from controller.reconcile.server import StatusServer

VAULT = "https://kvgitops.vault.azure.net/"
EXPIRES_IN_DAYS = 10  # inside the default 30-day warning (rule K1)


def _scrape(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    session = requests.Session()
    session.trust_env = False
    text = session.get(url, timeout=10).text
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_metrics_an_operator_alerts_on(emulator: Any, repo: GitRepo, make_reconciler: MakeReconciler) -> None:
    expires = datetime.fromisoformat(emulator.now()) + timedelta(days=EXPIRES_IN_DAYS)
    seed(emulator, workspaces=("law1", "law2"))
    emulator.seed(
        {
            "vaults": [
                {
                    "name": "kvgitops",
                    "subscription": SUB,
                    "resourceGroup": RG,
                    "location": "westeurope",
                    "softDelete": True,
                    "purgeProtection": True,
                    "accessPolicies": [{"objectId": UAI_PRINCIPAL, "keys": ["get", "wrapKey", "unwrapKey"]}],
                    "keys": [
                        {
                            "name": "cmk",
                            "versions": [{"version": "0" * 31 + "1", "expires": expires.isoformat()}],
                        }
                    ],
                }
            ]
        }
    )
    docs = spec_docs(workspaces=("law1", "law2"))
    docs[0]["spec"]["key"] = {"vaultUri": VAULT, "name": "cmk"}
    repo.commit_spec(docs, "cluster on the key, two workspaces")
    rec = make_reconciler(repo.url)
    server = StatusServer(rec, "127.0.0.1:0")
    server.start()
    try:
        before = _scrape(f"http://127.0.0.1:{server.port}/metrics")
        started = time.time()
        out = rec.run_pass()
        first = _scrape(f"http://127.0.0.1:{server.port}/metrics")
        rec.run_pass()  # observes what the first one applied
        after = _scrape(f"http://127.0.0.1:{server.port}/metrics")
    finally:
        server.stop()
    assert out.record.result == "applied", out.record.message
    assert before[("cmkctl_last_successful_pass_timestamp_seconds", ())] == 0
    ratio = before[("cmkctl_workspaces_cmk_protected_ratio", ())]
    assert ratio != ratio  # NaN before any pass: no value, not 0
    assert first[("cmkctl_workspaces_cmk_protected_ratio", ())] == 0.0  # as the first pass found them
    assert after[("cmkctl_workspaces_cmk_protected_ratio", ())] == 1.0  # both declared workspaces linked
    assert EXPIRES_IN_DAYS - 1 < after[("cmkctl_key_expiry_days", ())] <= EXPIRES_IN_DAYS
    assert after[("cmkctl_findings", (("severity", "warning"),))] >= 1  # the key expires within 30 days
    assert after[("cmkctl_findings", (("severity", "critical"),))] == 0
    assert after[("cmkctl_blocked_changes", ())] == 0
    assert started <= after[("cmkctl_last_successful_pass_timestamp_seconds", ())] <= time.time()
    assert after[("cmkctl_build_info", (("version", __version__),))] == 1

