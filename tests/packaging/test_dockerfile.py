"""The Dockerfile: hadolint and checkov clean, multi-stage, non-root, git present, no compilers in the
final stage, every version pinned and every Python file hash-checked, the emulator left out. (No
container engine here: the image is linted, not built.)"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import sysconfig
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging_tools import ROOT, Tools

DOCKERFILE = ROOT / "Dockerfile"
LOCK = ROOT / "docker" / "requirements.lock"
BUILD_LOCK = ROOT / "docker" / "build-requirements.lock"


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


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _pins(lock: Path) -> dict[str, tuple[str, list[str]]]:
    """name -> (version, sha256 hashes) from a pip-compile --generate-hashes lock."""
    pins: dict[str, tuple[str, list[str]]] = {}
    name = ""
    for line in lock.read_text().splitlines():
        text = line.strip()
        if not text or text.startswith("#"):
            continue
        assert not text.startswith(("--index-url", "--extra-index-url", "--find-links", "-f ")), text
        if text.startswith("--hash="):
            pins[name][1].append(text.removeprefix("--hash=").rstrip(" \\"))
            continue
        requirement = text.rstrip(" \\")
        name, sep, version = requirement.partition("==")
        assert sep and re.fullmatch(r"[0-9][0-9A-Za-z.+!-]*", version), f"not pinned: {line}"
        name = _norm(name)
        pins[name] = (version, [])
    return pins


def test_the_lock_pins_and_hashes_every_runtime_dependency() -> None:
    pinned = _pins(LOCK)
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    wanted = {_norm(re.split(r"[<>=!~\[ ;]", dep, maxsplit=1)[0]) for dep in project}
    missing = sorted(wanted - set(pinned))
    assert not missing, f"not in docker/requirements.lock: {missing}; run `make docker-lock`"
    for dep in map(Requirement, project):  # a raised floor or a new cap is in the image too
        version = pinned[_norm(dep.name)][0]
        assert dep.specifier.contains(version), f"lock has {dep.name}=={version}, pyproject wants {dep}"
    for name, (_, hashes) in {**pinned, **_pins(BUILD_LOCK)}.items():
        assert hashes and all(re.fullmatch(r"sha256:[0-9a-f]{64}", h) for h in hashes), name
    assert {"setuptools", "wheel"} <= set(_pins(BUILD_LOCK))


def test_every_locked_install_requires_hashes_and_the_emulator_is_not_copied() -> None:
    build = "\n".join(_stages()[0])
    installs = re.findall(r"pip install[^\n]*-r (\S+)", build)
    assert sorted(installs) == ["build-requirements.lock", "requirements.lock"]
    assert all(
        "--require-hashes" in line for line in build.splitlines() if "pip install" in line and " -r " in line
    )
    assert not re.search(r"^COPY .*\bemulator\b", DOCKERFILE.read_text(), re.MULTILINE)
    assert "import emulator" in build  # the build fails if the emulator got into the image anyway


def test_cmkctl_emulator_says_it_is_not_available_in_an_install_without_it(tmp_path: Path) -> None:
    """What the image has: `controller` and the dependencies, no `emulator` package."""
    image = tmp_path / "site"
    shutil.copytree(ROOT / "controller", image / "controller", ignore=shutil.ignore_patterns("__pycache__"))
    deps = sysconfig.get_paths()[
        "purelib"
    ]  # added as a plain path: its .pth (the editable install) is not read

    def cmkctl(path: list[str], *args: str) -> subprocess.CompletedProcess[str]:
        code = (
            f"import sys; sys.path[:0] = {path!r}; from controller.cli.app import main; "
            f"sys.exit(main({list(args)!r}))"
        )
        return subprocess.run(
            [sys.executable, "-I", "-S", "-c", code],
            capture_output=True,
            text=True,
            timeout=120,
            cwd=tmp_path,
        )

    done = cmkctl([str(image), deps], "emulator", "--help")
    assert done.returncode == 1
    assert "emulator is not available" in done.stderr and "unauthenticated admin API" in done.stderr
    assert "Traceback" not in done.stderr + done.stdout
    assert cmkctl([str(image), deps], "validate", "--help").returncode == 0  # the rest of cmkctl works
    with_it = cmkctl([str(ROOT), deps], "emulator", "--help")  # a source checkout: the emulator runs
    assert with_it.returncode == 0 and "not available" not in with_it.stderr
