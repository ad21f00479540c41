"""Classification accuracy of mmfeat's audio and text features on real data.

Run from the repository root, with mmfeat importable and the staged data::

    PYTHONPATH=. MMFEAT_DATA_HOME=../shared/data \\
        python benchmarks/bench_accuracy_audio_text.py [--json FILE] [--large]

About 3 minutes on 2 cores (one thread; ``--n-jobs`` raises it);
``--large`` adds a 512-word vocabulary to experiment 2 (about 4 minutes).
``--repeat`` is ignored: nothing here is a timing.
Plain scikit-learn models, fixed seeds, so the accuracies repeat. The FSDD
clips are decoded once (``AudioReader``) and each feature set is computed
once per run (the BoAW vocabulary once per training set).

All MFCCs use one framing for 8 kHz: 32 ms windows (``n_fft=256``), 8 ms
hops, 40 mel bands, 13 coefficients.

1. FSDD, official split (repetitions 5-49 train, 0-4 test; 2,700 / 300).
   Baseline: ``librosa.feature.mfcc`` per clip, mean and standard deviation
   over time, ``StandardScaler`` + ``SVC()``. mmfeat, same model:
   ``MFCCExtractor`` (a) with ``deltas=0``, the baseline's features (their
   largest difference is printed), (b) with ``deltas=2`` and mean/std, and
   (c) with ``deltas=2`` and the pooling chosen by 5-fold cross-validation on
   the training split, grouped by repetition. Target >= 99.3 % for (c).
2. FSDD, leave-one-speaker-out (6 folds: train on 5 speakers, test on the
   6th; mean accuracy over the folds). Baseline as in 1. mmfeat, nested:
   for each held-out speaker every candidate below is scored by
   leave-one-speaker-out among the 5 training speakers, the best one is
   refitted on all 5 and scored once on the held-out speaker, which never
   takes part in the choice. Candidates:

   - ``stats``: ``MFCCExtractor`` (deltas=2) mean/std + scaler + ``SVC``;
   - ``stretch3``: mean/std over each third of the clip (a temporal pyramid
     of level 3, computed here from ``pooling=None`` frames) + scaler +
     ``SVC``;
   - ``boaw``: ``BoAWExtractor`` on per-clip CMVN frames (``cmvn="meanvar"``,
     deltas=2), 256 words, temporal pyramid (1, 2, 3) + ``LinearSVC(C=0.1)``;
   - ``stretch3+boaw``: both blocks (the stretch block standardised and
     down-weighted by 1/sqrt(width)) + ``LinearSVC(C=1)``;
   - ``stretch3+boaw+speed``: the same, trained with speed-perturbed copies
     (0.9x and 1.1x: tempo and pitch, by ``resample_poly``) of the training
     clips added;
   - ``--large`` only: ``stretch3+boaw512``, with a 512-word vocabulary.

   The BoAW vocabulary is learnt once per outer fold from the 5 training
   speakers' unlabelled frames and shared by the inner folds. Each
   candidate's own 6-fold score (a fixed configuration) is listed too.
   Target >= 75 % for the nested model.
3. Pascal Sentences captions (20 classes, 1,000 items), stratified 80/20
   split (``random_state=0``): ``TfidfExtractor`` + ``LinearSVC``, (a) word
   1-2 grams with C=1, (b) n-gram blocks and C chosen by 5-fold
   cross-validation on the training part. Target >= 75 %.
4. FSDD official split, ``BoAWExtractor`` + ``LinearSVC(C=0.1)``: 128 words
   with pyramid (1, 2), and the configuration of experiment 2. No target.
"""

import time
from dataclasses import dataclass
from fractions import Fraction

import librosa
import numpy as np
from _common import parser, report_table
from scipy.signal import resample_poly
from sklearn.compose import ColumnTransformer
from sklearn.model_selection import (
    GroupKFold,
    StratifiedKFold,
    cross_val_score,
    train_test_split,
)
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC, LinearSVC
from threadpoolctl import threadpool_limits

from mmfeat.datasets import load_fsdd, load_pascal_sentences
from mmfeat.features.audio import BoAWExtractor, MFCCExtractor
from mmfeat.features.text import TfidfExtractor
from mmfeat.io import AudioReader

SR = 8000
FRAMING = dict(sr=SR, n_fft=256, hop_length=64, n_mels=40, n_mfcc=13)
POOLINGS = (
    ("mean", "std"),
    ("mean", "std", "min", "max"),
    ("mean", "std", "p10", "p50", "p90"),
)
N_STRETCHES = 3
BOAW_LOSO = dict(n_words=256, pyramid_levels=(1, 2, 3))
BOAW_SMALL = dict(n_words=128, pyramid_levels=(1, 2))
SPEEDS = (0.9, 1.1)
TEXT_GRID = (
    dict(word_ngram_range=(1, 1), char_ngram_range=None),
    dict(word_ngram_range=(1, 2), char_ngram_range=None),
    dict(word_ngram_range=(1, 2), char_ngram_range=(2, 5)),  # the "auto" default
)
TEXT_C = (0.3, 1.0)
TARGET = dict(official=0.993, loso=0.75, text=0.75)


# ---------------------------------------------------------------------------
# features
# ---------------------------------------------------------------------------
def librosa_stats(clips):
    """Baseline: librosa MFCCs per clip, mean and std over time."""
    rows = []
    for clip in clips:
        m = librosa.feature.mfcc(y=clip, **FRAMING)
        rows.append(np.concatenate([m.mean(axis=1), m.std(axis=1)]))
    return np.array(rows)


def stretch_stats(frames, n_stretches):
    """Mean and std of the frames over each of ``n_stretches`` equal stretches."""
    out = []
    for f in frames:
        edges = np.linspace(0, len(f), n_stretches + 1)
        parts = []
        for a, b in zip(np.floor(edges[:-1]), np.ceil(edges[1:])):
            part = f[int(a) : max(int(b), int(a) + 1)]
            parts += [part.mean(axis=0), part.std(axis=0)]
        out.append(np.concatenate(parts))
    return np.array(out)


def speed(clip, rate):
    """Play ``clip`` ``rate`` times faster (tempo and pitch), by resampling."""
    r = Fraction(rate).limit_denominator(40)
    return resample_poly(clip, r.denominator, r.numerator).astype(np.float32)


def as_column(clips):
    col = np.empty(len(clips), dtype=object)
    col[:] = list(clips)
    return col


def boaw(n_jobs, cmvn=None, **kw):
    front = MFCCExtractor(**FRAMING, deltas=2, cmvn=cmvn, n_jobs=n_jobs)
    return BoAWExtractor(
        frontend=front, max_frames_per_clip=50, random_state=0, n_jobs=n_jobs, **kw
    )


# ---------------------------------------------------------------------------
# models
# ---------------------------------------------------------------------------
def svc():
    return make_pipeline(StandardScaler(), SVC())


def linear(C):
    return LinearSVC(C=C, random_state=0)


def stretch_boaw(d):
    """Scaled stretch block (weight 1/sqrt(width)) beside the raw BoAW block."""
    blocks = ColumnTransformer(
        [
            ("stretch", StandardScaler(), slice(0, d)),
            ("boaw", "passthrough", slice(d, None)),
        ],
        transformer_weights={"stretch": d**-0.5, "boaw": 1.0},
    )
    return make_pipeline(blocks, linear(1.0))


@dataclass
class Candidate:
    name: str
    blocks: tuple
    model: object  # factory
    augment: bool = False

    def fit_score(self, data, train, test):
        """Fit on the ``train`` rows (plus their perturbed copies), score ``test``."""
        X = np.hstack([data.blocks[b] for b in self.blocks])
        Xtr, ytr = X[train], data.y[train]
        if self.augment:
            extra = [
                np.hstack([data.aug[b][k] for b in self.blocks])[train]
                for k in range(len(SPEEDS))
            ]
            Xtr = np.vstack([Xtr, *extra])
            ytr = np.tile(ytr, 1 + len(extra))
        return self.model().fit(Xtr, ytr).score(X[test], data.y[test])


@dataclass
class Data:
    y: np.ndarray
    blocks: dict
    aug: dict


# ---------------------------------------------------------------------------
# experiments
# ---------------------------------------------------------------------------
def exp_official(fsdd, X_lib, clips, n_jobs, rows, details):
    y = fsdd["digit"].to_numpy()
    train = (fsdd["split"] == "train").to_numpy()
    groups = fsdd["repetition"].to_numpy()[train] % 5
    acc = svc().fit(X_lib[train], y[train]).score(X_lib[~train], y[~train])
    rows.append(
        dict(
            experiment="1 FSDD official split",
            model="baseline: librosa MFCC mean/std + SVC",
            accuracy=acc,
        )
    )
    X0 = MFCCExtractor(**FRAMING, n_jobs=n_jobs).fit_transform(clips)
    gap = float(np.abs(X0 - X_lib).max())
    rows.append(
        dict(
            experiment="1 FSDD official split",
            model="MFCCExtractor mean/std + SVC (the baseline's features)",
            accuracy=svc().fit(X0[train], y[train]).score(X0[~train], y[~train]),
        )
    )
    details["official_max_abs_gap_to_librosa"] = gap
    cv, test = {}, {}
    for pooling in POOLINGS:
        X = MFCCExtractor(**FRAMING, deltas=2, pooling=pooling, n_jobs=n_jobs)
        X = X.fit_transform(clips)
        name = "/".join(pooling)
        cv[name] = cross_val_score(
            svc(), X[train], y[train], groups=groups, cv=GroupKFold(5)
        ).mean()
        test[name] = svc().fit(X[train], y[train]).score(X[~train], y[~train])
    best = max(cv, key=cv.get)
    rows.append(
        dict(
            experiment="1 FSDD official split",
            model="MFCCExtractor d2 mean/std + SVC",
            valid=cv["mean/std"],
            accuracy=test["mean/std"],
        )
    )
    rows.append(
        dict(
            experiment="1 FSDD official split",
            model=f"MFCCExtractor d2 {best} + SVC (pooling by CV)",
            valid=cv[best],
            accuracy=test[best],
            target=TARGET["official"],
        )
    )
    details["official_pooling_cv"] = cv
    print(f"1: largest |MFCCExtractor - librosa| over the pooled features {gap:.1e}")
    print(f"1: pooling CV (train split, 5 folds by repetition) {_fmt(cv)}")


def exp_loso(fsdd, X_lib, clips, args, rows, details):
    n_jobs = args.n_jobs
    y = fsdd["digit"].to_numpy()
    speaker = fsdd["speaker"].to_numpy()
    speakers = sorted(set(speaker))
    frames = MFCCExtractor(**FRAMING, deltas=2, pooling=None, n_jobs=n_jobs)
    frames = frames.fit_transform(clips)
    stats = MFCCExtractor(**FRAMING, deltas=2, n_jobs=n_jobs).fit_transform(clips)
    data = Data(
        y=y,
        blocks=dict(lib=X_lib, stats=stats, stretch=stretch_stats(frames, N_STRETCHES)),
        aug={},
    )
    d = data.blocks["stretch"].shape[1]
    cands = [
        Candidate("stats", ("stats",), svc),
        Candidate("stretch3", ("stretch",), svc),
        Candidate("boaw", ("boaw",), lambda: linear(0.1)),
        Candidate("stretch3+boaw", ("stretch", "boaw"), lambda: stretch_boaw(d)),
        Candidate(
            "stretch3+boaw+speed",
            ("stretch", "boaw"),
            lambda: stretch_boaw(d),
            augment=True,
        ),
    ]
    vocabularies = dict(boaw=BOAW_LOSO)
    if args.large:
        vocabularies["boaw512"] = dict(BOAW_LOSO, n_words=512)
        cands.append(
            Candidate(
                "stretch3+boaw512", ("stretch", "boaw512"), lambda: stretch_boaw(d)
            )
        )
    perturbed = [as_column([speed(c, r) for c in clips]) for r in SPEEDS]
    data.aug["stretch"] = [
        stretch_stats(
            MFCCExtractor(**FRAMING, deltas=2, pooling=None, n_jobs=n_jobs)
            .fit()
            .transform(p),
            N_STRETCHES,
        )
        for p in perturbed
    ]
    baseline = Candidate("baseline", ("lib",), svc)
    folds = []
    for held in speakers:
        t0 = time.perf_counter()
        train, test = speaker != held, speaker == held
        for block, kw in vocabularies.items():
            bw = boaw(n_jobs, cmvn="meanvar", **kw).fit(clips[train])
            data.blocks[block] = bw.transform(clips)
            if block == "boaw":
                data.aug[block] = [bw.transform(p) for p in perturbed]
        inner = {}
        for c in cands:
            scores = [
                c.fit_score(data, train & (speaker != v), speaker == v)
                for v in speakers
                if v != held
            ]
            inner[c.name] = float(np.mean(scores))
        chosen = max(cands, key=lambda c: inner[c.name])  # first wins a tie
        outer = {c.name: c.fit_score(data, train, test) for c in cands}
        outer["baseline"] = baseline.fit_score(data, train, test)
        folds.append(dict(held_out=held, chosen=chosen.name, inner=inner, outer=outer))
        print(
            f"2: held out {held:<9} inner {_fmt(inner)} -> {chosen.name}: "
            f"{outer[chosen.name]:.3f} ({time.perf_counter() - t0:.0f} s)",
            flush=True,
        )
    details["loso_folds"] = folds
    exp = "2 FSDD leave-1-speaker-out"

    def mean(key):
        return float(np.mean([f["outer"][key] for f in folds]))

    rows.append(
        dict(
            experiment=exp,
            model="baseline: librosa MFCC mean/std + SVC",
            accuracy=mean("baseline"),
        )
    )
    for c in cands:
        rows.append(
            dict(
                experiment=exp,
                model=f"fixed {c.name}",
                valid=float(np.mean([f["inner"][c.name] for f in folds])),
                accuracy=mean(c.name),
            )
        )
    nested = [f["outer"][f["chosen"]] for f in folds]
    rows.append(
        dict(
            experiment=exp,
            model="nested: candidate chosen per fold by inner LOSO",
            valid=float(np.mean([f["inner"][f["chosen"]] for f in folds])),
            accuracy=float(np.mean(nested)),
            target=TARGET["loso"],
        )
    )
    for f, acc in zip(folds, nested):
        rows.append(
            dict(
                experiment=f"  held out {f['held_out']}",
                model=f"  nested -> {f['chosen']}",
                valid=f["inner"][f["chosen"]],
                accuracy=acc,
            )
        )


def exp_text(rows, details):
    frame = load_pascal_sentences().frame
    Xtr, Xte, ytr, yte = train_test_split(
        frame["text"],
        frame["label"],
        test_size=0.2,
        stratify=frame["label"],
        random_state=0,
    )
    exp = "3 Pascal captions 80/20"

    def model(kw, C):
        return make_pipeline(TfidfExtractor(**kw), linear(C))

    fixed = model(dict(word_ngram_range=(1, 2), char_ngram_range=None), 1.0)
    fixed = fixed.fit(Xtr, ytr).score(Xte, yte)
    rows.append(
        dict(
            experiment=exp,
            model="TfidfExtractor words 1-2 + LinearSVC(C=1)",
            accuracy=fixed,
        )
    )
    cv = {}
    folds = StratifiedKFold(5, shuffle=True, random_state=0)
    for kw in TEXT_GRID:
        for C in TEXT_C:
            name = _text_name(kw, C)
            cv[name] = cross_val_score(model(kw, C), Xtr, ytr, cv=folds).mean()
    best_kw, best_C = max(
        ((kw, C) for kw in TEXT_GRID for C in TEXT_C),
        key=lambda p: cv[_text_name(*p)],
    )
    best = _text_name(best_kw, best_C)
    acc = model(best_kw, best_C).fit(Xtr, ytr).score(Xte, yte)
    rows.append(
        dict(
            experiment=exp,
            model=f"TfidfExtractor {best} + LinearSVC (by CV)",
            valid=cv[best],
            accuracy=acc,
            target=TARGET["text"],
        )
    )
    details["text_cv"] = cv
    print(f"3: CV (training part, 5 folds) {_fmt(cv)}")


def exp_boaw_official(fsdd, clips, n_jobs, rows):
    y = fsdd["digit"].to_numpy()
    train = (fsdd["split"] == "train").to_numpy()
    for label, kw in (
        ("BoAWExtractor 128 words, pyramid (1,2)", dict(BOAW_SMALL)),
        (
            "BoAWExtractor CMVN, 256 words, pyramid (1,2,3)",
            dict(BOAW_LOSO, cmvn="meanvar"),
        ),
    ):
        B = boaw(n_jobs, **kw).fit(clips[train]).transform(clips)
        acc = linear(0.1).fit(B[train], y[train]).score(B[~train], y[~train])
        rows.append(
            dict(
                experiment="4 FSDD official split",
                model=f"{label} + LinearSVC",
                accuracy=acc,
            )
        )


def _text_name(kw, C):
    parts = []
    if kw.get("word_ngram_range"):
        parts.append("words {}-{}".format(*kw["word_ngram_range"]))
    if kw.get("char_ngram_range"):
        parts.append("chars {}-{}".format(*kw["char_ngram_range"]))
    return " + ".join(parts) + f", C={C:g}"


def _fmt(scores):
    return ", ".join(f"{k} {v:.3f}" for k, v in scores.items())


def main():
    p = parser(__doc__.split("\n\n")[0])
    p.add_argument("--n-jobs", type=int, default=1, help="threads for mmfeat")
    args = p.parse_args()
    t_start = time.perf_counter()
    rows, details, seconds = [], {}, {}
    with threadpool_limits(args.n_jobs):
        fsdd = load_fsdd().frame
        t0 = time.perf_counter()
        clips = AudioReader(sr=SR, n_jobs=args.n_jobs).fit_transform(fsdd["path"])
        X_lib = librosa_stats(clips)
        seconds["decode and baseline features"] = time.perf_counter() - t0
        for name, run in (
            ("1", lambda: exp_official(fsdd, X_lib, clips, args.n_jobs, rows, details)),
            ("2", lambda: exp_loso(fsdd, X_lib, clips, args, rows, details)),
            ("3", lambda: exp_text(rows, details)),
            ("4", lambda: exp_boaw_official(fsdd, clips, args.n_jobs, rows)),
        ):
            t0 = time.perf_counter()
            run()
            seconds[name] = time.perf_counter() - t0
    for row in rows:
        if row.get("target") is not None:
            row["met"] = "yes" if row["accuracy"] >= row["target"] else "NO"
    columns = [
        ("experiment", "experiment", ""),
        ("model", "model", ""),
        ("valid", "valid", ".4f"),
        ("accuracy", "test", ".4f"),
        ("target", "target", ".3f"),
        ("met", "met", ""),
    ]
    total = time.perf_counter() - t_start
    details["seconds"] = dict(seconds, total=total)
    report_table(
        "Accuracy, FSDD audio and Pascal captions (valid: inner CV / LOSO score "
        "used for the choice)",
        columns,
        rows,
        args,
        extra=dict(details=details),
    )
    print(f"total {total:.0f} s ({_fmt(seconds)} s)")


if __name__ == "__main__":
    main()
