"""Argument parsing and dispatch for the ``mmfeat`` command.

One module per sub-command (``_fit``, ``_score``, ``_extract``, ``_info``,
``_demo``, ``_segment``, ``_caption``, ``_check``), each with ``format_parser(parser)``
and ``main(args, out, err)``, as skops's command line is laid out: they
parse and print, and call the library (:mod:`mmfeat.workflows`,
:mod:`mmfeat.scoring`) for the work.
"""

import argparse
import sys
import time

import mmfeat
from mmfeat.cli import (
    _caption,
    _check,
    _demo,
    _extract,
    _fit,
    _info,
    _score,
    _segment,
)
from mmfeat.cli._common import echo_logs, error_line

__all__ = ["build_parser", "main"]

# name: (module, one-line help)
COMMANDS = {
    "demo": (
        _demo,
        "fit and evaluate models on the bundled digits (and on audio-visual "
        "digits when FSDD and USPS are in the data home)",
    ),
    "fit": (_fit, "fit a multimodal model on a records file and save it"),
    "score": (_score, "score a records file with a saved model"),
    "extract": (
        _extract,
        "write a saved model's features of a records file to Parquet",
    ),
    "info": (_info, "describe a saved model"),
    "check": (
        _check,
        "report a records file's bad images, duplicates, leaks, wrong labels "
        "and mismatched pairs",
    ),
    "caption": (
        _caption,
        "write a saved captioner's title or caption of each photo of a records file",
    ),
    "segment": (
        _segment,
        "write a saved segmenter's PNG mask of each image of a records file",
    ),
}


def build_parser():
    """Return the ``argparse`` parser of the ``mmfeat`` command."""
    parser = argparse.ArgumentParser(
        prog="mmfeat",
        description=(
            "Multimodal features and fusion for image recognition, the "
            "scikit-learn way."
        ),
    )
    parser.add_argument(
        "--version", action="version", version=f"mmfeat {mmfeat.__version__}"
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module, help_text) in COMMANDS.items():
        module.format_parser(sub.add_parser(name, help=help_text))
    return parser


def run_command(args, out=None, err=None, *, started=None):
    """Run the parsed sub-command ``args.command``; return the exit status.

    What the library logs is printed while it runs: progress on ``out``,
    notes on ``err``. Errors end the command with one line on ``err``,
    ``mmfeat <command>: error: ...``, saying what was wrong and what to do,
    and status 2: bad parameters and input (:class:`~mmfeat.MmfeatError`),
    an optional extra that is not installed (an ``ImportError`` that says
    what to install), and what the machine refused (an ``OSError``: a missing folder, a
    read-only or full disk, a file-size limit; a ``MemoryError``). No
    traceback is printed.
    """
    out = sys.stdout if out is None else out
    err = sys.stderr if err is None else err
    module = COMMANDS[args.command][0]
    args.started = started  # for the rates with and without start-up
    try:
        with echo_logs(out, err):
            return module.main(args, out, err)
    except (mmfeat.MmfeatError, ImportError, OSError, MemoryError) as exc:
        print(error_line(exc, args.command), file=err)
        return 2


def main(argv=None):
    """Run the ``mmfeat`` command; return its exit status.

    Parameters
    ----------
    argv : list of str, default=None
        Arguments without the program name; ``None`` reads ``sys.argv``.

    Returns
    -------
    status : int
        0 on success, 2 on an error (one line on stderr), 130 when a
        ``score`` run was interrupted.
    """
    # run as a program, start-up counts from the process's start
    started = None if argv is None else time.perf_counter()
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    return run_command(args, started=started)
