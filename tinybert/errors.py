"""The user-facing error types. A script's main() (cli.run_main) shows them as one line and exits 2.

    raise UserError("--T must be positive, got 0")
    raise DataError("GLUE/SST-2/train.tsv", 17, "expected 2 tab-separated columns, found 3")

Library modules raise these for anything a user can fix (a file, a flag, data); a plain exception
means a bug here, and keeps its traceback.
"""
from __future__ import annotations


class UserError(Exception):
    """A mistake in the user's input (file, flag, data). Shown as one line, no traceback."""


class DataError(UserError):
    """Bad content in a file: names the file and, for text files, the 1-based line number."""

    def __init__(self, path: object, line: int | None, problem: str):
        self.path, self.line, self.problem = str(path), line, problem
        where = f"{self.path}:{line}" if line is not None else self.path
        super().__init__(f"{where}: {problem}")


def first_line(e: BaseException, limit: int = 200) -> str:
    """The first non-blank line of an exception from a library (Paddle's C++ errors start with blank
    lines and run on for pages), to quote in a one-line error."""
    lines = [line.strip() for line in str(e).splitlines() if line.strip()]
    return (lines[0] if lines else type(e).__name__)[:limit]


class Interrupted(UserError):
    """A run stopped by Ctrl-C or SIGTERM. `resumable`: the same command with --resume continues it
    (cli.run_main prints that command)."""

    def __init__(self, message: str, resumable: bool = False):
        super().__init__(message)
        self.resumable = resumable
