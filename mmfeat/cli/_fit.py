"""``mmfeat fit``: :func:`mmfeat.workflows.fit_file` on the command line."""

import argparse

from mmfeat.cli._common import ROWS_HELP, add_confine_arg
from mmfeat.exceptions import ParameterError

__all__ = ["format_parser", "main"]

_KINDS = ("image", "text", "audio")


def _image_features(text):
    from mmfeat.recipes import IMAGE_FEATURES

    names = [f.strip().lower() for f in text.split(",") if f.strip()]
    known = set(IMAGE_FEATURES) | {"bovw"}
    bad = [n for n in names if n not in known]
    if not names or bad:
        raise argparse.ArgumentTypeError(
            f"give comma-separated names among {', '.join(IMAGE_FEATURES)}; got "
            f"{text!r}"
        )
    return names


def format_parser(parser):
    """Add the arguments of ``mmfeat fit`` to ``parser``."""
    from mmfeat.recipes import TEXT_FEATURES

    parser.description = (
        "Fit a model on a CSV or Parquet table with one column per modality "
        "(image and audio paths, relative to the table's folder or absolute; "
        "text) and a label column. Prints the fusion report on a held-out "
        "split, refits on every row, and saves the model with mmfeat.save. "
        "Records without a label or without any modality are left out, and "
        "unreadable files leave their record without that modality; both are "
        "listed on stderr."
    )
    parser.epilog = ROWS_HELP
    parser.add_argument("--data", required=True, help="records, .csv or .parquet")
    parser.add_argument("--image-col", help="column of image paths")
    parser.add_argument("--text-col", help="column of text")
    parser.add_argument("--audio-col", help="column of audio paths")
    parser.add_argument("--label-col", required=True, help="column of class labels")
    parser.add_argument(
        "--fusion",
        choices=["early", "late", "stacking", "deep", "auto"],
        default="late",
        help="feature-level (early), late fusion with weights learned "
        "out-of-fold, stacking, one network over every modality (deep; needs "
        "torch), or auto: the best of all of them and of each modality alone "
        "by cross-validation on the training records (default: late)",
    )
    parser.add_argument(
        "--classifier",
        choices=["logistic", "linear-svm", "random-forest"],
        default="logistic",
        help="classifier per modality (default: logistic)",
    )
    parser.add_argument(
        "--image-features",
        type=_image_features,
        default=["hog", "color"],
        metavar="{hog,sift,color,cnn,cnn-onnx}[,...]",
        help="comma-separated image descriptors: hog, sift (a bag of SIFT "
        "words; also 'bovw'), color (HSV histogram), cnn (a small network "
        "trained on the labels; needs torch), cnn-onnx (that network exported "
        "to ONNX: mmfeat score then needs onnxruntime, not torch; fitting "
        "needs torch and mmfeat[onnx]). Default: hog,color",
    )
    parser.add_argument(
        "--text-features",
        choices=TEXT_FEATURES,
        default="auto",
        help="TF-IDF of word 1-2-grams (word) or of character 1-3-grams "
        "(char: Chinese, Japanese, Thai); auto: the text extractor chooses "
        "char for training texts in scripts written without spaces, else "
        "word, and fit prints which (default: auto)",
    )
    parser.add_argument(
        "--test-size",
        type=float,
        default=0.2,
        help="held-out share for the report (default 0.2; 0 skips)",
    )
    parser.add_argument(
        "--no-refit",
        action="store_true",
        help="keep the model fitted on the training split only",
    )
    parser.add_argument(
        "--root",
        help="folder relative paths are relative to "
        "(default: the records file's folder)",
    )
    add_confine_arg(parser)
    parser.add_argument("--random-state", type=int, default=0)
    parser.add_argument(
        "--n-jobs",
        type=int,
        default=None,
        help="cores to use: parallel modality fits, extractor and BLAS/OpenCV "
        "threads (default 1; -1 all cores; at most the machine's cores)",
    )
    parser.add_argument("-o", "--output", required=True, help="model file (.skops)")


def main(args, out, err):
    """Run ``mmfeat fit``; return the exit status."""
    from mmfeat.workflows import fit_file

    columns = {
        k: getattr(args, f"{k}_col") for k in _KINDS if getattr(args, f"{k}_col")
    }
    if not columns:
        raise ParameterError(
            "give at least one of --image-col, --text-col, --audio-col"
        )
    if not 0 <= args.test_size < 1:
        raise ParameterError(
            f"--test-size must be in [0, 1) (0 skips the report); got {args.test_size}"
        )
    result = fit_file(
        args.data,
        args.output,
        columns=columns,
        label_column=args.label_col,
        fusion=args.fusion,
        classifier=args.classifier,
        image_features=args.image_features,
        text_features=args.text_features,
        test_size=args.test_size,
        refit=not args.no_refit,
        root=args.root,
        confine_to_root=args.confine_to_root,
        random_state=args.random_state,
        n_jobs=args.n_jobs,
    )
    report = result["report"]
    if report is not None:
        print(f"\nheld-out report ({result['n_held_out']} records):", file=out)
        print(report.to_string(float_format=lambda v: f"{v:.4f}"), file=out)
    model = result["model"]
    results = getattr(model, "cv_results_", None)
    if isinstance(results, dict) and "candidate" in results:
        print(
            "\nfusion candidates (cross-validated on the training records):", file=out
        )
        for name, score, note in zip(
            results["candidate"], results["mean_test_score"], results["note"]
        ):
            mark = "*" if name == model.best_candidate_ else " "
            shown = f"  ({note})" if note else ""
            print(f" {mark} {name:<14} {score:.4f}{shown}", file=out)
        model = model.best_estimator_
    weights = getattr(model, "weights_", None)
    if isinstance(weights, dict) and len(weights) > 1:
        shown = ", ".join(f"{k} {v:.3f}" for k, v in weights.items())
        print(f"fusion weights: {shown}", file=out)
    print(
        f"\nsaved {type(result['model']).__name__} to {result['path']} "
        f"({result['seconds']:.1f} s)",
        file=out,
    )
    return 0
