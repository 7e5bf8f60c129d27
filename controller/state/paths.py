"""Where the local state lives: `--state DIR`, else $CMKCTL_STATE, else `.cmkctl/` in the cwd."""

from __future__ import annotations

import os
from pathlib import Path

ENV_VAR = "CMKCTL_STATE"
DEFAULT_DIR = ".cmkctl"


def state_dir(explicit: str | os.PathLike[str] | None = None, *, cwd: Path | None = None) -> Path:
    """Resolve (and create) the state directory; an explicit flag beats the environment."""
    chosen = explicit or os.environ.get(ENV_VAR) or (cwd or Path.cwd()) / DEFAULT_DIR
    path = Path(chosen)
    path.mkdir(parents=True, exist_ok=True)
    return path
