"""``mmfeat score``: :func:`mmfeat.scoring.score_file` on the command line."""

import argparse

from mmfeat.cli._common import ROWS_HELP, add_model_args, seconds_since_start

__all__ = ["format_parser", "main"]


def format_parser(parser, *, output_help="predictions, .parquet or .csv"):
    """Add the arguments of ``mmfeat score`` to ``parser``."""
    parser.description = (
        "Stream a CSV or Parquet table through a saved model in chunks and "
        "write one prediction per record, in input order, with per-class "
        "probabilities; bad records are scored from the modalities they "
        "still have and listed in the error report."
    )
    parser.epilog = ROWS_HELP
    add_model_args(parser)
    parser.add_argument("-o", "--output", required=True, help=output_help)
    parser.add_argument(
        "--errors",
        help="error report, .csv or .parquet: row, id, column, source, reason "
        "(default: <output stem>.errors.csv)",
    )
    parser.add_argument(
        "--chunk-size", type=int, default=1000, help="records per chunk (default 1000)"
    )
    parser.add_argument(
        "--n-jobs",
        type=int,
        default=None,
        help="worker processes, one thread each whatever the model file "
        "says (default 1; -1 all cores; at most the machine's cores; with "
        "--scheduler, every worker of the cluster)",
    )
    parser.add_argument(
        "--on-error",
        choices=["missing", "raise"],
        default="missing",
        help="score a bad record from its other modalities and "
        "report it (missing, default), or stop (raise)",
    )
    parser.add_argument(
        "--id-col",
        help="column written next to each prediction (default: the row number)",
    )
    parser.add_argument(
        "--resume",
        action="store_true",
        help="continue an interrupted run into the same output",
    )
    parser.add_argument(
        "--scheduler", help="Dask scheduler address, e.g. tcp://10.0.0.5:8786"
    )
    parser.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="progress bar of records with rows/s on stderr (default: when "
        "stderr is a terminal)",
    )


def main(args, out, err):
    """Run ``mmfeat score``; return the exit status."""
    from mmfeat.scoring import score_file

    return run_file_command(args, out, err, score_file, ("scored", "a prediction"))


def run_file_command(args, out, err, work, words):
    """Run ``work`` (``score_file`` or ``caption_file``) with the score options.

    ``words`` is ``(verb, what a scored record has)`` for the summary line.
    """
    from mmfeat.scoring import parallel_backend

    kwargs = dict(
        errors=args.errors,
        chunk_size=args.chunk_size,
        n_jobs=args.n_jobs,
        on_error=args.on_error,
        id_column=args.id_col,
        root=args.root,
        confine_to_root=args.confine_to_root,
        resume=args.resume,
        progress=args.progress if args.progress is not None else err.isatty(),
        trusted=args.trusted,
        max_model_bytes=args.max_model_bytes,
    )
    try:
        if args.scheduler:
            with parallel_backend(args.scheduler):
                summary = work(args.model, args.records, args.output, **kwargs)
        else:
            summary = work(args.model, args.records, args.output, **kwargs)
    except KeyboardInterrupt:
        print(
            "\ninterrupted: finished chunks are kept; run the same command "
            "with --resume to continue",
            file=err,
        )
        return 130
    rows = summary["rows"]
    # since the process started (or main() was called, from Python)
    total = seconds_since_start(getattr(args, "started", None))
    startup = max(total - summary["scoring_seconds"], 0.0)
    overall = rows / total if total > 0 else float("nan")
    resumed = (
        f", resumed after {summary['resumed_chunks']} chunk(s)"
        if summary["resumed_chunks"]
        else ""
    )
    verb, has = words
    print(
        f"{verb} {rows} records in {summary['scoring_seconds']:.1f} s "
        f"({summary['rows_per_s']:.0f} rows/s; {overall:.0f} rows/s with the "
        f"{startup:.1f} s start-up{resumed}): {summary['scored']} with "
        f"{has}, {summary['unscored']} without -> {summary['output']}",
        file=out,
    )
    print(f"{summary['errors']} error entries -> {summary['errors_path']}", file=out)
    return 0
