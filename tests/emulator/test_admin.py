"""The admin API, faults, throttling, ARM front-door checks and the `python -m emulator` entry point."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import requests
from azure.core.exceptions import HttpResponseError, ServiceRequestError, ServiceResponseError
from emu_helpers import SUB, cluster_model, create_cluster, make_rg, refused

CLUSTERS = f"/subscriptions/{SUB}/resourceGroups/rg1/providers/Microsoft.OperationalInsights/clusters"


def test_clock_can_be_set_and_advanced(emulator: Any) -> None:
    assert emulator.set_clock("2027-01-01T00:00:00Z").startswith("2027-01-01T00:00:00")
    assert emulator.advance(90).startswith("2027-01-01T00:01:30")
    assert emulator.now().startswith("2027-01-01T00:01:30")  # frozen (time-scale 0) in tests


def test_request_log_records_each_call_and_can_be_cleared(emulator: Any, sdk: Any) -> None:
    make_rg(emulator)
    la = sdk.loganalytics()
    refused(lambda: la.clusters.get("rg1", "nothere"))
    log = emulator.requests()
    assert [(r["method"], r["host"], r["status"]) for r in log] == [
        ("PUT", "management.azure.com", 201),
        ("GET", "management.azure.com", 404),
    ]
    assert log[1]["path"].endswith("/clusters/nothere") and log[1]["time"]
    assert log[1]["api_version"] == "2025-07-01"  # what every supported SDK sends for clusters
    emulator.clear_requests()
    assert emulator.requests() == []


def test_arm_requires_a_bearer_token_and_a_known_api_version(emulator: Any) -> None:
    make_rg(emulator)
    r = emulator.arm("GET", CLUSTERS, token=None)
    assert r.status_code == 401 and r.json()["error"]["code"] == "AuthenticationFailed"
    r = emulator.arm("GET", CLUSTERS, api_version="2019-01-01")
    assert r.status_code == 400 and r.json()["error"]["code"] == "InvalidApiVersionParameter"
    for v in ("2020-08-01", "2021-06-01", "2022-10-01", "2023-09-01", "2025-02-01", "2025-07-01"):
        assert emulator.arm("GET", CLUSTERS, api_version=v).status_code == 200
    # ARM routes case-insensitively (clients send /resourcegroups/ as well as /resourceGroups/)
    assert (
        emulator.arm(
            "GET", CLUSTERS.lower().replace("microsoft.operationalinsights", "MICROSOFT.operationalinsights")
        ).status_code
        == 200
    )


def test_fault_status_with_retry_after_hits_count_times(emulator: Any, sdk: Any) -> None:
    make_rg(emulator)
    emulator.fault(method="GET", path="/clusters$", status=503, retry_after=7, count=1)
    r = emulator.arm("GET", CLUSTERS)
    assert r.status_code == 503 and r.headers["Retry-After"] == "7"
    assert emulator.arm("GET", CLUSTERS).status_code == 200  # count exhausted


def test_fault_probability_zero_never_fires(emulator: Any) -> None:
    make_rg(emulator)
    emulator.fault(path="/clusters", status=500, probability=0.0)
    assert all(emulator.arm("GET", CLUSTERS).status_code == 200 for _ in range(5))


def test_fault_connection_reset_surfaces_as_transport_error(emulator: Any, sdk: Any) -> None:
    make_rg(emulator)
    emulator.fault(method="GET", path="/clusters/clu1$", reset=True, count=1)
    la = sdk.loganalytics()
    with pytest.raises((ServiceRequestError, ServiceResponseError)):
        la.clusters.get("rg1", "clu1")
    assert refused(lambda: la.clusters.get("rg1", "clu1"))[0] == 404


def test_fault_after_accept_serves_the_request_then_answers_the_fault(emulator: Any) -> None:
    """`after_accept`: the write takes effect, and only then the client gets a 500 (or a reset):
    the case where a request reached Azure but its client cannot know it."""
    make_rg(emulator)
    emulator.fault(method="PUT", path="/resourcegroups/rg2$", status=500, after_accept=True, count=1)
    r = emulator.arm("PUT", f"/subscriptions/{SUB}/resourcegroups/rg2", {"location": "eastus"},
                     api_version="2021-04-01")
    assert r.status_code == 500 and r.json()["error"]["code"] == "InternalServerError"
    assert emulator.arm("GET", f"/subscriptions/{SUB}/resourcegroups/rg2", api_version="2021-04-01"
                        ).status_code == 200  # it was created all the same
    emulator.fault(method="PUT", path="/resourcegroups/rg3$", reset=True, after_accept=True, count=1)
    with pytest.raises(requests.ConnectionError):
        emulator.arm("PUT", f"/subscriptions/{SUB}/resourcegroups/rg3", {"location": "eastus"},
                     api_version="2021-04-01")
    assert emulator.arm("GET", f"/subscriptions/{SUB}/resourcegroups/rg3", api_version="2021-04-01"
                        ).status_code == 200
    puts = [(r["path"].rsplit("/", 1)[-1], r["status"]) for r in emulator.requests() if r["method"] == "PUT"]
    assert puts[-2:] == [("rg2", 500), ("rg3", 0)]


def test_fault_delay_slows_the_answer(emulator: Any) -> None:
    make_rg(emulator)
    emulator.fault(path="/clusters$", delay=0.3, count=1)
    t0 = time.monotonic()
    assert emulator.arm("GET", CLUSTERS).status_code == 200
    assert time.monotonic() - t0 >= 0.3


def test_fault_fail_operation_makes_the_lro_end_failed(emulator: Any, sdk: Any) -> None:
    make_rg(emulator)
    emulator.fault(method="PUT", path="/clusters/clu1$", fail_operation=True, count=1)
    la = sdk.loganalytics()
    with pytest.raises(HttpResponseError):
        la.clusters.begin_create_or_update("rg1", "clu1", cluster_model()).result()
    assert la.clusters.get("rg1", "clu1").provisioning_state == "Failed"


def test_put_on_a_failed_cluster_reprovisions_it(emulator: Any, sdk: Any) -> None:
    """ARM re-drives a Failed provisioning on the next PUT: 202 + async operation, Creating, then
    Succeeded; no second cluster is counted (C2) and the name is not 'taken' (C11)."""
    make_rg(emulator)
    emulator.configure(durations={"cluster_create": 60})
    emulator.fault(method="PUT", path="/clusters/clu1$", fail_operation=True, count=1)
    la = sdk.loganalytics()
    with pytest.raises(HttpResponseError):
        poller = la.clusters.begin_create_or_update("rg1", "clu1", cluster_model())
        emulator.advance(60)
        poller.result()
    assert la.clusters.get("rg1", "clu1").provisioning_state == "Failed"
    poller = la.clusters.begin_create_or_update("rg1", "clu1", cluster_model())
    assert la.clusters.get("rg1", "clu1").provisioning_state == "Creating"
    emulator.advance(60)
    assert poller.result().provisioning_state == "Succeeded"
    assert len(list(la.clusters.list())) == 1


def test_fault_stick_operation_keeps_it_in_progress(emulator: Any, sdk: Any) -> None:
    make_rg(emulator)
    emulator.fault(method="PUT", path="/clusters/clu1$", stick_operation=3600)
    la = sdk.loganalytics()
    la.clusters.begin_create_or_update("rg1", "clu1", cluster_model())
    emulator.advance(3599)
    assert la.clusters.get("rg1", "clu1").provisioning_state == "Creating"
    emulator.advance(1)
    assert la.clusters.get("rg1", "clu1").provisioning_state == "Succeeded"


def test_throttling_buckets_answer_429_with_retry_after(emulator: Any) -> None:
    make_rg(emulator)
    emulator.configure(throttling=True)
    first = emulator.arm("GET", CLUSTERS)
    assert int(first.headers["x-ms-ratelimit-remaining-subscription-reads"]) == 249
    w = emulator.arm(
        "PUT", f"/subscriptions/{SUB}/resourcegroups/rg2", {"location": "eastus"}, api_version="2021-04-01"
    )
    assert int(w.headers["x-ms-ratelimit-remaining-subscription-writes"]) == 199


def test_seed_soft_deleted_cluster_reserves_its_name(emulator: Any, sdk: Any) -> None:
    emulator.seed(
        {
            "resource_groups": [{"subscription": SUB, "name": "rg1", "location": "eastus"}],
            "clusters": [
                {
                    "subscription": SUB,
                    "resource_group": "rg1",
                    "name": "gone",
                    "deleted": "2026-11-25T00:00:00Z",
                }
            ],
        }
    )
    la = sdk.loganalytics()
    assert refused(lambda: la.clusters.get("rg1", "gone"))[0] == 404
    assert refused(lambda: la.clusters.begin_create_or_update("rg1", "gone", cluster_model()))[0] == 409


def test_harm_events_list_is_empty_after_reset(emulator: Any, sdk: Any) -> None:
    make_rg(emulator)
    la = sdk.loganalytics()
    create_cluster(la)
    from azure.mgmt.loganalytics.models import ClusterPatch, Identity

    la.clusters.begin_update("rg1", "clu1", ClusterPatch(identity=Identity(type="None"))).result()
    assert len(emulator.events()) == 1
    emulator.reset()
    assert emulator.events() == []


def test_bad_admin_requests_are_400_not_crashes(emulator: Any) -> None:
    r = requests.post(
        f"{emulator.url}/_emulator/config",
        json={"durations": {"nope": 1}},
        verify=emulator.ca_file,
        timeout=10,
    )
    assert r.status_code == 400
    r = requests.post(
        f"{emulator.url}/_emulator/seed",
        json={"clusters": [{"name": "x"}]},
        verify=emulator.ca_file,
        timeout=10,
    )
    assert r.status_code == 400


def test_python_dash_m_emulator_serves_and_writes_the_env_file(tmp_path: Path) -> None:
    env_file = tmp_path / "emulator.env"
    seed = tmp_path / "estate.json"
    seed.write_text(
        json.dumps({"clusters": [{"subscription": SUB, "resource_group": "rg1", "name": "seeded"}]})
    )
    root = Path(__file__).resolve().parents[2]
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "emulator",
            "--port",
            "0",
            "--env-file",
            str(env_file),
            "--seed",
            str(seed),
            "--clock",
            "2026-06-01T00:00:00Z",
            "--time-scale",
            "0",
            "--limits",
            "current",
            "--durations",
            '{"cluster_create": 5}',
        ],
        cwd=root,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(root)},
    )
    try:
        line = proc.stdout.readline() if proc.stdout else ""
        assert line.startswith("export CMKCTL_EMULATOR=https://127.0.0.1:")
        values = dict(
            ln.removeprefix("export ").split("=", 1) for ln in env_file.read_text().splitlines() if ln.strip()
        )
        url, ca = values["CMKCTL_EMULATOR"], values["CMKCTL_CA_BUNDLE"]
        s = requests.Session()
        s.trust_env = False
        clock = s.get(f"{url}/_emulator/clock", verify=ca, timeout=10).json()
        assert clock["now"].startswith("2026-06-01T00:00:00")
        config = s.get(f"{url}/_emulator/config", verify=ca, timeout=10).json()
        assert config["limits"] == "current"
        assert config["durations"]["cluster_create"] == 5
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0


def test_throttling_exhausted_bucket_answers_429_with_retry_after(emulator: Any) -> None:
    make_rg(emulator)
    emulator.configure(throttling=True, throttle_limits={"reads": [3, 0.01]})
    statuses = [emulator.arm("GET", CLUSTERS).status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 429]
    throttled = emulator.arm("GET", CLUSTERS)
    assert throttled.status_code == 429
    assert throttled.json()["error"]["code"] == "SubscriptionRequestsThrottled"
    assert int(throttled.headers["Retry-After"]) >= 1
    # writes have their own bucket
    w = emulator.arm(
        "PUT", f"/subscriptions/{SUB}/resourcegroups/rg2", {"location": "eastus"}, api_version="2021-04-01"
    )
    assert w.status_code == 201


def test_concurrent_clients_see_consistent_state(emulator: Any, sdk: Any) -> None:
    """The executor runs parallel workers: many simultaneous writes must neither fail nor get lost."""
    from concurrent.futures import ThreadPoolExecutor

    from emu_helpers import link, workspace

    make_rg(emulator)
    create_cluster(sdk.loganalytics())

    def one(i: int) -> str:
        la = sdk.loganalytics()
        workspace(la, name=f"wsc{i:03d}")
        state = link(la, "rg1", f"wsc{i:03d}", "clu1").provisioning_state
        return str(getattr(state, "value", state))

    with ThreadPoolExecutor(max_workers=8) as pool:
        states = list(pool.map(one, range(24)))
    assert states == ["Succeeded"] * 24
    cluster = sdk.loganalytics().clusters.get("rg1", "clu1")
    assert len(cluster.associated_workspaces) == 24
    assert emulator.events() == []


def test_chunked_request_bodies_are_read(emulator: Any) -> None:
    def body() -> Any:
        yield b'{"advance_'
        yield b'seconds": 60}'

    s = requests.Session()
    s.trust_env = False
    before = emulator.now()
    r = s.post(f"{emulator.url}/_emulator/clock", data=body(), verify=emulator.ca_file, timeout=10)
    assert r.status_code == 200 and r.json()["now"] != before
    assert r.json()["now"].startswith("2026-11-30T06:01:00")


def test_fault_headers_change_the_real_answer(emulator: Any) -> None:
    """`headers`: the request is served as usual and its answer carries the given headers (a string sets,
    null drops): an LRO `Location` naming another host, as a hostile or broken front door could."""
    make_rg(emulator, "rg2")
    evil = "https://evil.example.com/operationresults/x"
    emulator.fault(method="DELETE", path="/resourcegroups/rg2$", headers={"Location": evil}, count=1)
    r = emulator.arm("DELETE", f"/subscriptions/{SUB}/resourcegroups/rg2", api_version="2021-04-01")
    assert r.status_code == 202 and r.headers["Location"] == evil
    make_rg(emulator, "rg2")
    emulator.fault(method="DELETE", path="/resourcegroups/rg2$", headers={"Location": None}, count=1)
    r = emulator.arm("DELETE", f"/subscriptions/{SUB}/resourcegroups/rg2", api_version="2021-04-01")
    assert r.status_code == 202 and "Location" not in r.headers
