"""``mmfeat check``: :func:`mmfeat.workflows.check_file` on the command line."""

from mmfeat.cli._common import ROWS_HELP, add_confine_arg
from mmfeat.exceptions import ParameterError

__all__ = ["format_parser", "main"]


def format_parser(parser):
    """Add the arguments of ``mmfeat check`` to ``parser``."""
    parser.description = (
        "Check a records file before training: blurry, dark, light, blank, "
        "odd-sized and unreadable images; duplicate records; records also in "
        "a test file (--other: leaks); wrong labels and photos attached to the "
        "wrong record (from the out-of-fold probabilities of a late-fusion "
        "model of every modality; needs --label-col). Prints the summary and "
        "the worst records of each issue; writes the full tables."
    )
    parser.epilog = ROWS_HELP
    parser.add_argument("records", help="records, .csv or .parquet")
    parser.add_argument("--image-col", help="column of image paths")
    parser.add_argument("--text-col", help="column of text")
    parser.add_argument("--audio-col", help="column of audio paths")
    parser.add_argument("--label-col", help="column of class labels")
    parser.add_argument("--other", help="a second records file (the test part)")
    parser.add_argument(
        "-o",
        "--output",
        help="per-record table, .csv or .parquet (and <stem>.issues.csv beside it)",
    )
    parser.add_argument("--plots", help="folder for thumbnails of the worst records")
    parser.add_argument(
        "--checks",
        help="comma-separated among images, duplicates, leaks, labels, pairs "
        "(default: all the inputs allow)",
    )
    parser.add_argument("--cv", type=int, default=5, help="folds (default 5)")
    parser.add_argument(
        "--pair-threshold",
        type=float,
        default=0.7,
        help="mismatched-pair score from which a record is listed (default 0.7)",
    )
    parser.add_argument("--n-jobs", type=int, default=None)
    parser.add_argument("--worst", type=int, default=5, help="records shown per issue")
    parser.add_argument("--root", help="folder relative paths are resolved against")
    add_confine_arg(parser)


def main(args, out, err):
    """Run ``mmfeat check``; return the exit status."""
    from mmfeat.workflows import check_file

    columns = {
        kind: col
        for kind, col in (
            ("image", args.image_col),
            ("text", args.text_col),
            ("audio", args.audio_col),
        )
        if col
    }
    if not columns:
        raise ParameterError(
            "give at least one of --image-col, --text-col, --audio-col"
        )
    checks = None
    if args.checks:
        checks = [c.strip() for c in args.checks.split(",") if c.strip()]
    result = check_file(
        args.records,
        columns=columns,
        label_column=args.label_col,
        other=args.other,
        output=args.output,
        plots=args.plots,
        checks=checks,
        cv=args.cv,
        pair_threshold=args.pair_threshold,
        root=args.root,
        confine_to_root=args.confine_to_root,
        n_jobs=args.n_jobs,
    )
    print(result["report"].to_text(args.worst), file=out)
    if result["output"]:
        print(
            f"\nwrote {result['output']} (one row per record) and "
            f"{result['issues_output']} (one row per issue)",
            file=out,
        )
    for path in result["plots"]:
        print(f"wrote {path}", file=out)
    print(f"checked in {result['seconds']:.1f} s", file=out)
    return 0
