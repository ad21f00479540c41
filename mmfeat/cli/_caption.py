"""``mmfeat caption``: :func:`mmfeat.workflows.caption_file` on the command line."""

from mmfeat.cli import _score
from mmfeat.cli._common import seconds_since_start

__all__ = ["format_parser", "main"]


def format_parser(parser):
    """Add the arguments of ``mmfeat caption`` (those of ``mmfeat score``)."""
    _score.format_parser(parser, output_help="captions, .parquet or .csv")
    parser.description = (
        "Stream a CSV or Parquet table of photos through a saved captioner "
        "(mmfeat.generation) in chunks and write one caption per record, in "
        "input order; a record whose photo cannot be read gets no caption "
        "and an entry in the error report."
    )


def main(args, out, err):
    """Run ``mmfeat caption``; return the exit status."""
    from mmfeat.scoring import parallel_backend
    from mmfeat.workflows import caption_file

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
                summary = caption_file(args.model, args.records, args.output, **kwargs)
        else:
            summary = caption_file(args.model, args.records, args.output, **kwargs)
    except KeyboardInterrupt:
        print(
            "\ninterrupted: finished chunks are kept; run the same command "
            "with --resume to continue",
            file=err,
        )
        return 130
    total = seconds_since_start(getattr(args, "started", None))
    rows = summary["rows"]
    overall = rows / total if total > 0 else float("nan")
    print(
        f"captioned {rows} records in {summary['scoring_seconds']:.1f} s "
        f"({summary['rows_per_s']:.0f} rows/s; {overall:.0f} rows/s in all): "
        f"{summary['scored']} with a caption, {summary['unscored']} without "
        f"-> {summary['output']}",
        file=out,
    )
    print(f"{summary['errors']} error entries -> {summary['errors_path']}", file=out)
    return 0
