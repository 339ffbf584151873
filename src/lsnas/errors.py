"""Errors that are the user's to fix (a setting, a file, missing data), as opposed to bugs.

The command-line entry points print a ``UserError``'s message and exit with status 2, without a
traceback (``HYDRA_FULL_ERROR=1`` shows one). Every message names the setting or file to fix.
"""

from __future__ import annotations


class UserError(Exception):
    """Something the user can fix; the message says what and where."""


class ConfigError(UserError, ValueError):
    """A setting that is invalid on its own or in combination with others (the message names it)."""


class DiskFullError(UserError, OSError):
    """A write failed for lack of space (ENOSPC); the message names the file and what is intact."""


def disk_full(path, kept: str) -> DiskFullError:
    return DiskFullError(f"no space left on the device while writing {path}; {kept}. Free space (or point "
                         "hydra.run.dir elsewhere) and resume with ckpt_path=last")


def find_user_error(error: BaseException | None) -> UserError | None:
    """The UserError behind ``error``, following causes (Hydra's instantiate wraps constructor errors)."""
    seen = set()
    while error is not None and id(error) not in seen:
        if isinstance(error, UserError):
            return error
        seen.add(id(error))
        error = error.__cause__ or error.__context__
    return None
