"""One line for an ``OSError``: what happened and what to do about it.

Shared by the command line, batch scoring and :func:`mmfeat.save`, so a
full disk or a file-size limit reads the same wherever it is met.
"""

import errno
import os
import re

from mmfeat.exceptions import OutputError
from mmfeat.utils._sizes import short_size

__all__ = ["errno_of", "os_error_advice", "output_error"]

# what to do about an OSError, by errno
OS_ADVICE = {
    errno.ENOENT: "check the path; create the folder first if it is an output",
    errno.ENOTDIR: "a part of the path is a file, not a folder; fix the path",
    errno.EISDIR: "it is a folder; give a file path",
    errno.EACCES: "no permission; choose a file or folder you can use",
    errno.EPERM: "not permitted; choose a file or folder you can use",
    errno.EROFS: "the file system is read-only; write to another folder",
    errno.ENOSPC: "the disk is full; free space or write to another disk",
    errno.EDQUOT: "the disk quota is used up; free space or raise the quota",
    errno.EFBIG: "a file-size limit was reached (ulimit -f); raise it or write "
    "a smaller output (Parquet instead of CSV)",
    errno.EMFILE: "too many open files; raise the limit (ulimit -n)",
    errno.ENAMETOOLONG: "the path is too long; use a shorter one",
}


def os_error_advice(code):
    """What to do about an ``OSError`` of errno ``code``."""
    return OS_ADVICE.get(code, "check the disk, the paths and their permissions")


def errno_of(exc):
    """The errno of ``exc``, also when only its message names it (pyarrow)."""
    if exc.errno is not None:
        return exc.errno
    m = re.search(r"errno (\d+)", str(exc), re.IGNORECASE)
    return int(m.group(1)) if m else None


def output_error(exc, path):
    """One line for an ``OSError`` met writing ``path``: what and what to do."""
    code = errno_of(exc)
    folder = os.path.dirname(os.path.abspath(path))
    if code == errno.ENOSPC:
        todo = f"no space left on the disk of {folder!r}; free space there or "
        todo += "choose an output on another disk"
    elif code == errno.EDQUOT:
        todo = f"disk quota exceeded in {folder!r}; free space or raise the quota"
    elif code == errno.EFBIG:
        limit = ""
        try:
            import resource

            soft = resource.getrlimit(resource.RLIMIT_FSIZE)[0]
            if soft != resource.RLIM_INFINITY:
                limit = f" of {short_size(soft)}"
        except (ImportError, OSError, ValueError):
            pass
        todo = (
            f"the file size limit{limit} was reached; raise it (ulimit -f "
            "unlimited) or write a smaller output (Parquet instead of CSV)"
        )
    elif code in (errno.EROFS, errno.EACCES, errno.EPERM):
        todo = f"{folder!r} is not writable ({os.strerror(code)}); choose a "
        todo += "writable folder"
    elif code in (errno.ENOENT, errno.ENOTDIR):
        todo = f"its folder {folder!r} was removed or replaced while writing"
    else:
        reason = os.strerror(code) if code is not None else str(exc)
        todo = f"{reason}; {os_error_advice(code)} (folder {folder!r})"
    return OutputError(f"cannot write {path}: {todo}", errno=code)
