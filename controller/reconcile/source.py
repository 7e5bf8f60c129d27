"""Where the spec comes from for one controller pass: a git repository (real `git`) or a directory.

Why real git and a private clone: the controller must act on what was *committed* at a revision the
status can name (lastAttemptedRevision / lastAppliedRevision), never on a half-edited working tree.
The clone is made once; later passes `git fetch` the ref and check out exactly FETCH_HEAD (detached,
forced, cleaned), so a force-push or a deleted file upstream is followed faithfully.

A plain directory (not a git repository) is read as it is; its revision is a digest of its files,
so a change to any spec file still counts as "a new revision" (a stalled controller retries).

Credentials never appear in logs or status: URLs are shown with their user-info removed, git's
stderr is scrubbed the same way. HTTPS credentials come from a git credential-store file
(CMKCTL_GIT_CREDENTIALS_FILE, mounted from a Kubernetes Secret) or from the `--source` URL itself
(`https://user:token@host/...`). Credentials from the URL never reach the disk: the clone is made
from the URL without its user-info (so `.git/config` on the state volume names no secret) and git
asks for them through a credential helper that reads them from the environment of that one git
process only. No other configured helper takes part, so none can store them either.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import signal
import subprocess
import threading
import time
import urllib.parse
from dataclasses import dataclass
from pathlib import Path

from controller.errors import CmkError

# a git command past this is killed and the pass retries: a server that accepts the connection and
# never answers must not hold the controller (nor its shutdown) for long
GIT_TIMEOUT = 120.0
CREDENTIALS_ENV = "CMKCTL_GIT_CREDENTIALS_FILE"
# the URL's user-info, handed to git's credential helper through the environment of one git process
_URL_USER_ENV = "CMKCTL_GIT_URL_USERNAME"
_URL_PASSWORD_ENV = "CMKCTL_GIT_URL_PASSWORD"  # noqa: S105 - the name of a variable, not a secret
# answers `get` with the two variables above; `store` and `erase` are ignored (nothing is written)
_ENV_HELPER = (
    '!f() { test "$1" = get || exit 0; '
    f'printf "username=%s\\n" "${_URL_USER_ENV}"; printf "password=%s\\n" "${_URL_PASSWORD_ENV}"; }}; f'
)
_USERINFO = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*://)[^/@\s]+@")
_REF_OK = re.compile(r"^[A-Za-z0-9._/-]+$")
_COMMIT = re.compile(r"^[0-9a-f]{40}([0-9a-f]{24})?$")


class SourceError(CmkError):
    """The source could not be fetched or read (network, auth, unknown ref): retried next pass."""


def redact(text: str) -> str:
    """Remove user:password@ from every URL in `text` (URLs, git stderr)."""
    return _USERINFO.sub(lambda m: m.group("scheme") + "***@", text)


@dataclass(frozen=True)
class Checkout:
    """One fetched revision: the spec directory to load and the revision to record.

    `root` is the checkout (or the source directory): spec files are read only from inside it, so
    a committed symbolic link to /etc, to a mounted Secret or to another repository is refused by
    the loader (`load(..., root=checkout.root)`) rather than followed."""

    revision: str
    spec_dir: Path
    source: str  # redacted source URL or directory, for status and logs
    root: Path


def is_git_source(source: str) -> bool:
    """URLs and scp-style addresses are git; a local directory is git when it is a repository."""
    if "://" in source or re.match(r"^[\w.-]+@[\w.-]+:", source):
        return True
    path = Path(source)
    return path.is_dir() and ((path / ".git").exists() or (path / "HEAD").is_file())


class GitSource:
    """Clone once into `workdir`, then fetch + check out `ref` each pass."""

    def __init__(
        self,
        url: str,
        *,
        ref: str = "main",
        path: str = ".",
        workdir: Path,
        stop: threading.Event | None = None,
        timeout: float = GIT_TIMEOUT,
    ) -> None:
        if not _REF_OK.match(ref) or ref.startswith("-") or ".." in ref:
            raise SourceError(f"--ref {ref!r} is not a branch, tag or commit name")
        self.url, self._url_credentials = split_url_credentials(url)
        self.ref = ref
        self.path = _safe_relative(path)
        self.workdir = workdir
        self.display = redact(url)
        self.stop = stop or threading.Event()  # set on SIGTERM: a running git is killed at once
        self.timeout = timeout

    def _git(self, *args: str, cwd: Path | None = None) -> str:
        env = {**os.environ, "GIT_TERMINAL_PROMPT": "0", "GIT_ASKPASS": "true", "LC_ALL": "C"}
        config: list[str] = ["-c", "protocol.file.allow=always", "-c", "advice.detachedHead=false"]
        config += self._credential_config(env)
        try:
            proc = subprocess.Popen(  # noqa: S603 - fixed argv, no shell
                ["git", *config, *args],  # noqa: S607 - git from PATH, like any user's CI
                cwd=cwd,
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                start_new_session=True,  # its own process group: killing it also kills git-remote-https
            )
        except FileNotFoundError:
            raise SourceError("git is not installed (the controller needs the git command)") from None
        deadline = time.monotonic() + self.timeout
        while True:
            try:
                stdout, stderr = proc.communicate(timeout=0.2)
                break
            except subprocess.TimeoutExpired:
                if self.stop.is_set():
                    _kill(proc)
                    raise SourceError(
                        f"git {args[0]} of {self.display} stopped: the controller is stopping"
                    ) from None
                if time.monotonic() > deadline:
                    _kill(proc)
                    raise SourceError(
                        f"git {args[0]} of {self.display} timed out after {self.timeout:g}s"
                    ) from None
        done = subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr)
        if done.returncode != 0:
            lines = (done.stderr or done.stdout or "").strip().splitlines()
            detail = redact(lines[-1]) if lines else f"exit {done.returncode}"
            raise SourceError(f"git {args[0]} of {self.display} (ref {self.ref}) failed: {detail}")
        return done.stdout

    def _credential_config(self, env: dict[str, str]) -> list[str]:
        """git -c options for the credentials we supply (and the variables they read, added to `env`).

        When we supply any, the empty `credential.helper` first drops every helper from system or
        user config: a `store` helper there would otherwise write the password to disk after a
        successful fetch. Without credentials of ours, the user's own helpers work as usual.
        """
        config: list[str] = []
        if self._url_credentials is not None:
            env[_URL_USER_ENV], env[_URL_PASSWORD_ENV] = self._url_credentials
            config += ["-c", f"credential.helper={_ENV_HELPER}"]
        creds = os.environ.get(CREDENTIALS_ENV)
        if creds:
            config += ["-c", f"credential.helper=store --file={creds}"]
        return ["-c", "credential.helper=", *config] if config else []

    def _scrub_remote(self, repo: Path) -> None:
        """Point the clone's origin at the credential-free URL (also removes a secret that a clone
        made from a URL with user-info would hold, and follows a changed --source)."""
        current = self._git("config", "--default", "", "--get", "remote.origin.url", cwd=repo).strip()
        if current != self.url:
            self._git("remote", "set-url", "origin", "--", self.url, cwd=repo)

    def fetch(self) -> Checkout:
        """Bring the clone to the tip of `ref` and return the commit and the spec directory."""
        repo = self.workdir / "repo"
        if not (repo / ".git").is_dir():
            if repo.exists():
                shutil.rmtree(repo)  # a clone interrupted half-way: start again
            repo.parent.mkdir(parents=True, exist_ok=True)
            self._git("clone", "--no-checkout", "--quiet", "--", self.url, str(repo))
        else:
            self._scrub_remote(repo)
        self._git("fetch", "--quiet", "--prune", "--force", "origin", self.ref, cwd=repo)
        commit = self._git("rev-parse", "--verify", "FETCH_HEAD^{commit}", cwd=repo).strip()
        self._git("checkout", "--quiet", "--force", "--detach", commit, cwd=repo)
        self._git("clean", "-ffdxq", cwd=repo)
        spec_dir = repo / self.path
        _inside_checkout(spec_dir, repo, f"--path {self.path} in {self.display} at {commit[:12]}")
        if not spec_dir.exists():
            raise SourceError(f"--path {self.path} does not exist in {self.display} at {commit[:12]}")
        return Checkout(revision=commit, spec_dir=spec_dir, source=self.display, root=repo)

    def checkout_at(self, revision: str) -> Checkout:
        """An earlier commit of the clone, checked out beside it (`good/`): the last good revision
        a restarted controller reports drift against while the head does not validate."""
        repo = self.workdir / "repo"
        if not _COMMIT.match(revision) or not (repo / ".git").is_dir():
            raise SourceError(f"{revision[:12]} is not a commit of {self.display}")
        self._git("cat-file", "-e", f"{revision}^{{commit}}", cwd=repo)
        good = self.workdir / "good"
        if good.exists():
            shutil.rmtree(good)
        good.mkdir(parents=True)
        self._git("--work-tree", str(good), "checkout", "--quiet", "--force", revision, "--", ".", cwd=repo)
        self._git("checkout", "--quiet", "--force", "--detach", "HEAD", cwd=repo)  # the index back to head
        spec_dir = good / self.path
        _inside_checkout(spec_dir, good, f"--path {self.path} in {self.display} at {revision[:12]}")
        if not spec_dir.exists():
            raise SourceError(f"--path {self.path} does not exist in {self.display} at {revision[:12]}")
        return Checkout(revision=revision, spec_dir=spec_dir, source=self.display, root=good)


class DirectorySource:
    """A directory read as it is; the revision is a digest of every file's path and content."""

    def __init__(self, directory: str, *, path: str = ".") -> None:
        self.root = Path(directory)
        self.path = _safe_relative(path)
        self.display = str(self.root)

    def fetch(self) -> Checkout:
        spec_dir = self.root / self.path
        _inside_checkout(spec_dir, self.root, str(spec_dir))
        if not spec_dir.exists():
            raise SourceError(f"{spec_dir} does not exist")
        digest = hashlib.sha256()
        files = (
            [spec_dir]
            if spec_dir.is_file()
            else sorted(p for p in spec_dir.rglob("*") if p.is_symlink() or p.is_file())
        )
        for file in files:
            if any(part.startswith(".") for part in file.relative_to(self.root).parts):
                continue
            try:
                # a link counts by where it points, never by the content it reaches: the loader
                # refuses one that leaves the directory, and its target must not be read here either
                content = str(file.readlink()).encode() if file.is_symlink() else file.read_bytes()
                digest.update(str(file.relative_to(self.root)).encode() + b"\0" + content + b"\0")
            except OSError as exc:
                raise SourceError(f"cannot read {file}: {exc.strerror or exc}") from None
        return Checkout(
            revision="sha256:" + digest.hexdigest()[:40],
            spec_dir=spec_dir,
            source=self.display,
            root=self.root,
        )


Source = GitSource | DirectorySource


def split_url_credentials(url: str) -> tuple[str, tuple[str, str] | None]:
    """`https://user:token@host/x.git` -> (`https://host/x.git`, (user, token)), percent-decoded.

    Only http(s) URLs carry a secret in their user-info; ssh's `git@` names an account and stays.
    """
    parts = urllib.parse.urlsplit(url)
    if parts.scheme.lower() not in ("http", "https") or "@" not in parts.netloc:
        return url, None
    userinfo, _, host = parts.netloc.rpartition("@")
    user, _, password = userinfo.partition(":")
    user, password = urllib.parse.unquote(user), urllib.parse.unquote(password)
    if any(c in user + password for c in "\n\r\0"):
        raise SourceError(f"--source {redact(url)!r}: the credentials in the URL contain a line break")
    return urllib.parse.urlunsplit(parts._replace(netloc=host)), (user, password)


def _kill(proc: subprocess.Popen[str]) -> None:
    """Kill git and its helpers (its process group), and reap them."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        proc.kill()
    proc.communicate()


def open_source(
    source: str,
    *,
    ref: str,
    path: str,
    workdir: Path,
    stop: threading.Event | None = None,
    timeout: float = GIT_TIMEOUT,
) -> Source:
    """Pick git or directory from what `--source` names."""
    if is_git_source(source):
        return GitSource(source, ref=ref, path=path, workdir=workdir, stop=stop, timeout=timeout)
    if Path(source).is_dir():
        return DirectorySource(source, path=path)
    raise SourceError(f"--source {redact(source)!r} is neither a git URL nor a directory")


def _inside_checkout(spec_dir: Path, root: Path, shown: str) -> None:
    """`--path` may not leave the checkout through a committed symbolic link (e.g. specs -> /etc)."""
    try:
        inside = spec_dir.resolve().is_relative_to(root.resolve())
    except RuntimeError:  # a link loop
        inside = False
    if not inside:
        raise SourceError(f"{shown} is a symbolic link to a place outside the repository: refused")


def _safe_relative(path: str) -> str:
    """`--path` must stay inside the repository (no absolute paths, no `..`)."""
    clean = Path(path.strip() or ".")
    if clean.is_absolute() or ".." in clean.parts:
        raise SourceError(f"--path {path!r} must be a relative path inside the source")
    return str(clean)
