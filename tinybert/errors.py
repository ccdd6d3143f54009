"""The user-facing error types. A script's main() (cli.run_main) shows them as one line and exits 2.

    raise UserError("--T must be positive, got 0")
    raise DataError("GLUE/SST-2/train.tsv", 17, "expected 2 tab-separated columns, found 3")

Library modules raise these for anything a user can fix (a file, a flag, data); a plain exception
means a bug here, and keeps its traceback.
"""
from __future__ import annotations

import contextlib
import errno
import os
import re
from typing import Iterator


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


# ----------------------------------------------------------------------------------------------
# Operating-system errors: one line naming the path and the reason (cli.run_main shows them)

_WRITE_ERRORS = {errno.ENOSPC: "no space left on the device; free some space or write elsewhere",
                 errno.EDQUOT: "disk quota exceeded; free some space or write elsewhere",
                 errno.EROFS: "read-only file system; choose a folder you may write to",
                 errno.EFBIG: "file too large for this file system"}


def os_error_line(e: OSError) -> str:
    """'cannot write out/p.tsv: read-only file system; ...': the path the error carries (both of a
    rename), and the reason in words; a full disk or read-only folder says what to do."""
    paths = [os.fsdecode(p) for p in (e.filename, e.filename2) if p is not None]
    where = " -> ".join(paths) if paths else "a file"
    if e.errno in _WRITE_ERRORS:
        return f"cannot write {where}: {_WRITE_ERRORS[e.errno]}"
    reason = (e.strerror or str(e) or type(e).__name__).lower()
    if e.errno in (errno.EACCES, errno.EPERM):
        return f"cannot use {where}: {reason}; check that you may read (or write) it"
    if e.errno == errno.ENOENT:
        return f"{where}: no such file or folder"
    return f"cannot use {where}: {reason}"


@contextlib.contextmanager
def naming(path: object, temporary: object = None) -> Iterator[None]:
    """An OSError that names no file (a write to a full disk, a close), or names the `temporary` file
    written in place of `path`, is raised naming `path`, so the one-line error says which output failed."""
    try:
        yield
    except OSError as e:
        if e.errno is None or (e.filename is not None and (temporary is None or e.filename != os.fspath(temporary))):
            raise
        raise type(e)(e.errno, e.strerror, os.fspath(path)) from e
    except Exception as e:
        # safetensors (Rust) reports a failed write as its own error type, the OS error only in its text.
        found = re.search(r"\(os error (\d+)\)", str(e))
        if found is None:
            raise
        code = int(found.group(1))
        raise OSError(code, os.strerror(code), os.fspath(path)) from e


def non_utf8_argument(argv: list[str]) -> str | None:
    """The first command-line argument holding bytes that are not UTF-8 (Python keeps them as lone
    surrogates), described for an error, or None."""
    for arg in argv:
        try:
            arg.encode("utf-8")
        except UnicodeEncodeError as e:
            raw = os.fsencode(arg)[:60]
            byte = arg[e.start].encode("utf-8", "surrogateescape")
            return f"{raw!r} holds byte 0x{byte[0]:02x}, which is not UTF-8"
    return None
