"""``mmfeat demo``: real metrics on the embedded digits and, when present, AV digits."""

import time

import numpy as np
from sklearn.metrics import accuracy_score, f1_score, recall_score
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC

from mmfeat.datasets import load_av_digits, load_digits_images
from mmfeat.exceptions import DataNotFoundError
from mmfeat.features.audio import MFCCExtractor
from mmfeat.features.image import HOGExtractor
from mmfeat.io import AudioReader, ImageReader

__all__ = ["run_demo"]


def _scores(y_true, y_pred):
    return {
        "accuracy": accuracy_score(y_true, y_pred),
        "macro recall": recall_score(y_true, y_pred, average="macro"),
        "macro F1": f1_score(y_true, y_pred, average="macro"),
    }


def _print_table(title, rows, out):
    print(f"\n{title}", file=out)
    print(
        f"  {'model':<28}{'accuracy':>10}{'macro recall':>14}{'macro F1':>10}", file=out
    )
    for name, s in rows:
        print(
            f"  {name:<28}{s['accuracy']:>10.4f}{s['macro recall']:>14.4f}"
            f"{s['macro F1']:>10.4f}",
            file=out,
        )


def _svc(random_state):
    return make_pipeline(StandardScaler(), SVC(C=10, random_state=random_state))


def _pixels(images):
    return np.stack([np.asarray(im, dtype=np.float32).ravel() for im in images])


def _embedded(random_state, out):
    bunch = load_digits_images()
    images = ImageReader().fit_transform(bunch.frame["image"])
    X = _pixels(images)
    y = bunch.target
    X_tr, X_te, y_tr, y_te = train_test_split(
        X, y, test_size=0.25, stratify=y, random_state=random_state
    )
    model = _svc(random_state).fit(X_tr, y_tr)
    _print_table(
        f"Embedded data: scikit-learn digits, 8x8 images "
        f"({len(y_tr)} train / {len(y_te)} test, stratified)",
        [("pixels + SVC", _scores(y_te, model.predict(X_te)))],
        out,
    )


def _av_digits(data_home, n_jobs, random_state, out):
    bunch = load_av_digits(data_home=data_home, random_state=random_state)
    frame = bunch.frame
    t0 = time.perf_counter()
    images = np.stack(list(frame["image"]))
    hog = HOGExtractor(pixels_per_cell=(4, 4), cells_per_block=(2, 2), n_jobs=n_jobs)
    X_img = np.hstack([hog.fit_transform(images), _pixels(images)])
    paths = frame["audio"].unique()
    clips = AudioReader(sr=8000, n_jobs=n_jobs).fit_transform(paths)
    mfcc = MFCCExtractor(
        sr=8000,
        n_fft=256,
        hop_length=64,
        n_mels=40,
        n_mfcc=13,
        deltas=2,
        n_jobs=n_jobs,
    )
    feats = dict(zip(paths, mfcc.fit_transform(clips)))
    X_aud = np.stack([feats[p] for p in frame["audio"]])
    train = (frame["split"] == "train").to_numpy()
    y = np.asarray(bunch.target)
    rows = []
    for name, X in [
        ("image: HOG+pixels + SVC", X_img),
        ("audio: MFCC+deltas + SVC", X_aud),
        ("early fusion: both + SVC", np.hstack([X_img, X_aud])),
    ]:
        model = _svc(random_state).fit(X[train], y[train])
        rows.append((name, _scores(y[~train], model.predict(X[~train]))))
    _print_table(
        f"Audio-visual digits: USPS image + FSDD recording "
        f"({train.sum()} train / {(~train).sum()} test, "
        f"{time.perf_counter() - t0:.1f} s)",
        rows,
        out,
    )


def run_demo(*, data_home=None, n_jobs=None, embedded_only=False, random_state=0, out):
    """Run the demo and print its tables to ``out``; return 0."""
    print("mmfeat demo", file=out)
    _embedded(random_state, out)
    if embedded_only:
        return 0
    try:
        _av_digits(data_home, n_jobs, random_state, out)
    except DataNotFoundError as exc:
        print(
            f"\nAudio-visual digits skipped: {exc}\n"
            "(The embedded part above needs no data.)",
            file=out,
        )
    return 0
