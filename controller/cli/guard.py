"""One place that turns a command's outcome into a message and an exit code, never a traceback.

Every command body runs inside `guarded()`: expected failures (CmkError) print their message,
Ctrl-C prints what to do next, and a bug prints one "internal error" line.
"""

from __future__ import annotations

import logging
import sys
import traceback
from collections.abc import Callable

from controller.errors import CmkError
from controller.model.settings import Settings, SettingsError

EXIT_ERROR = 1


def internal_error_line(err: BaseException) -> str:
    first = (str(err).splitlines() or [""])[0][:300]
    return f"error: internal error ({type(err).__name__}): {first}"


def debug_enabled() -> bool:
    """CMKCTL_DEBUG=1: every command also prints the traceback of an error (never by default)."""
    try:
        return Settings.read().debug
    except SettingsError:
        return False


def quiet_sdk_logging() -> None:
    """The SDKs log multi-line credential and HTTP chatter; our own messages say what matters."""
    for name in ("azure", "controller.azure"):
        logging.getLogger(name).setLevel(logging.CRITICAL)


def guarded(body: Callable[[], int], *, interrupted: str = "interrupted") -> int:
    try:
        return body()
    except CmkError as err:
        if debug_enabled():
            traceback.print_exc()
        print(f"error: {err}", file=sys.stderr)
        return err.exit_code
    except KeyboardInterrupt:
        print(f"error: {interrupted}", file=sys.stderr)
        return EXIT_ERROR
    except OSError as err:  # a full disk, a read-only state directory, a port already taken
        if debug_enabled():
            traceback.print_exc()
        where = f": {err.filename}" if getattr(err, "filename", None) else ""
        print(f"error: {err.strerror or err}{where}", file=sys.stderr)
        return EXIT_ERROR
    except Exception as err:  # a bug must still reach the user as one line, never a traceback
        if debug_enabled():
            traceback.print_exc()
        print(internal_error_line(err), file=sys.stderr)
        return EXIT_ERROR
