"""Scale-out by scope: one release renders one writer per scope (Deployment, state, lock, identity,
ConfigMap), each selecting only its own pod; a one-scope values file renders as before; overlapping
scopes are refused. The three-scope release is also linted and validated strictly with every other
value set (test_helm_chart.py runs over all of ci/)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from packaging_tools import CHART, Render

THREE = CHART / "ci" / "three-scopes-values.yaml"
SCOPE_LABEL = "cmk.azure.io/scope"


def _docs(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text(encoding="utf-8")) if d]


def _by_name(docs: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {d["metadata"]["name"]: d for d in docs if d["kind"] == kind}


def _selects(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return selector.items() <= labels.items()


def test_three_scopes_render_one_writer_each_with_its_own_state_identity_and_config(
    rendered: dict[str, Path],
) -> None:
    docs = _docs(rendered["three-scopes"])
    values = yaml.safe_load(THREE.read_text(encoding="utf-8"))
    scopes = {s["name"]: s for s in values["scopes"]}
    deployments = _by_name(docs, "Deployment")
    assert set(deployments) == {f"cmk-cmk-controller-{n}" for n in scopes}
    configmaps = _by_name(docs, "ConfigMap")
    accounts = _by_name(docs, "ServiceAccount")
    claims = _by_name(docs, "PersistentVolumeClaim")
    pod_labels = {n: d["spec"]["template"]["metadata"]["labels"] for n, d in deployments.items()}

    states = set()
    for name, scope in scopes.items():
        dep = deployments[f"cmk-cmk-controller-{name}"]
        assert dep["spec"]["replicas"] == 1 and dep["spec"]["strategy"]["type"] == "Recreate"
        assert dep["metadata"]["annotations"]["cmk.azure.io/subscriptions"] == ",".join(
            scope["subscriptions"]
        )
        selector = dep["spec"]["selector"]["matchLabels"]
        assert selector[SCOPE_LABEL] == name
        # a Deployment's selector picks its own pod and no other scope's
        assert [n for n, labels in pod_labels.items() if _selects(selector, labels)] == [
            dep["metadata"]["name"]
        ]
        pod = dep["spec"]["template"]["spec"]
        (container,) = pod["containers"]
        cm = configmaps[container["envFrom"][0]["configMapRef"]["name"]]
        assert cm["data"]["CMKCTL_PATH"] == scope["controller"]["path"]
        assert cm["data"]["CMKCTL_SOURCE"] == values["controller"]["source"]  # the shared default
        sa = accounts[pod["serviceAccountName"]]
        client_id = sa["metadata"]["annotations"]["azure.workload.identity/client-id"]
        assert client_id == scope["azure"]["workloadIdentity"]["clientId"]
        (state,) = [v for v in pod["volumes"] if v["name"] == "state"]
        if cm["data"]["CMKCTL_STATE"].startswith("azureblob://"):
            assert cm["data"]["CMKCTL_STATE"] == scope["state"]["azureblob"]["url"]
            assert "emptyDir" in state
            states.add(cm["data"]["CMKCTL_STATE"])
        else:
            claim = state["persistentVolumeClaim"]["claimName"]
            assert claim in claims and claim.endswith(f"-{name}-state")
            states.add(claim)
        assert dep["spec"]["template"]["metadata"]["annotations"]["checksum/config"]
    assert len(states) == len(scopes)  # one journal and one lock per scope
    checksums = {
        d["spec"]["template"]["metadata"]["annotations"]["checksum/config"] for d in deployments.values()
    }
    assert len(checksums) == len(scopes)  # each pod restarts when its own ConfigMap changes

    # per-scope overrides: mode, resources, egress, and the ServiceMonitor only where enabled
    assert configmaps["cmk-cmk-controller-sandbox"]["data"]["CMKCTL_MODE"] == "report"
    assert configmaps["cmk-cmk-controller-weu"]["data"]["CMKCTL_MODE"] == "apply"
    nam = deployments["cmk-cmk-controller-nam"]["spec"]["template"]["spec"]["containers"][0]
    assert nam["resources"]["limits"]["memory"] == "768Mi"
    weu = deployments["cmk-cmk-controller-weu"]["spec"]["template"]["spec"]["containers"][0]
    assert weu["resources"]["limits"]["memory"] == "512Mi"
    assert set(_by_name(docs, "ServiceMonitor")) == {"cmk-cmk-controller-weu", "cmk-cmk-controller-nam"}
    sandbox = _by_name(docs, "NetworkPolicy")["cmk-cmk-controller-sandbox"]["spec"]["egress"][1]
    assert sandbox["to"] == [{"ipBlock": {"cidr": "10.20.0.4/32"}}]
    assert [p["port"] for p in sandbox["ports"]] == [443, 8443]

    # every Service and NetworkPolicy selects exactly one scope's pod
    for kind, path in (
        ("Service", ("spec", "selector")),
        ("NetworkPolicy", ("spec", "podSelector", "matchLabels")),
    ):
        for obj in _by_name(docs, kind).values():
            selector = obj[path[0]][path[1]] if len(path) == 2 else obj[path[0]][path[1]][path[2]]
            assert len([n for n, labels in pod_labels.items() if _selects(selector, labels)]) == 1, obj


def test_a_one_scope_values_file_keeps_its_names_and_selector(rendered: dict[str, Path]) -> None:
    """Without `scopes` the objects keep the names and the (immutable) Deployment selector a one-scope
    release has: `helm upgrade` of an existing release changes nothing it cannot."""
    docs = _docs(rendered["default"])
    (dep,) = _by_name(docs, "Deployment").values()
    assert dep["metadata"]["name"] == "cmk-cmk-controller"
    assert dep["spec"]["selector"]["matchLabels"] == {
        "app.kubernetes.io/name": "cmk-controller",
        "app.kubernetes.io/instance": "cmk",
    }
    assert set(_by_name(docs, "PersistentVolumeClaim")) == {"cmk-cmk-controller-state"}
    assert set(_by_name(docs, "ConfigMap")) == {"cmk-cmk-controller"}
    assert set(_by_name(docs, "Service")) == {"cmk-cmk-controller-metrics"}
    assert "cmk.azure.io/subscriptions" not in dep["metadata"].get("annotations", {})


def _scope(name: str, sub: str, **extra: Any) -> dict[str, Any]:
    return {
        "name": name,
        "subscriptions": [sub],
        "controller": {"path": f"estates/{name}"},
        "azure": {"workloadIdentity": {"clientId": f"00000000-0000-0000-0000-0000000000{len(name):02d}"}},
        **extra,
    }


SUB_A = "11111111-1111-1111-1111-111111111111"
SUB_B = "22222222-2222-2222-2222-222222222222"


@pytest.mark.parametrize(
    ("scopes", "message"),
    [
        ([_scope("a", SUB_A), _scope("a", SUB_B)], 'the name "a" is used twice'),
        (
            [_scope("a", SUB_A), _scope("b", SUB_A.upper())],
            f"subscription {SUB_A} is in scope a and in scope b",
        ),
        (
            [_scope("a", SUB_A), {**_scope("b", SUB_B), "controller": {"path": "estates/a"}}],
            "scopes a and b follow the same spec",
        ),
        (
            [
                _scope("a", SUB_A, state={"persistence": {"existingClaim": "shared"}}),
                _scope("b", SUB_B, state={"persistence": {"existingClaim": "shared"}}),
            ],
            "scopes a and b share one state (claim shared)",
        ),
        (
            [
                _scope("a", SUB_A, state={"type": "azureblob", "azureblob": {"url": "azureblob://st/journal"}}),
                _scope("b", SUB_B, state={"type": "azureblob", "azureblob": {"url": "azureblob://st/journal"}}),
            ],
            "share one state (azureblob://st/journal)",
        ),
        (
            [_scope("a", SUB_A), {**_scope("b", SUB_B), "azure": {}}],
            "clientId is required when azure.workloadIdentity.enabled is true (scope b)",
        ),
        (
            [
                _scope("a", SUB_A, serviceAccount={"name": "one"}),
                _scope("b", SUB_B, serviceAccount={"name": "one"}),
            ],
            "would both create ServiceAccount one",
        ),
        ([{"name": "a", "controller": {"path": "x"}}], "subscriptions"),
        ([{**_scope("Not_A_Label", SUB_A)}], "name"),
    ],
)
def test_overlapping_or_incomplete_scopes_are_refused(
    helm_template: Render, tmp_path: Path, scopes: list[dict[str, Any]], message: str
) -> None:
    values = tmp_path / "values.yaml"
    values.write_text(
        yaml.safe_dump({"controller": {"source": "https://git.example.com/specs.git"}, "scopes": scopes}),
        encoding="utf-8",
    )
    done = helm_template("-f", str(values))
    assert done.returncode != 0
    assert message in done.stderr


def test_a_scope_can_turn_off_what_the_defaults_turn_on(helm_template: Render, tmp_path: Path) -> None:
    """`false` in a scope replaces a `true` default (sprig's merge would keep the default)."""
    values = tmp_path / "values.yaml"
    values.write_text(
        yaml.safe_dump(
            {
                "controller": {"source": "https://git.example.com/specs.git", "suspend": True},
                "scopes": [
                    _scope(
                        "a",
                        SUB_A,
                        state={"persistence": {"enabled": False}},
                        controller={"path": "a", "suspend": False},
                    ),
                    _scope("b", SUB_B, networkPolicy={"enabled": False}),
                ],
            }
        ),
        encoding="utf-8",
    )
    done = helm_template("-f", str(values))
    assert done.returncode == 0, done.stderr
    docs = [d for d in yaml.safe_load_all(done.stdout) if d]
    deployments = _by_name(docs, "Deployment")
    assert (
        "--suspend"
        not in deployments["cmk-cmk-controller-a"]["spec"]["template"]["spec"]["containers"][0]["args"]
    )
    assert (
        "--suspend"
        in deployments["cmk-cmk-controller-b"]["spec"]["template"]["spec"]["containers"][0]["args"]
    )
    assert set(_by_name(docs, "PersistentVolumeClaim")) == {"cmk-cmk-controller-b-state"}
    assert set(_by_name(docs, "NetworkPolicy")) == {"cmk-cmk-controller-a"}
