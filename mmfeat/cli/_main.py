"""Argument parsing and dispatch for the ``mmfeat`` command."""

import argparse
import sys

import mmfeat
from mmfeat.cli._batch import add_batch_commands, run_batch_command

__all__ = ["build_parser", "main"]


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
    demo = sub.add_parser(
        "demo",
        help="fit and evaluate models on the bundled digits (and on "
        "audio-visual digits when FSDD and USPS are in the data home)",
        description=(
            "Fit and evaluate a model on scikit-learn's bundled 8x8 digits, then, "
            "when the data home holds FSDD and USPS, on audio-visual digits "
            "(image only, audio only, and both fused). Prints accuracy, macro "
            "recall and macro F1 on the held-out split."
        ),
    )
    demo.add_argument(
        "--data-home",
        default=None,
        help="folder holding the real datasets (default: $MMFEAT_DATA_HOME, "
        "else ~/mmfeat_data)",
    )
    demo.add_argument(
        "--n-jobs", type=int, default=None, help="parallel workers (default: 1)"
    )
    demo.add_argument(
        "--embedded-only",
        action="store_true",
        help="run only the embedded-data part, even when real data is present",
    )
    demo.add_argument("--random-state", type=int, default=0, help="seed (default 0)")
    add_batch_commands(sub)
    return parser


def main(argv=None):
    """Run the ``mmfeat`` command; return its exit status.

    Parameters
    ----------
    argv : list of str, default=None
        Arguments without the program name; ``None`` reads ``sys.argv``.

    Returns
    -------
    status : int
        0 on success.
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    if args.command == "demo":
        from mmfeat.cli._demo import run_demo

        return run_demo(
            data_home=args.data_home,
            n_jobs=args.n_jobs,
            embedded_only=args.embedded_only,
            random_state=args.random_state,
            out=sys.stdout,
        )
    if args.command in ("fit", "score", "extract", "info"):
        return run_batch_command(args)
    parser.error(f"unknown command {args.command!r}")  # pragma: no cover
    return 2
