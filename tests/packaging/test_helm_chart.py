"""The Helm chart: lints strictly, renders for every value set, every manifest validates strictly
(built-in kinds with kubernetes-validate, the ServiceMonitor with its CRD schema), checkov has no
failed check, and the rendered Deployment has the properties a platform team relies on."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from packaging_tools import CHART, KUBE_VERSION, ROOT, VALUE_SETS, Render, Tools


def _docs(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text(encoding="utf-8")) if d]


def _kind(docs: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [d for d in docs if d["kind"] == kind]


def test_there_are_several_value_sets() -> None:
    assert {"default", "servicemonitor", "ssh-report", "existing-claim", "three-scopes"} <= set(VALUE_SETS)


@pytest.mark.parametrize("value_set", VALUE_SETS)
def test_chart_lints_strictly(tools: Tools, value_set: str) -> None:
    done = tools.run(tools.helm, "lint", "--strict", CHART, "-f", CHART / "ci" / f"{value_set}-values.yaml")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "0 chart(s) failed" in done.stdout


@pytest.fixture(scope="module")
def validation(tools: Tools, rendered: dict[str, Path]) -> tuple[str, str]:
    """One run of each validator over every value set (they take seconds to load their schemas)."""
    files = [rendered[name] for name in VALUE_SETS]
    builtin = tools.run(tools.bin / "kubernetes-validate", "--strict", "-k", KUBE_VERSION, *files)
    assert builtin.returncode == 0, builtin.stdout + builtin.stderr
    crd = tools.run(tools.bin / "python", ROOT / "tests/packaging/crd_validate.py", *files)
    assert crd.returncode == 0, crd.stdout + crd.stderr
    return builtin.stdout, crd.stdout


@pytest.mark.parametrize("value_set", VALUE_SETS)
def test_every_rendered_manifest_validates_strictly(
    rendered: dict[str, Path], validation: tuple[str, str], value_set: str
) -> None:
    path = rendered[value_set]
    docs = _docs(path)
    builtin = [d for d in docs if "coreos.com" not in d["apiVersion"]]
    passed = [
        line for line in validation[0].splitlines() if str(path) in line and "passed for resource" in line
    ]
    assert len(passed) == len(builtin)  # every built-in object was checked: nothing silently skipped
    customs = sum(1 for name in VALUE_SETS for d in _docs(rendered[name]) if "coreos.com" in d["apiVersion"])
    assert customs >= 1 and f"checked {customs} custom resource(s), 0 problem(s)" in validation[1]


def test_the_crd_check_does_catch_a_misspelt_field(
    tools: Tools, rendered: dict[str, Path], tmp_path: Path
) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(rendered["servicemonitor"].read_text().replace("scrapeTimeout:", "scrapeTimout:"))
    crd = tools.run(tools.bin / "python", ROOT / "tests/packaging/crd_validate.py", bad)
    assert crd.returncode == 1 and "scrapeTimout" in crd.stdout


def test_checkov_reports_no_failed_checks_and_every_skip_is_justified(
    tools: Tools, rendered: dict[str, Path], tmp_path: Path
) -> None:
    scan = tmp_path / "scan"
    scan.mkdir()
    for name, path in rendered.items():
        (scan / f"{name}.yaml").write_text(path.read_text())
    done = tools.run(
        tools.bin / "checkov",
        "-d",
        scan,
        "--framework",
        "kubernetes",
        "--skip-download",
        "-o",
        "json",
        timeout=600,
    )
    report = json.loads(done.stdout)
    reports = report if isinstance(report, list) else [report]
    failed = [
        (c["check_id"], c["file_path"], c["resource"]) for r in reports for c in r["results"]["failed_checks"]
    ]
    assert failed == []
    assert sum(r["summary"]["passed"] for r in reports) > 100
    for r in reports:
        for c in r["results"]["skipped_checks"]:
            assert len(c["check_result"].get("suppress_comment", "")) > 20, c["check_id"]


@pytest.mark.parametrize("value_set", VALUE_SETS)
def test_deployment_is_single_writer_hardened_and_probed(rendered: dict[str, Path], value_set: str) -> None:
    docs = _docs(rendered[value_set])
    configmaps = {d["metadata"]["name"]: d for d in _kind(docs, "ConfigMap")}
    deployments = _kind(docs, "Deployment")
    assert deployments and len(configmaps) == len(deployments)  # one ConfigMap per scope
    for dep in deployments:
        spec = dep["spec"]
        assert spec["replicas"] == 1 and spec["strategy"]["type"] == "Recreate"
        pod = spec["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault"
        assert pod["automountServiceAccountToken"] is False
        (c,) = pod["containers"]
        sc = c["securityContext"]
        assert sc["readOnlyRootFilesystem"] is True and sc["allowPrivilegeEscalation"] is False
        assert sc["capabilities"]["drop"] == ["ALL"] and sc["seccompProfile"]["type"] == "RuntimeDefault"
        assert c["livenessProbe"]["httpGet"]["path"] == "/healthz"
        assert c["readinessProbe"]["httpGet"]["path"] == "/readyz"
        assert c["resources"]["limits"]["memory"] and c["resources"]["requests"]["cpu"]
        assert c["args"][0] == "controller" and "--source=$(CMKCTL_SOURCE)" in c["args"]
        assert "--state=$(CMKCTL_STATE)" in c["args"]  # the controller and an in-pod apply: one state
        mounts = {m["mountPath"] for m in c["volumeMounts"]}
        assert {"/var/lib/cmkctl", "/tmp", "/home/cmkctl"} <= mounts  # writable places on a read-only root
        (source,) = c["envFrom"]
        cm = configmaps[source["configMapRef"]["name"]]
        assert cm["data"]["CMKCTL_SOURCE"].startswith(("https://", "ssh://"))
        # the journal and lock: the state volume, or the blob (then the volume holds only the clone)
        assert cm["data"]["CMKCTL_STATE"] == "/var/lib/cmkctl" or cm["data"]["CMKCTL_STATE"].startswith(
            "azureblob://"
        )
        assert cm["data"]["CMKCTL_WORKDIR"] == "/var/lib/cmkctl"
        assert dep["spec"]["template"]["metadata"]["annotations"]["checksum/config"]


def test_workload_identity_git_credentials_and_service_monitor(rendered: dict[str, Path]) -> None:
    docs = _docs(rendered["servicemonitor"])
    (sa,) = _kind(docs, "ServiceAccount")
    assert (
        sa["metadata"]["annotations"]["azure.workload.identity/client-id"]
        == "00000000-0000-0000-0000-0000000000aa"
    )
    (dep,) = _kind(docs, "Deployment")
    assert dep["spec"]["template"]["metadata"]["labels"]["azure.workload.identity/use"] == "true"
    pod = dep["spec"]["template"]["spec"]
    env = {e["name"]: e.get("value") for e in pod["containers"][0]["env"]}
    assert env["CMKCTL_GIT_CREDENTIALS_FILE"] == "/etc/cmkctl/git/git-credentials"
    (vol,) = [v for v in pod["volumes"] if v["name"] == "git-credentials"]
    assert vol["secret"]["secretName"] == "cmk-specs-git"
    (sm,) = _kind(docs, "ServiceMonitor")
    assert sm["spec"]["endpoints"][0]["path"] == "/metrics"
    assert sm["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    (np,) = _kind(docs, "NetworkPolicy")
    assert np["spec"]["ingress"][0]["from"][0]["namespaceSelector"]["matchLabels"]
    assert _kind(_docs(rendered["default"]), "ServiceMonitor") == []


def test_ssh_source_report_mode_and_digest(rendered: dict[str, Path]) -> None:
    docs = _docs(rendered["ssh-report"])
    (dep,) = _kind(docs, "Deployment")
    c = dep["spec"]["template"]["spec"]["containers"][0]
    assert c["image"].endswith("@sha256:" + "0123456789abcdef" * 4)
    assert "--suspend" in c["args"]
    env = {e["name"]: e.get("value") for e in c["env"]}
    assert "StrictHostKeyChecking=yes" in env["GIT_SSH_COMMAND"]
    (cm,) = _kind(docs, "ConfigMap")
    assert cm["data"]["CMKCTL_MODE"] == "report"
    assert _kind(docs, "PersistentVolumeClaim") == [] and _kind(docs, "Service") == []
    assert "checkov.io/skip1" not in dep["metadata"].get("annotations", {})  # pinned by digest: no skip
    (np,) = _kind(docs, "NetworkPolicy")
    assert {"port": 22, "protocol": "TCP"} in np["spec"]["egress"][1]["ports"]


def test_azureblob_state_is_the_configmaps_state_and_needs_no_volume_claim(rendered: dict[str, Path]) -> None:
    """state.type azureblob: CMKCTL_STATE is the blob URL, for the controller and for `cmkctl apply`
    run in the pod (which then takes the blob lease, not a file lock); the pod keeps only its clone on
    an emptyDir."""
    docs = _docs(rendered["azureblob"])
    (cm,) = _kind(docs, "ConfigMap")
    assert cm["data"]["CMKCTL_STATE"] == "azureblob://cmkstate/journal/prod/history.json"
    (dep,) = _kind(docs, "Deployment")
    (container,) = dep["spec"]["template"]["spec"]["containers"]
    assert "--state=$(CMKCTL_STATE)" in container["args"]
    assert _kind(docs, "PersistentVolumeClaim") == []
    (state,) = [v for v in dep["spec"]["template"]["spec"]["volumes"] if v["name"] == "state"]
    assert "emptyDir" in state


def test_existing_claim_and_external_service_account(rendered: dict[str, Path]) -> None:
    docs = _docs(rendered["existing-claim"])
    assert _kind(docs, "ServiceAccount") == [] and _kind(docs, "PersistentVolumeClaim") == []
    (dep,) = _kind(docs, "Deployment")
    pod = dep["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == "cmk-controller-weu"
    (state,) = [v for v in pod["volumes"] if v["name"] == "state"]
    assert state["persistentVolumeClaim"]["claimName"] == "cmk-controller-state-weu"


SOURCE = ("--set", "controller.source=https://x/y.git")
WITH_ID = (*SOURCE, "--set", "azure.workloadIdentity.clientId=00000000-0000-0000-0000-000000000001")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--set", "azure.workloadIdentity.enabled=false"), "controller.source"),
        (SOURCE, "azure.workloadIdentity.clientId is required"),
        ((*WITH_ID, "--set", "controller.mode=yolo"), "mode"),
        ((*WITH_ID, "--set", "image.tag=latest"), "tag"),
        ((*WITH_ID, "--set", "state.type=azureblob"), "state.azureblob.url is required"),
        ((*WITH_ID, "--set", "securityContext.readOnlyRootFilesystem=false"), "readOnlyRootFilesystem"),
        ((*WITH_ID, "--set", "replicas=3"), "replicas"),
        ((*WITH_ID, "--set", "networkPolicy.egressCIDRs[0]=everything"), "egressCIDRs"),
        ((*WITH_ID, "--set", "networkPolicy.egressPorts[0]=70000"), "egressPorts"),
        (
            ("--set", "controller.source=https://bot:tok@x/y.git", *WITH_ID[2:]),
            "controller.source carries credentials",
        ),
    ],
)
def test_bad_values_are_refused_with_a_message(
    helm_template: Render, args: tuple[str, ...], message: str
) -> None:
    done = helm_template(*args)
    assert done.returncode != 0
    assert message in done.stderr


def test_workload_identity_off_or_an_external_service_account_needs_no_client_id(
    helm_template: Render,
) -> None:
    off = helm_template(*SOURCE, "--set", "azure.workloadIdentity.enabled=false")
    assert off.returncode == 0, off.stderr
    assert "azure.workload.identity" not in off.stdout
    external = helm_template(
        *SOURCE, "--set", "serviceAccount.create=false", "--set", "serviceAccount.name=sa"
    )
    assert external.returncode == 0, external.stderr  # the existing ServiceAccount carries the client id


def _value_paths(node: dict[str, Any], prefix: str = "") -> list[str]:
    paths = []
    for key, value in node.items():
        path = f"{prefix}.{key}" if prefix else key
        paths += _value_paths(value, path) if isinstance(value, dict) and value else [path]
    return paths


# maps handed to Kubernetes as they are: documented as one value
WHOLE = ("podSecurityContext", "securityContext", "resources")


def test_the_chart_readme_documents_every_value_and_no_other() -> None:
    values = yaml.safe_load((CHART / "values.yaml").read_text(encoding="utf-8"))
    readme = (CHART / "README.md").read_text(encoding="utf-8")
    table = readme[readme.index("## Values") :]
    documented = set()
    for line in table.splitlines():
        if line.startswith("| `"):
            first = line.split("|")[1]
            documented |= set(re.findall(r"`([A-Za-z.\[\]]+)`", first))
    wanted = {p if not p.startswith(WHOLE) else p.split(".")[0] for p in _value_paths(values)}
    assert wanted - documented == set()
    schema = json.loads((CHART / "values.schema.json").read_text(encoding="utf-8"))
    scope_keys = set(schema["properties"]["scopes"]["items"]["properties"])
    assert {f"scopes[].{k}" for k in ("name", "subscriptions")} <= documented
    per_scope = [k for k in documented if k.startswith((".", "scopes[]"))]
    overrides = {k.removeprefix("scopes[]").lstrip(".") for k in per_scope}
    overrides -= {"name", "subscriptions"}
    assert overrides == scope_keys - {"name", "subscriptions"}  # every per-scope override, no more
    extra = {d for d in documented if not d.startswith((".", "scopes[]"))} - wanted
    assert extra == set()  # nothing documented that values.yaml does not have


def test_network_policy_egress_defaults_and_narrowing(
    helm_template: Render, rendered: dict[str, Path]
) -> None:
    (np,) = _kind(_docs(rendered["default"]), "NetworkPolicy")
    dns, https = np["spec"]["egress"]
    assert {p["port"] for p in dns["ports"]} == {53} and "to" not in dns  # DNS anywhere
    assert https == {"ports": [{"port": 443, "protocol": "TCP"}], "to": [{"ipBlock": {"cidr": "0.0.0.0/0"}}]}
    done = helm_template(
        *WITH_ID,
        "--set-json",
        'networkPolicy.egressCIDRs=[{"cidr":"10.20.0.0/24","except":["10.20.0.128/25"]},"10.30.0.4/32"]',
        "--set",
        "networkPolicy.egressPorts={443,8443}",
        "--set",
        "networkPolicy.sshEgress=true",
        "--set-json",
        'networkPolicy.dnsTo=[{"namespaceSelector":{"matchLabels":{"kubernetes.io/metadata.name":"kube-system"}}}]',
    )
    assert done.returncode == 0, done.stderr
    (np,) = _kind([d for d in yaml.safe_load_all(done.stdout) if d], "NetworkPolicy")
    dns, ports = np["spec"]["egress"]
    assert dns["to"][0]["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"] == "kube-system"
    assert [p["port"] for p in ports["ports"]] == [443, 8443, 22]
    assert ports["to"] == [
        {"ipBlock": {"cidr": "10.20.0.0/24", "except": ["10.20.0.128/25"]}},
        {"ipBlock": {"cidr": "10.30.0.4/32"}},
    ]
