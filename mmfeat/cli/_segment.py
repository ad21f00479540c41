"""``mmfeat segment``: :func:`mmfeat.workflows.segment_file` on the command line."""

import argparse

from mmfeat.cli._common import ROWS_HELP, add_model_args, seconds_since_start

__all__ = ["format_parser", "main"]

_MODEL_HELP = (
    "The model is a fitted segmenter saved from Python (mmfeat fit does not "
    "fit segmenters): seg = mmfeat.segmentation.PixelSegmenter().fit(images, "
    "masks); mmfeat.save(seg, 'seg.skops'). With the default classifier "
    "(histogram gradient boosting) load it with --trusted "
    "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor."
)


def _column(text):
    name, sep, col = text.partition("=")
    if not sep or not name or not col:
        raise argparse.ArgumentTypeError(
            f"must be MODALITY=COLUMN (image=photo_path); got {text!r}"
        )
    return name, col


def format_parser(parser):
    """Add the arguments of ``mmfeat segment`` to ``parser``."""
    parser.description = (
        "Stream a CSV or Parquet table of images through a saved segmenter in "
        "chunks and write one PNG label image per record into a folder, with "
        "index.csv: one line per record, in input order (row, name, source, "
        "mask, status, reason); records that cannot be segmented get status "
        "'error' and the reason, never a shifted row."
    )
    parser.epilog = f"{ROWS_HELP} {_MODEL_HELP}"
    add_model_args(parser)
    parser.add_argument(
        "-o",
        "--output-dir",
        required=True,
        help="folder of the masks: new (its parent must exist), empty, or from "
        "an earlier mmfeat segment run; not the records' folder or --root",
    )
    parser.add_argument(
        "--column",
        action="append",
        type=_column,
        default=[],
        metavar="MODALITY=COLUMN",
        help="records column of one of the model's modalities (repeatable; "
        "default: the columns the model was fitted with, 'image' for a "
        "one-column model)",
    )
    parser.add_argument(
        "--name-col",
        help="column naming each record's files (<name>.png; default: the row "
        "number, zero-padded)",
    )
    parser.add_argument(
        "--proba",
        action="store_true",
        help="also write <name>.proba.npy, the (H, W, classes) probability map",
    )
    parser.add_argument(
        "--proba-dtype",
        choices=["float32", "float16"],
        default="float32",
        help="type of the probability maps (default float32)",
    )
    parser.add_argument(
        "--chunk-size", type=int, default=32, help="records per chunk (default 32)"
    )
    parser.add_argument(
        "--n-jobs",
        type=int,
        default=None,
        help="threads of the model (default 1; -1 all cores; at most the "
        "machine's cores)",
    )
    parser.add_argument(
        "--on-error",
        choices=["missing", "raise"],
        default="missing",
        help="give a bad record status 'error' in the index and go on "
        "(missing, default), or stop (raise)",
    )
    parser.add_argument(
        "--resume",
        action="store_true",
        help="continue an interrupted run into the same folder (rows with a "
        "mask are not segmented again)",
    )
    parser.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="progress bar of records on stderr (default: when stderr is a terminal)",
    )


def main(args, out, err):
    """Run ``mmfeat segment``; return the exit status."""
    from mmfeat.workflows import segment_file

    try:
        summary = segment_file(
            args.model,
            args.records,
            args.output_dir,
            columns=dict(args.column) or None,
            name_column=args.name_col,
            root=args.root,
            confine_to_root=args.confine_to_root,
            chunk_size=args.chunk_size,
            resume=args.resume,
            proba=args.proba,
            proba_dtype=args.proba_dtype,
            on_error=args.on_error,
            n_jobs=args.n_jobs,
            trusted=args.trusted,
            max_model_bytes=args.max_model_bytes,
            progress=args.progress if args.progress is not None else err.isatty(),
        )
    except KeyboardInterrupt:
        print(
            "\ninterrupted: finished masks are kept; run the same command with "
            "--resume to continue",
            file=err,
        )
        return 130
    total = seconds_since_start(getattr(args, "started", None))
    skipped = (
        f", {summary['skipped']} already done by the interrupted run"
        if summary["skipped"]
        else ""
    )
    print(
        f"segmented {summary['rows']} records in {summary['seconds']:.1f} s "
        f"({summary['rows_per_s']:.1f} images/s; {total:.1f} s in all{skipped}): "
        f"{summary['ok']} with a mask, {summary['errors']} without -> "
        f"{summary['output_dir']}",
        file=out,
    )
    print(f"index of every record -> {summary['index']}", file=out)
    return 0
