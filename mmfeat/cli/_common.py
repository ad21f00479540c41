"""What the sub-commands share: arguments, printing, one-line errors."""

import argparse
import contextlib
import errno
import logging
import os
import time

from mmfeat.utils._oserrors import os_error_advice

__all__ = [
    "ROWS_HELP",
    "add_confine_arg",
    "add_max_model_bytes_arg",
    "add_model_args",
    "echo_logs",
    "error_line",
    "seconds_since_start",
]

#: The row-number convention, in the help of every command that reads records.
ROWS_HELP = (
    "Row numbers, in messages and in the error report's 'row' column, are "
    "0-based positions of the records in the file: row 0 is the first record "
    "after the header (a record whose text spans several lines is one row)."
)


def add_confine_arg(parser):
    """``--confine-to-root``."""
    parser.add_argument(
        "--confine-to-root",
        action="store_true",
        help="read image and audio files only from under the root (--root, "
        "else the records file's folder): a path that resolves outside it "
        "(absolute, '..', or a symlink) is not opened and is that record's "
        "error. Default: any path the records name is read",
    )


def _positive_bytes(text):
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(
            f"must be a positive number of bytes, got {text!r}"
        )
    return value


def add_max_model_bytes_arg(parser):
    """``--max-model-bytes``."""
    from mmfeat import DEFAULT_MAX_BYTES

    parser.add_argument(
        "--max-model-bytes",
        type=_positive_bytes,
        default=DEFAULT_MAX_BYTES,
        metavar="N",
        help="the most the model file may hold uncompressed (default "
        f"{DEFAULT_MAX_BYTES:,} bytes); checked before anything is inflated",
    )


def add_trusted_arg(parser, what="when loading the model"):
    """``--trusted TYPE ...``."""
    parser.add_argument(
        "--trusted",
        nargs="*",
        default=None,
        metavar="TYPE",
        help=f"extra types to trust {what}",
    )


def add_model_args(parser):
    """The model file, the records, and how paths in them are read."""
    parser.add_argument(
        "model", help="model file (.skops), from mmfeat fit or mmfeat.save"
    )
    parser.add_argument("records", help="records, .csv or .parquet")
    parser.add_argument(
        "--root",
        help="folder relative paths are relative to "
        "(default: the records file's folder)",
    )
    add_confine_arg(parser)
    add_trusted_arg(parser)
    add_max_model_bytes_arg(parser)


class _Echo(logging.Handler):
    """Print progress (INFO) on ``out`` and notes (WARNING and up) on ``err``."""

    def __init__(self, out, err):
        super().__init__(logging.INFO)
        self.out, self.err = out, err

    def emit(self, record):
        stream = self.err if record.levelno >= logging.WARNING else self.out
        print(record.getMessage(), file=stream, flush=True)


@contextlib.contextmanager
def echo_logs(out, err):
    """Print what the library logs on the ``mmfeat`` logger while a command runs."""
    logger = logging.getLogger("mmfeat")
    handler = _Echo(out, err)
    level, propagate = logger.level, logger.propagate
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False  # printed once, here
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
        logger.propagate = propagate


def _process_seconds():
    """Seconds since this process started (from /proc), or None."""
    try:
        with open("/proc/self/stat", "rb") as fh:
            fields = fh.read().rsplit(b")", 1)[1].split()
        with open("/proc/uptime", "rb") as fh:
            uptime = float(fh.read().split()[0])
        return uptime - int(fields[19]) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError, AttributeError):
        return None


_STARTED = time.perf_counter()  # when the command line was imported


def seconds_since_start(started=None):
    """Seconds since the process started, or since ``started`` (perf_counter).

    A command run as a program counts from the process's start (interpreter
    and imports included); one called as ``main([...])`` from Python counts
    from ``started``, the call.
    """
    if started is not None:
        return time.perf_counter() - started
    seconds = _process_seconds()
    return seconds if seconds is not None else time.perf_counter() - _STARTED


def _one_line(text):
    return " ".join(str(text).split())


def _os_error_message(exc, command):
    """One line for an ``OSError``: the file, the reason, what to do."""
    code = getattr(exc, "errno", None)
    reason = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
    where = getattr(exc, "filename", None)
    other = getattr(exc, "filename2", None)
    if where is not None:
        where = repr(os.fspath(where))
        if other is not None:
            where += f" -> {os.fspath(other)!r}"
        text = f"{where}: {reason}"
    else:
        text = reason
    advice = os_error_advice(code)
    if command == "score" and code in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
        advice += "; finished chunks are kept: run again with --resume"
    return f"{text}; {advice}"


def _memory_error_message(exc, command):
    detail = f" ({exc})" if str(exc) else ""
    todo = "lower --chunk-size"
    if command == "score":
        todo += " or --n-jobs, then run again with --resume"
    elif command == "fit":
        todo = "fit on fewer records, or lower --n-jobs"
    return f"out of memory{detail}; {todo}, or use a machine with more memory"


def error_line(exc, command):
    """``mmfeat <command>: error: ...`` for an error that ends a command."""
    from mmfeat.exceptions import MmfeatError

    if isinstance(exc, (MmfeatError, ImportError)):
        # ImportError: an optional extra the command needs is not installed
        message = str(exc)
    elif isinstance(exc, OSError):
        message = _os_error_message(exc, command)
    else:
        message = _memory_error_message(exc, command)
    return f"mmfeat {command}: error: {_one_line(message)}"
