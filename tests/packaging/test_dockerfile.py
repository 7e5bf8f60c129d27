"""The Dockerfile: hadolint and checkov clean, multi-stage, non-root, git present, no compilers in the
final stage, every version pinned. (No container engine here: the image is linted, not built.)"""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path

from packaging_tools import ROOT, Tools

DOCKERFILE = ROOT / "Dockerfile"
LOCK = ROOT / "docker" / "requirements.lock"


def _stages() -> list[list[str]]:
    stages: list[list[str]] = []
    for line in DOCKERFILE.read_text().splitlines():
        if line.startswith("FROM "):
            stages.append([])
        if stages:
            stages[-1].append(line)
    return stages


def test_hadolint_passes_with_the_project_config(tools: Tools) -> None:
    done = tools.run(tools.bin / "hadolint", "--config", ROOT / ".hadolint.yaml", DOCKERFILE)
    assert done.returncode == 0, done.stdout + done.stderr


def test_hadolint_would_catch_an_unpinned_package(tools: Tools, tmp_path: Path) -> None:
    worse = tmp_path / "Dockerfile"
    worse.write_text(DOCKERFILE.read_text().replace("git=1:2.39.5-0+deb12u3", "git"))
    done = tools.run(tools.bin / "hadolint", "--config", ROOT / ".hadolint.yaml", worse)
    assert done.returncode != 0 and "DL3008" in done.stdout


def test_checkov_dockerfile_checks_pass(tools: Tools) -> None:
    done = tools.run(
        tools.bin / "checkov", "-f", DOCKERFILE, "--framework", "dockerfile", "--skip-download", "-o", "json"
    )
    report = json.loads(done.stdout)
    assert report["summary"]["failed"] == 0, [c["check_id"] for c in report["results"]["failed_checks"]]
    assert report["summary"]["passed"] > 10


def test_multi_stage_non_root_with_git_and_no_compilers_in_the_final_stage() -> None:
    stages = _stages()
    assert len(stages) == 2
    final = "\n".join(stages[-1])
    assert all(re.match(r"FROM python:3\.11\.\d+-slim-bookworm", s[0]) for s in stages)
    assert re.search(r"^USER 10001", final, re.MULTILINE)
    assert "git=" in final and "--no-install-recommends" in final
    for tool in ("gcc", "build-essential", "g++", "make ", "pip install"):
        assert tool not in final, tool
    assert "COPY --from=build /opt/cmkctl /opt/cmkctl" in final
    assert 'ENTRYPOINT ["cmkctl"]' in final


def test_the_lock_pins_every_runtime_dependency() -> None:
    def norm(name: str) -> str:
        return re.sub(r"[-_.]+", "-", name).lower()

    pinned = {}
    for line in LOCK.read_text().splitlines():
        if line and not line.startswith("#"):
            name, sep, version = line.partition("==")
            assert sep and version, f"not pinned: {line}"
            pinned[norm(name)] = version
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    wanted = {norm(re.split(r"[<>=!~\[ ;]", dep, maxsplit=1)[0]) for dep in project}
    assert wanted <= set(pinned), sorted(wanted - set(pinned))
