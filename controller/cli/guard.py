"""One place that turns a command's outcome into a message and an exit code, never a traceback.

Every command body runs inside `guarded()`: expected failures (CmkError) print their message,
Ctrl-C prints what to do next, and a bug prints one "internal error" line.
"""

from __future__ import annotations

import sys
from collections.abc import Callable

from controller.errors import CmkError

EXIT_ERROR = 1


def internal_error_line(err: BaseException) -> str:
    first = (str(err).splitlines() or [""])[0][:300]
    return f"error: internal error ({type(err).__name__}): {first}"


def guarded(body: Callable[[], int], *, interrupted: str = "interrupted") -> int:
    try:
        return body()
    except CmkError as err:
        print(f"error: {err}", file=sys.stderr)
        return err.exit_code
    except KeyboardInterrupt:
        print(f"error: {interrupted}", file=sys.stderr)
        return EXIT_ERROR
    except Exception as err:  # a bug must still reach the user as one line, never a traceback
        print(internal_error_line(err), file=sys.stderr)
        return EXIT_ERROR
