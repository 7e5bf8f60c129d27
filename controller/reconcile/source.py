"""Where the spec comes from for one controller pass: a git repository (real `git`) or a directory.

Why real git and a private clone: the controller must act on what was *committed* at a revision the
status can name (lastAttemptedRevision / lastAppliedRevision), never on a half-edited working tree.
The clone is made once; later passes `git fetch` the ref and check out exactly FETCH_HEAD (detached,
forced, cleaned), so a force-push or a deleted file upstream is followed faithfully.

A plain directory (not a git repository) is read as it is; its revision is a digest of its files,
so a change to any spec file still counts as "a new revision" (a stalled controller retries).

Credentials never appear in logs or status: URLs are shown with their user-info removed, git's
stderr is scrubbed the same way, and HTTPS credentials come from a git credential-store file
(CMKCTL_GIT_CREDENTIALS_FILE, mounted from a Kubernetes Secret) rather than from the URL.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from controller.errors import CmkError

GIT_TIMEOUT = 300.0
CREDENTIALS_ENV = "CMKCTL_GIT_CREDENTIALS_FILE"
_USERINFO = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*://)[^/@\s]+@")
_REF_OK = re.compile(r"^[A-Za-z0-9._/-]+$")


class SourceError(CmkError):
    """The source could not be fetched or read (network, auth, unknown ref): retried next pass."""


def redact(text: str) -> str:
    """Remove user:password@ from every URL in `text` (URLs, git stderr)."""
    return _USERINFO.sub(lambda m: m.group("scheme") + "***@", text)


@dataclass(frozen=True)
class Checkout:
    """One fetched revision: the spec directory to load and the revision to record."""

    revision: str
    spec_dir: Path
    source: str  # redacted source URL or directory, for status and logs


def is_git_source(source: str) -> bool:
    """URLs and scp-style addresses are git; a local directory is git when it is a repository."""
    if "://" in source or re.match(r"^[\w.-]+@[\w.-]+:", source):
        return True
    path = Path(source)
    return path.is_dir() and ((path / ".git").exists() or (path / "HEAD").is_file())


class GitSource:
    """Clone once into `workdir`, then fetch + check out `ref` each pass."""

    def __init__(self, url: str, *, ref: str = "main", path: str = ".", workdir: Path) -> None:
        if not _REF_OK.match(ref) or ref.startswith("-") or ".." in ref:
            raise SourceError(f"--ref {ref!r} is not a branch, tag or commit name")
        self.url = url
        self.ref = ref
        self.path = _safe_relative(path)
        self.workdir = workdir
        self.display = redact(url)

    def _git(self, *args: str, cwd: Path | None = None) -> str:
        env = {**os.environ, "GIT_TERMINAL_PROMPT": "0", "GIT_ASKPASS": "true", "LC_ALL": "C"}
        config: list[str] = ["-c", "protocol.file.allow=always", "-c", "advice.detachedHead=false"]
        creds = os.environ.get(CREDENTIALS_ENV)
        if creds:
            config += ["-c", f"credential.helper=store --file={creds}"]
        try:
            done = subprocess.run(  # noqa: S603 - fixed argv, no shell
                ["git", *config, *args],  # noqa: S607 - git from PATH, like any user's CI
                cwd=cwd,
                env=env,
                capture_output=True,
                text=True,
                timeout=GIT_TIMEOUT,
                check=False,
            )
        except FileNotFoundError:
            raise SourceError("git is not installed (the controller needs the git command)") from None
        except subprocess.TimeoutExpired:
            raise SourceError(f"git {args[0]} of {self.display} timed out after {GIT_TIMEOUT:g}s") from None
        if done.returncode != 0:
            lines = (done.stderr or done.stdout or "").strip().splitlines()
            detail = redact(lines[-1]) if lines else f"exit {done.returncode}"
            raise SourceError(f"git {args[0]} of {self.display} (ref {self.ref}) failed: {detail}")
        return done.stdout

    def fetch(self) -> Checkout:
        """Bring the clone to the tip of `ref` and return the commit and the spec directory."""
        repo = self.workdir / "repo"
        if not (repo / ".git").is_dir():
            if repo.exists():
                shutil.rmtree(repo)  # a clone interrupted half-way: start again
            repo.parent.mkdir(parents=True, exist_ok=True)
            self._git("clone", "--no-checkout", "--quiet", "--", self.url, str(repo))
        self._git("fetch", "--quiet", "--prune", "--force", "origin", self.ref, cwd=repo)
        commit = self._git("rev-parse", "--verify", "FETCH_HEAD^{commit}", cwd=repo).strip()
        self._git("checkout", "--quiet", "--force", "--detach", commit, cwd=repo)
        self._git("clean", "-ffdxq", cwd=repo)
        spec_dir = repo / self.path
        if not spec_dir.exists():
            raise SourceError(f"--path {self.path} does not exist in {self.display} at {commit[:12]}")
        return Checkout(revision=commit, spec_dir=spec_dir, source=self.display)


class DirectorySource:
    """A directory read as it is; the revision is a digest of every file's path and content."""

    def __init__(self, directory: str, *, path: str = ".") -> None:
        self.root = Path(directory)
        self.path = _safe_relative(path)
        self.display = str(self.root)

    def fetch(self) -> Checkout:
        spec_dir = self.root / self.path
        if not spec_dir.exists():
            raise SourceError(f"{spec_dir} does not exist")
        digest = hashlib.sha256()
        files = [spec_dir] if spec_dir.is_file() else sorted(p for p in spec_dir.rglob("*") if p.is_file())
        for file in files:
            if any(part.startswith(".") for part in file.relative_to(self.root).parts):
                continue
            try:
                digest.update(str(file.relative_to(self.root)).encode() + b"\0" + file.read_bytes() + b"\0")
            except OSError as exc:
                raise SourceError(f"cannot read {file}: {exc.strerror or exc}") from None
        return Checkout(revision="sha256:" + digest.hexdigest()[:40], spec_dir=spec_dir, source=self.display)


Source = GitSource | DirectorySource


def open_source(source: str, *, ref: str, path: str, workdir: Path) -> Source:
    """Pick git or directory from what `--source` names."""
    if is_git_source(source):
        return GitSource(source, ref=ref, path=path, workdir=workdir)
    if Path(source).is_dir():
        return DirectorySource(source, path=path)
    raise SourceError(f"--source {redact(source)!r} is neither a git URL nor a directory")


def _safe_relative(path: str) -> str:
    """`--path` must stay inside the repository (no absolute paths, no `..`)."""
    clean = Path(path.strip() or ".")
    if clean.is_absolute() or ".." in clean.parts:
        raise SourceError(f"--path {path!r} must be a relative path inside the source")
    return str(clean)
