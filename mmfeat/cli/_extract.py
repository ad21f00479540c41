"""``mmfeat extract``: :func:`mmfeat.workflows.extract_file` on the command line."""

from mmfeat.cli._common import ROWS_HELP, add_model_args

__all__ = ["format_parser", "main"]


def format_parser(parser):
    """Add the arguments of ``mmfeat extract`` to ``parser``."""
    parser.description = (
        "Write the features one modality of a saved model computes (or the "
        "fuser's fused features) for every record, one row per record."
    )
    parser.epilog = ROWS_HELP
    add_model_args(parser)
    parser.add_argument(
        "--modality",
        help="modality (or fuser block) name; "
        "default: the whole fuser of an early-fusion model",
    )
    parser.add_argument("-o", "--output", required=True, help="features, .parquet")
    parser.add_argument(
        "--errors", help="error report (default: <output stem>.errors.csv)"
    )
    parser.add_argument("--chunk-size", type=int, default=1000)
    parser.add_argument(
        "--n-jobs",
        type=int,
        default=None,
        help="threads for the model's extractors, BLAS and OpenCV, whatever "
        "the model file says (default 1; -1 all cores; at most the "
        "machine's cores)",
    )
    parser.add_argument("--on-error", choices=["missing", "raise"], default="missing")
    parser.add_argument("--id-col", help="column written next to the features")


def main(args, out, err):
    """Run ``mmfeat extract``; return the exit status."""
    from mmfeat.workflows import extract_file

    summary = extract_file(
        args.model,
        args.records,
        args.output,
        modality=args.modality,
        errors=args.errors,
        chunk_size=args.chunk_size,
        n_jobs=args.n_jobs,
        on_error=args.on_error,
        id_column=args.id_col,
        root=args.root,
        confine_to_root=args.confine_to_root,
        trusted=args.trusted,
        max_model_bytes=args.max_model_bytes,
    )
    print(
        f"wrote {summary['rows']} x {summary['n_features']} {summary['name']} "
        f"features in {summary['seconds']:.1f} s -> {summary['output']}; "
        f"{summary['errors']} error entries -> {summary['errors_path']}",
        file=out,
    )
    return 0
