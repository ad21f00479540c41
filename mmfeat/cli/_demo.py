"""``mmfeat demo``: real metrics on the embedded digits and, when present, AV digits."""

import time

import numpy as np

__all__ = ["format_parser", "main", "run_demo", "segmentation_demo"]

# segmentation section: the settings measured in the demo (see segmentation_demo)
_TEXTURE_IMAGES = 48  # 24 train / 24 test mosaics
_TEXTURE_SIGMAS = (1.0, 2.0, 4.0)
_ENERGY_SIGMAS = (4.0, 8.0)
_SEG_ITER = 50
_SEG_SAMPLES = 2000
_SEG_SMOOTHING = 8.0
_STEREO_ITER = 30

_AV_MODELS = {
    "early fusion (fuser + SVC)": ("early", None),
    "late fusion (equal weights)": ("late", None),
    "stacking (logistic meta-model)": ("stacking", None),
}


def format_parser(parser):
    """Add the arguments of ``mmfeat demo`` to ``parser``."""
    parser.description = (
        "Fit and evaluate a model on scikit-learn's bundled 8x8 digits, then "
        "pixel segmenters on embedded texture mosaics and on a colour + depth "
        "stereo scene (image only, depth only, both fused), then, when the "
        "data home holds FSDD and USPS, on audio-visual digits (image only, "
        "audio only, and both fused). Prints accuracy, macro recall and macro "
        "F1 (pixel accuracy and mean IoU for segmentation) on the held-out "
        "split, and its progress on stderr."
    )
    parser.add_argument(
        "--data-home",
        default=None,
        help="folder holding the real datasets (default: $MMFEAT_DATA_HOME, "
        "else ~/mmfeat_data)",
    )
    parser.add_argument(
        "--n-jobs", type=int, default=None, help="parallel workers (default: 1)"
    )
    parser.add_argument(
        "--embedded-only",
        action="store_true",
        help="run only the embedded-data part, even when real data is present",
    )
    parser.add_argument("--random-state", type=int, default=0, help="seed (default 0)")


def _scores(y_true, y_pred):
    from sklearn.metrics import accuracy_score, f1_score, recall_score

    return {
        "accuracy": accuracy_score(y_true, y_pred),
        "macro recall": recall_score(y_true, y_pred, average="macro"),
        "macro F1": f1_score(y_true, y_pred, average="macro"),
    }


def _scores_from(report, modality):
    row = report.loc[modality]
    return {
        "accuracy": row["accuracy"],
        "macro recall": row["macro_recall"],
        "macro F1": row["macro_f1"],
    }


def _print_table(title, rows, out):
    print(f"\n{title}", file=out)
    print(
        f"  {'model':<34}{'accuracy':>10}{'macro recall':>14}{'macro F1':>10}", file=out
    )
    for name, s in rows:
        print(
            f"  {name:<34}{s['accuracy']:>10.4f}{s['macro recall']:>14.4f}"
            f"{s['macro F1']:>10.4f}",
            file=out,
        )
    out.flush()


class _Progress:
    """``[12.3 s] fitting ...`` lines on stderr, so a long part is not silent."""

    def __init__(self, err):
        self.err = err
        self.t0 = time.perf_counter()

    def __call__(self, text):
        if self.err is not None:
            print(f"[{time.perf_counter() - self.t0:5.1f} s] {text}", file=self.err)
            self.err.flush()


def _pixels(images):
    return np.stack([np.asarray(im, dtype=np.float32).ravel() for im in images])


def _embedded(random_state, out, progress):
    from sklearn.model_selection import train_test_split
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import FunctionTransformer
    from sklearn.svm import SVC

    from mmfeat.datasets import load_digits_images
    from mmfeat.features.image import HOGExtractor
    from mmfeat.fusion import make_fuser

    bunch = load_digits_images()
    frame = bunch.frame[["image"]]
    y = np.asarray(bunch.target)
    X_tr, X_te, y_tr, y_te = train_test_split(
        frame, y, test_size=0.25, stratify=y, random_state=random_state
    )
    # two views of one image, fused at feature level: pixels and HOG
    pixels = FunctionTransformer(_pixels, feature_names_out="one-to-one")
    hog = HOGExtractor(pixels_per_cell=(2, 2), cells_per_block=(2, 2))
    rows = []
    for name, blocks in [
        ("pixels + SVC", {"pixels": (pixels, "image")}),
        ("HOG + SVC", {"hog": (hog, "image")}),
        (
            "fused pixels+HOG + SVC",
            {"pixels": (pixels, "image"), "hog": (hog, "image")},
        ),
    ]:
        progress(f"embedded digits: fitting {name}")
        model = make_pipeline(
            make_fuser(blocks, block_norm="standard"),
            SVC(C=10, random_state=random_state),
        ).fit(X_tr, y_tr)
        rows.append((name, _scores(y_te, model.predict(X_te))))
    _print_table(
        f"Embedded data: scikit-learn digits, 8x8 images "
        f"({len(y_tr)} train / {len(y_te)} test, stratified)",
        rows,
        out,
    )


def _av_digits(data_home, n_jobs, random_state, out, progress):
    from mmfeat.datasets import load_av_digits
    from mmfeat.evaluation import fusion_report
    from mmfeat.fusion import is_modality_ensemble
    from mmfeat.recipes import make_av_digits_model

    progress("audio-visual digits: loading USPS images and FSDD recordings")
    bunch = load_av_digits(data_home=data_home, random_state=random_state)
    frame = bunch.frame[["image", "audio", "split"]]
    y = np.asarray(bunch.target)
    train = (frame["split"] == "train").to_numpy()
    X_tr, X_te = frame[train], frame[~train]
    t0 = time.perf_counter()
    rows = []
    for k, (name, (kind, weights)) in enumerate(_AV_MODELS.items(), 1):
        model = make_av_digits_model(
            kind, weights=weights, n_jobs=n_jobs, random_state=random_state
        )
        progress(
            f"audio-visual digits: fitting {name} on {train.sum()} records "
            f"({k}/{len(_AV_MODELS)})"
        )
        if is_modality_ensemble(model):
            # each recording is paired with several images: keep it in one fold
            model.fit(X_tr, y[train], groups=X_tr["audio"].to_numpy())
        else:
            model.fit(X_tr, y[train])
        progress(f"audio-visual digits: scoring {name} on {(~train).sum()} records")
        if kind == "late":
            report = fusion_report(model, X_te, y[~train])
            for modality in ("image", "audio"):
                rows.append((f"{modality} alone (SVC)", _scores_from(report, modality)))
        rows.append((name, _scores(y[~train], model.predict(X_te))))
    _print_table(
        f"Audio-visual digits: USPS image + FSDD recording "
        f"({train.sum()} train / {(~train).sum()} test, "
        f"{time.perf_counter() - t0:.1f} s)",
        rows,
        out,
    )


def _texture_energy(color="grey"):
    """Local filter energy (:class:`~mmfeat.segmentation.TextureEnergy`)."""
    from mmfeat.segmentation import TextureEnergy

    return TextureEnergy(
        sigmas=_TEXTURE_SIGMAS,
        features=("gaussian", "gradient", "hessian", "log"),
        energy_sigmas=_ENERGY_SIGMAS,
        color=color,
    )


def _split(frame, column):
    train = (frame["split"] == "train").to_numpy()
    rows = {k: np.flatnonzero(v) for k, v in (("train", train), ("test", ~train))}
    return {k: frame.iloc[r].reset_index(drop=True) for k, r in rows.items()}


def _seg_scores(truth, pred):
    from mmfeat.evaluation import mean_iou, pixel_accuracy

    return {
        "pixel accuracy": float(pixel_accuracy(truth, pred)),
        "mean IoU": float(mean_iou(truth, pred)),
    }


def _print_seg_table(title, rows, out):
    print(f"\n{title}", file=out)
    print(f"  {'model':<42}{'pixel accuracy':>16}{'mean IoU':>10}", file=out)
    for name, s in rows.items():
        print(
            f"  {name:<42}{s['pixel accuracy']:>16.4f}{s['mean IoU']:>10.4f}", file=out
        )
    out.flush()


def segmentation_demo(*, random_state=0, n_jobs=None, out, progress=None):
    """The segmentation section of ``mmfeat demo``, on embedded data only.

    Texture mosaics (scikit-image's brick, grass and gravel): a
    :class:`~mmfeat.segmentation.PixelSegmenter` on local filter energy,
    trained on the train mosaics, scored on the test ones. Then the
    Middlebury motorcycle scene: its depth layers from the colour image
    alone, the disparity map alone, and both fused at feature level.

    Parameters
    ----------
    random_state : int, default=0
        Seed of the segmenters.
    n_jobs : int, default=None
        Threads of the classifiers (OpenMP, BLAS); ``None`` is 1.
    out : file
        Where the tables are printed.
    progress : callable, default=None
        Called with a line of text before each long step.

    Returns
    -------
    scores : dict
        ``{"textures": {model: scores}, "stereo": {model: scores}}``, each
        scores a dict with ``"pixel accuracy"`` and ``"mean IoU"`` on the
        test split, and ``"seconds"``: the section's time.
    """
    from threadpoolctl import threadpool_limits

    from mmfeat.utils._dask import count_cores

    progress = progress or (lambda text: None)
    t0 = time.perf_counter()
    # OpenMP threads beyond the cores asked for only compete (gradient
    # boosting slows down tenfold on a loaded 2-core machine)
    with threadpool_limits(limits=count_cores(n_jobs)[0]):
        textures = _texture_part(random_state, out, progress)
        stereo = _stereo_part(random_state, out, progress)
    return {
        "textures": textures,
        "stereo": stereo,
        "seconds": time.perf_counter() - t0,
    }


def _boosting(n_iter, random_state):
    from sklearn.ensemble import HistGradientBoostingClassifier

    return HistGradientBoostingClassifier(max_iter=n_iter, random_state=random_state)


def _texture_part(random_state, out, progress):
    from mmfeat.datasets import load_texture_mosaics
    from mmfeat.segmentation import PixelSegmenter

    progress("segmentation: texture mosaics")
    bunch = load_texture_mosaics(n_images=_TEXTURE_IMAGES)
    parts = _split(bunch.frame, "image")
    seg = PixelSegmenter(
        _texture_energy(),
        classifier=_boosting(_SEG_ITER, random_state),
        smoothing=_SEG_SMOOTHING,
        n_samples_per_image=_SEG_SAMPLES,
        random_state=random_state,
    ).fit(parts["train"]["image"], list(parts["train"]["mask"]))
    truth = list(parts["test"]["mask"])
    textures = {
        "filter energy + gradient boosting": _seg_scores(
            truth, list(seg.predict(parts["test"]["image"]))
        )
    }
    n_tr, n_te = len(parts["train"]), len(parts["test"])
    h, w = parts["train"]["image"][0].shape[:2]
    _print_seg_table(
        f"Segmentation: texture mosaics of brick, grass and gravel ({n_tr} train "
        f"/ {n_te} test images, {h}x{w})",
        textures,
        out,
    )
    return textures


def _stereo_part(random_state, out, progress):
    from mmfeat.datasets import load_stereo_depth
    from mmfeat.segmentation import PixelFeatures, PixelSegmenter

    progress("segmentation: colour + depth (stereo scene)")
    bunch = load_stereo_depth()
    parts = _split(bunch.frame, "image")
    truth = list(parts["test"]["mask"])
    # the photo's edges (where depth layers change) and the disparity's
    # smoothed values, slopes and blobs
    image = (
        "image",
        PixelFeatures(sigmas=(1.0, 4.0), features=("gradient",), color="grey"),
        "image",
    )
    depth = (
        "depth",
        PixelFeatures(
            sigmas=(1.0, 4.0, 8.0, 16.0),
            features=("gaussian", "gradient", "log"),
            color="raw",
        ),
        "depth",
    )
    stereo = {}
    for name, triples in (
        ("image alone", [image]),
        ("depth alone", [depth]),
        ("image + depth fused (feature level)", [image, depth]),
    ):
        progress(f"segmentation: {name}")
        seg = PixelSegmenter(
            triples,
            classifier=_boosting(_STEREO_ITER, random_state),
            n_samples_per_image=_SEG_SAMPLES,
            random_state=random_state,
        ).fit(parts["train"], list(parts["train"]["mask"]))
        stereo[name] = _seg_scores(truth, list(seg.predict(parts["test"])))
    n_tr, n_te = len(parts["train"]), len(parts["test"])
    h, w = parts["train"]["image"][0].shape[:2]
    _print_seg_table(
        "Segmentation: 3 depth layers of the Middlebury motorcycle, colour + "
        f"disparity ({n_tr} train / {n_te} test tiles, {h}x{w})",
        stereo,
        out,
    )
    return stereo


def run_demo(
    *, data_home=None, n_jobs=None, embedded_only=False, random_state=0, out, err=None
):
    """Run the demo: tables on ``out``, progress lines on ``err``; return 0."""
    from mmfeat.exceptions import DataNotFoundError

    progress = _Progress(err)
    print("mmfeat demo", file=out)
    _embedded(random_state, out, progress)
    segmentation_demo(
        random_state=random_state, n_jobs=n_jobs, out=out, progress=progress
    )
    if embedded_only:
        return 0
    try:
        _av_digits(data_home, n_jobs, random_state, out, progress)
    except DataNotFoundError as exc:
        print(
            f"\nAudio-visual digits skipped: {exc}\n"
            "(The embedded part above needs no data.)",
            file=out,
        )
    progress("done")
    return 0


def main(args, out, err):
    """Run ``mmfeat demo``; return the exit status."""
    return run_demo(
        data_home=args.data_home,
        n_jobs=args.n_jobs,
        embedded_only=args.embedded_only,
        random_state=args.random_state,
        out=out,
        err=err,
    )
