"""Generation: product titles from photos (fashion), a Pascal smoke test, throughput.

1. Fashion sample (``load_fashion_products(target="articleType",
   min_count=20)``): photo -> ``title``, stratified 70/30 split by article
   type (seed 0); the photo alone at prediction time. In the same run:
   a random training title; the most frequent training title of the *true*
   article type (an oracle-ish reference: it reads the test label); 1-NN
   transfer (Ordonez et al. 2011); the consensus re-ranking of Devlin et al.
   2015, on HOG + colour and on fused HOG + colour + SIFT bag of words; the
   attribute template ``"{gender} {baseColour} {articleType}"``; the hybrid
   (neighbour titles re-ranked by the predicted attributes); and the true
   titles themselves (the ceiling of the slot-accuracy metric).
   Hyper-parameters (``n_neighbors``, ``image_weight``, ``consensus``, the
   BoVW block weight, the hybrid's ``agreement_weight``) are chosen by
   CIDEr-D on a validation split taken *inside* the training part (25% of
   it, stratified, seed 0); the chosen models are refitted on the whole
   training part and scored once on the test part (the template's
   features, HOG + colour or fused, by mean validation slot accuracy). The
   BoVW codebook is learnt on the inner fit part only. Targets: consensus
   >= +10% CIDEr-D over 1-NN transfer and a higher BLEU-4 (with a paired
   bootstrap interval); the best method names the article type and the
   gender in >= 85% of its titles.
2. Pascal Sentences: captions exist for 47 (aeroplane) images only: a
   leave-one-out smoke test, not a benchmark.
3. Throughput of ``NearestNeighborCaptioner.predict`` against a 10,000-photo
   gallery of HOG + colour width (the sample's real features tiled with
   noise, their real titles), 2,000 queries at ``batch_size=256``; traced
   peak memory of predict on 500 vs 2,000 queries.

Image features and the attribute classifiers' fits are cached with
``joblib.Memory`` under ``$MMFEAT_BENCH_CACHE`` (default
``/tmp/mmfeat_bench_generation``): a rerun only scores.

Run: ``MMFEAT_DATA_HOME=../shared/data python benchmarks/bench_generation.py``
(``--only fashion|pascal|throughput``).
"""

import itertools
import json
import os
import statistics
import time
import tracemalloc
from collections import Counter
from types import SimpleNamespace

import numpy as np
import pandas as pd
from _common import machine, parser, report_table
from joblib import Memory
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import Normalizer

from mmfeat.datasets import load_fashion_products, load_pascal_sentences
from mmfeat.evaluation import (
    attribute_slot_accuracy,
    bleu_scores,
    cider_d_score,
    generation_report,
)
from mmfeat.features.image import SIFTBoVWExtractor
from mmfeat.generation import (
    AttributeCaptioner,
    HybridCaptioner,
    NearestNeighborCaptioner,
    make_image_features,
)
from mmfeat.utils._ngrams import tokenize

SEED = 0
N_JOBS = 2
ATTRS = ["gender", "baseColour", "articleType"]
TEMPLATE = "{gender} {baseColour} {articleType}"
GRID_K = (10, 25, 40)
GRID_IMAGE_WEIGHT = (0.0, 0.5, 1.0, 1.5)
GRID_CONSENSUS = ("cider", "tfidf-cosine")
GRID_AGREEMENT = (0.5, 1.0, 2.0)
GRID_BOVW_WEIGHT = (0.5, 1.0)
MEMORY = Memory(
    os.environ.get("MMFEAT_BENCH_CACHE", "/tmp/mmfeat_bench_generation"), verbose=0
)
RESULTS = {}

COLUMNS = [
    ("method", "method", ""),
    ("BLEU-1", "B-1", ".3f"),
    ("BLEU-2", "B-2", ".3f"),
    ("BLEU-3", "B-3", ".3f"),
    ("BLEU-4", "B-4", ".3f"),
    ("CIDEr-D", "CIDEr-D", ".3f"),
    ("val_cider", "val CIDEr-D", ".3f"),
    ("recall@1", "R@1", ".3f"),
    ("recall@5", "R@5", ".3f"),
    ("slot_gender", "gender", ".3f"),
    ("slot_baseColour", "colour", ".3f"),
    ("slot_articleType", "type", ".3f"),
    ("seconds", "predict s", ".2f"),
]


# ------------------------------------------------------------- features
@MEMORY.cache
def _hog_colour(paths):
    """The captioners' default features (``make_image_features``), and seconds."""
    t0 = time.perf_counter()
    F = make_image_features(n_jobs=N_JOBS).fit_transform(list(paths))
    return np.asarray(F, dtype=np.float64), time.perf_counter() - t0


@MEMORY.cache
def _bovw(fit_paths, paths):
    """SIFT BoVW (codebook on ``fit_paths``) of ``paths``; fit and transform s."""
    ext = SIFTBoVWExtractor(
        n_words=256,
        image_size=(128, 96),
        pyramid_levels=(1, 2),
        random_state=SEED,
        n_jobs=N_JOBS,
    )
    t0 = time.perf_counter()
    ext.fit(list(fit_paths))
    t1 = time.perf_counter()
    B = ext.transform(list(paths))
    return np.asarray(B, dtype=np.float64), t1 - t0, time.perf_counter() - t1


@MEMORY.cache
def _fit_logreg(X, y, C):
    # the attribute captioners' default classifier (mmfeat.generation's
    # _default_classifier): multinomial logistic regression on unit rows
    model = make_pipeline(Normalizer(), LogisticRegression(C=C, max_iter=500, tol=1e-3))
    return model.fit(X, y)


class CachedLogReg(ClassifierMixin, BaseEstimator):
    """The default attribute classifier, its fits memoised on disk.

    The same model as the captioners' default (so the numbers are the
    defaults'); the AttributeCaptioner and every HybridCaptioner of the grid
    fit it on the same rows and labels, and one fit serves them all.
    """

    def __init__(self, C=20.0):
        self.C = C

    def fit(self, X, y):
        self.model_ = _fit_logreg(X, np.asarray(y), self.C)
        self.classes_ = self.model_.classes_
        return self

    def predict_proba(self, X):
        return self.model_.predict_proba(X)

    def predict(self, X):
        return self.model_.predict(X)


def _fused(HC, B, w):
    """``FeatureUnion([hog+colour, bovw], transformer_weights={"bovw": w})``."""
    return np.hstack([HC, w * B])


# --------------------------------------------------------------- scores
def _scores(refs, pred, attrs=None):
    row = dict(bleu_scores(refs, pred))
    row["CIDEr-D"] = cider_d_score(refs, pred)
    if attrs is not None:
        acc = attribute_slot_accuracy(pred, attrs)
        row.update({f"slot_{c}": v for c, v in acc.items()})
    return row


def _paired_gain(refs, a, b, *, n_boot=2000):
    """95% bootstrap interval of CIDEr-D(a) / CIDEr-D(b) - 1 over the items.

    CIDEr-D is a mean of per-item scores (the IDF fixed by the references),
    so the items are resampled, the same ones for both systems.
    """
    _, sa = cider_d_score(refs, a, return_per_item=True)
    _, sb = cider_d_score(refs, b, return_per_item=True)
    idx = np.random.default_rng(SEED).integers(len(sa), size=(n_boot, len(sa)))
    ratio = sa[idx].mean(axis=1) / sb[idx].mean(axis=1) - 1
    return tuple(np.percentile(ratio, [2.5, 97.5]))


def _log(msg):
    print(msg, flush=True)


def _most_frequent_titles(train):
    """Per article type, its most frequent training title.

    Ties (most titles are unique within a type): the title whose words are
    the most common among the type's titles (mean document frequency),
    then the alphabetically first.
    """
    out = {}
    for kind, titles in train.groupby("articleType")["title"]:
        titles = list(titles)
        counts = Counter(titles)
        df = Counter(w for t in titles for w in set(tokenize(t)))

        def key(t, counts=counts, df=df):
            words = set(tokenize(t)) or {""}
            return (-counts[t], -np.mean([df[w] for w in words]), t)

        out[kind] = min(counts, key=key)
    return out


# -------------------------------------------------------------- fashion
def _nn(**params):
    return NearestNeighborCaptioner("passthrough", **params)


def _grid_nn(F_fit, y_fit, F_val, y_val, a_val, label):
    """Every (n_neighbors, image_weight, consensus) on the validation part."""
    rows = []
    for k, w, c in itertools.product(GRID_K, GRID_IMAGE_WEIGHT, GRID_CONSENSUS):
        model = _nn(n_neighbors=k, image_weight=w, consensus=c).fit(F_fit, y_fit)
        s = _scores(y_val, model.predict(F_val), a_val)
        rows.append(
            dict(features=label, n_neighbors=k, image_weight=w, consensus=c, **s)
        )
    return rows


def _best(rows, where=lambda r: True, key="CIDEr-D"):
    return max((r for r in rows if where(r)), key=lambda r: r[key])


def _params(row, names):
    return {n: row[n] for n in names}


def fashion(args):
    frame = load_fashion_products(target="articleType", min_count=20).frame
    train, test = train_test_split(
        frame, test_size=0.3, stratify=frame.articleType, random_state=SEED
    )
    fit, val = train_test_split(
        train, test_size=0.25, stratify=train.articleType, random_state=SEED
    )
    _log(
        f"fashion: {len(frame)} items, {frame.articleType.nunique()} article types; "
        f"train {len(train)} (fit {len(fit)} + validation {len(val)}), test "
        f"{len(test)}"
    )
    pos = pd.Series(np.arange(len(frame)), index=frame.index)
    i_tr, i_te = pos[train.index].to_numpy(), pos[test.index].to_numpy()
    i_fit, i_val = pos[fit.index].to_numpy(), pos[val.index].to_numpy()

    HC, hc_s = _hog_colour(tuple(frame.path))
    B, bovw_fit_s, bovw_s = _bovw(tuple(fit.path), tuple(frame.path))
    n = len(frame)
    _log(
        f"features: HOG + colour {HC.shape[1]} dims, {1e3 * hc_s / n:.1f} ms/photo; "
        f"SIFT BoVW {B.shape[1]} dims, {1e3 * bovw_s / n:.1f} ms/photo (codebook "
        f"{bovw_fit_s:.0f} s on the {len(fit)} fit photos); first computed, "
        "then cached"
    )
    y_fit, y_val = list(fit.title), list(val.title)
    y_tr, y_te = list(train.title), list(test.title)
    a_val = val[ATTRS].reset_index(drop=True)
    a_te = test[ATTRS].reset_index(drop=True)

    # ---- validation (inside the training part)
    t0 = time.perf_counter()
    grid = _grid_nn(HC[i_fit], y_fit, HC[i_val], y_val, a_val, "hog+colour")
    for wb in GRID_BOVW_WEIGHT:
        F = _fused(HC, B, wb)
        grid += _grid_nn(F[i_fit], y_fit, F[i_val], y_val, a_val, f"fused b{wb:g}")
    nn_names = ["n_neighbors", "image_weight", "consensus"]
    one_nn_val = {
        lab: _scores(y_val, _nn(consensus=None).fit(F[i_fit], y_fit).predict(F[i_val]))
        for lab, F in [("hog+colour", HC)]
        + [(f"fused b{wb:g}", _fused(HC, B, wb)) for wb in GRID_BOVW_WEIGHT]
    }
    best_hc = _best(grid, lambda r: r["features"] == "hog+colour")
    pure_hc = _best(
        grid, lambda r: r["features"] == "hog+colour" and r["image_weight"] == 0
    )
    best_fu = _best(grid, lambda r: r["features"] != "hog+colour")
    pure_fu = _best(
        grid,
        lambda r: r["features"] == best_fu["features"] and r["image_weight"] == 0,
    )
    wb = float(best_fu["features"].split("b")[1])
    FU = _fused(HC, B, wb)
    _log(
        f"validation grid: {len(grid)} neighbour settings, "
        f"{time.perf_counter() - t0:.0f} s"
    )
    grid_rows = sorted(grid, key=lambda r: -r["CIDEr-D"])
    report_table(
        "Validation (fit part -> validation part), best 12 neighbour settings of "
        f"{len(grid)} by CIDEr-D",
        [
            ("features", "features", ""),
            ("n_neighbors", "k", "d"),
            ("image_weight", "image_weight", "g"),
            ("consensus", "consensus", ""),
            ("BLEU-4", "B-4", ".3f"),
            ("CIDEr-D", "CIDEr-D", ".3f"),
            ("slot_articleType", "type", ".3f"),
            ("slot_gender", "gender", ".3f"),
        ],
        grid_rows[:12],
        SimpleNamespace(json=None),
    )
    for lab, s in one_nn_val.items():
        _log(
            f"validation 1-NN {lab}: CIDEr-D {s['CIDEr-D']:.3f}, B-4 {s['BLEU-4']:.3f}"
        )

    # attribute template: features chosen by validation mean slot accuracy
    t0 = time.perf_counter()
    attr_val = {}
    for lab, F in (("hog+colour", HC), (best_fu["features"], FU)):
        m = AttributeCaptioner(TEMPLATE, "passthrough", classifier=CachedLogReg())
        m.fit(F[i_fit], fit[ATTRS].reset_index(drop=True))
        attr_val[lab] = (F, _scores(y_val, m.predict(F[i_val]), a_val))
        s = attr_val[lab][1]
        _log(
            f"validation attribute template on {lab}: CIDEr-D {s['CIDEr-D']:.3f}, "
            + ", ".join(f"{a} {s['slot_' + a]:.3f}" for a in ATTRS)
        )
    attr_lab = max(
        attr_val, key=lambda k: np.mean([attr_val[k][1]["slot_" + a] for a in ATTRS])
    )

    # hybrid: n_neighbors and consensus of the best consensus on the same
    # features; image_weight x agreement_weight on validation
    hyb_grid = []
    for lab, F, base in (
        ("hog+colour", HC, best_hc),
        (best_fu["features"], FU, best_fu),
    ):
        for w, a in itertools.product(GRID_IMAGE_WEIGHT, GRID_AGREEMENT):
            m = HybridCaptioner(
                ATTRS,
                text_column="title",
                transformer="passthrough",
                n_neighbors=base["n_neighbors"],
                consensus=base["consensus"],
                image_weight=w,
                agreement_weight=a,
                classifier=CachedLogReg(),
            ).fit(F[i_fit], fit[["title", *ATTRS]].reset_index(drop=True))
            s = _scores(y_val, m.predict(F[i_val]), a_val)
            hyb_grid.append(
                dict(
                    features=lab,
                    n_neighbors=base["n_neighbors"],
                    consensus=base["consensus"],
                    image_weight=w,
                    agreement_weight=a,
                    **s,
                )
            )
    best_hyb = _best(hyb_grid)
    _log(f"validation attributes + hybrid: {time.perf_counter() - t0:.0f} s")
    report_table(
        "Validation: hybrid settings by CIDEr-D (best 8)",
        [
            ("features", "features", ""),
            ("n_neighbors", "k", "d"),
            ("consensus", "consensus", ""),
            ("image_weight", "image_weight", "g"),
            ("agreement_weight", "agreement_weight", "g"),
            ("BLEU-4", "B-4", ".3f"),
            ("CIDEr-D", "CIDEr-D", ".3f"),
            ("slot_articleType", "type", ".3f"),
            ("slot_gender", "gender", ".3f"),
        ],
        sorted(hyb_grid, key=lambda r: -r["CIDEr-D"])[:8],
        SimpleNamespace(json=None),
    )
    chosen = {
        "consensus, HOG + colour": _params(best_hc, nn_names),
        "pure consensus (image_weight=0), HOG + colour": _params(pure_hc, nn_names),
        "consensus, fused": {"bovw_weight": wb, **_params(best_fu, nn_names)},
        "pure consensus, fused": {"bovw_weight": wb, **_params(pure_fu, nn_names)},
        "attribute template features": attr_lab,
        "hybrid": _params(
            best_hyb,
            [
                "features",
                "n_neighbors",
                "consensus",
                "image_weight",
                "agreement_weight",
            ],
        ),
    }
    _log("chosen on validation:\n" + json.dumps(chosen, indent=2))

    # ---- refit on the whole training part, score on the test part
    t0 = time.perf_counter()
    rng = np.random.default_rng(SEED)
    rows = [
        dict(method="true titles (slot-accuracy ceiling)", **_scores(y_te, y_te, a_te)),
        dict(
            method="random training title",
            **_scores(
                y_te, list(rng.choice(np.array(y_tr, dtype=object), len(y_te))), a_te
            ),
        ),
    ]
    top = _most_frequent_titles(train)
    rows.append(
        dict(
            method="most frequent title of the TRUE type (oracle-ish)",
            **_scores(y_te, [top[t] for t in test.articleType], a_te),
        )
    )
    hyb_F = HC if best_hyb["features"] == "hog+colour" else FU

    def val_of(features, **params):
        return _best(
            grid,
            lambda r: (
                r["features"] == features and all(r[k] == v for k, v in params.items())
            ),
        )["CIDEr-D"]

    fb = best_fu["features"]
    models = {
        "1-NN transfer, HOG + colour": (
            HC,
            _nn(consensus=None),
            one_nn_val["hog+colour"]["CIDEr-D"],
        ),
        f"consensus, HOG + colour ({_desc(best_hc)})": (
            HC,
            _nn(**_params(best_hc, nn_names)),
            best_hc["CIDEr-D"],
        ),
        f"pure consensus, HOG + colour ({_desc(pure_hc)})": (
            HC,
            _nn(**_params(pure_hc, nn_names)),
            pure_hc["CIDEr-D"],
        ),
        "default NearestNeighborCaptioner(), HOG + colour": (
            HC,
            _nn(),
            val_of(
                "hog+colour",
                **{
                    k: v
                    for k, v in NearestNeighborCaptioner().get_params().items()
                    if k in ("n_neighbors", "image_weight", "consensus")
                },
            ),
        ),
        f"1-NN transfer, fused (BoVW weight {wb:g})": (
            FU,
            _nn(consensus=None),
            one_nn_val[fb]["CIDEr-D"],
        ),
        f"consensus, fused ({_desc(best_fu)}, BoVW weight {wb:g})": (
            FU,
            _nn(**_params(best_fu, nn_names)),
            best_fu["CIDEr-D"],
        ),
        f"pure consensus, fused ({_desc(pure_fu)})": (
            FU,
            _nn(**_params(pure_fu, nn_names)),
            pure_fu["CIDEr-D"],
        ),
    }
    fitted = {}
    for name, (F, m, v) in models.items():
        fitted[name] = (F, m.fit(F[i_tr], y_tr), v)
    attr_F = attr_val[attr_lab][0]
    fitted[f"attribute template {TEMPLATE} ({attr_lab})"] = (
        attr_F,
        AttributeCaptioner(TEMPLATE, "passthrough", classifier=CachedLogReg()).fit(
            attr_F[i_tr], train[ATTRS].reset_index(drop=True)
        ),
        attr_val[attr_lab][1]["CIDEr-D"],
    )
    hyb_params = ["n_neighbors", "consensus", "image_weight", "agreement_weight"]
    fitted[f"hybrid ({_desc(best_hyb)}, {best_hyb['features']})"] = (
        hyb_F,
        HybridCaptioner(
            ATTRS,
            text_column="title",
            transformer="passthrough",
            classifier=CachedLogReg(),
            **_params(best_hyb, hyb_params),
        ).fit(hyb_F[i_tr], train[["title", *ATTRS]].reset_index(drop=True)),
        best_hyb["CIDEr-D"],
    )
    for name, (F, m, v) in fitted.items():
        rep = generation_report({name: m}, F[i_te], y_te, attributes=a_te)
        rows.append(dict(method=name, val_cider=v, **rep.iloc[0].to_dict()))
        _log(f"  {name}: CIDEr-D {rows[-1]['CIDEr-D']:.3f}")
    _log(f"refit + test: {time.perf_counter() - t0:.0f} s")

    # the default transformer end to end (photos in, titles out) must match
    # the cached features' predictions
    t0 = time.perf_counter()
    e2e = NearestNeighborCaptioner(n_jobs=N_JOBS).fit(train.path, y_tr)
    fit_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    e2e_pred = e2e.predict(test.path)
    e2e_s = time.perf_counter() - t0
    same = np.mean(
        e2e_pred
        == fitted["default NearestNeighborCaptioner(), HOG + colour"][1].predict(
            HC[i_te]
        )
    )
    _log(
        f"end to end NearestNeighborCaptioner() on the photo paths: fit {fit_s:.1f} s, "
        f"predict {e2e_s:.1f} s for {len(test)} photos ({len(test) / e2e_s:.0f} "
        f"photos/s, features included); predictions equal to the cached-feature "
        f"model's on {same:.1%} of the test photos"
    )

    report_table(
        f"Fashion: photo -> title, test part ({len(test)} items; fitted on the "
        f"{len(train)} training items; predict s on precomputed features)",
        COLUMNS,
        rows,
        SimpleNamespace(json=None),
    )
    by = {r["method"]: r for r in rows}
    ceiling = by["true titles (slot-accuracy ceiling)"]
    ours = [r for r in rows if r["method"] not in list(by)[:3]]
    best = max(ours, key=lambda r: r["CIDEr-D"])
    names = list(fitted)
    pairs = [  # (consensus, its 1-NN transfer), same features
        (names[1], names[0]),
        (names[2], names[0]),
        (names[3], names[0]),
        (names[5], names[4]),
        (names[5], names[0]),
        (names[-1], names[0]),
    ]
    print("\nTargets (test part):")
    print(
        "  consensus vs 1-NN transfer: relative CIDEr-D gain (target >= +10%), "
        "paired bootstrap 95% interval over the test items; BLEU-4 (target: higher)"
    )
    gains = []
    for c, o in pairs:
        pc = fitted[c][1].predict(fitted[c][0][i_te])
        po = fitted[o][1].predict(fitted[o][0][i_te])
        lo, hi = _paired_gain(y_te, pc, po)
        rc, ro = by[c], by[o]
        g = rc["CIDEr-D"] / ro["CIDEr-D"] - 1
        gains.append(dict(consensus=c, transfer=o, gain=g, lo=lo, hi=hi))
        print(
            f"    {c}\n      vs {o}: CIDEr-D {rc['CIDEr-D']:.3f} / "
            f"{ro['CIDEr-D']:.3f} = {1 + g:.3f}x ({g:+.1%}, 95% [{lo:+.1%}, "
            f"{hi:+.1%}]; {'met' if g >= 0.10 else 'MISSED'}); BLEU-4 "
            f"{rc['BLEU-4']:.3f} vs {ro['BLEU-4']:.3f} "
            f"({'met' if rc['BLEU-4'] > ro['BLEU-4'] else 'MISSED'})"
        )
    print(
        "  slots (targets: type >= 0.85 and gender >= 0.85 in the best method's "
        "titles); ceiling, the true titles: type "
        f"{ceiling['slot_articleType']:.3f}, gender {ceiling['slot_gender']:.3f}, "
        f"colour {ceiling['slot_baseColour']:.3f}"
    )
    for r in [best] + sorted(
        (r for r in ours if r is not best), key=lambda r: -r["slot_articleType"]
    )[:2]:
        print(
            f"    {r['method']} (CIDEr-D {r['CIDEr-D']:.3f}): type "
            f"{r['slot_articleType']:.3f} ({r['slot_articleType'] - 0.85:+.3f}), "
            f"gender {r['slot_gender']:.3f} ({r['slot_gender'] - 0.85:+.3f})"
        )
    RESULTS["fashion"] = dict(
        rows=rows,
        chosen=chosen,
        validation_grid=grid,
        validation_hybrid=hyb_grid,
        gains=gains,
        features=dict(hog_colour_s=hc_s, bovw_fit_s=bovw_fit_s, bovw_s=bovw_s, n=n),
        end_to_end=dict(fit_s=fit_s, predict_s=e2e_s, same=float(same)),
    )


def _desc(r):
    out = f"k={r['n_neighbors']}, {r['consensus']}, image_weight={r['image_weight']:g}"
    if "agreement_weight" in r:
        out += f", agreement_weight={r['agreement_weight']:g}"
    return out


# --------------------------------------------------------------- pascal
def pascal(args):
    frame = load_pascal_sentences().frame
    have = frame[frame.image_path.notna()].reset_index(drop=True)
    print(
        f"\nPascal Sentences SMOKE TEST (not a benchmark): {len(have)} of "
        f"{len(frame)} images present ({', '.join(sorted(set(have.category)))}), "
        f"{have.captions.map(len).sum()} captions; leave-one-out"
    )
    if len(have) < 3:
        print("  skipped: fewer than 3 images have their photo here")
        return
    F, _ = _hog_colour(tuple(have.image_path))
    refs = list(have.captions)
    rng = np.random.default_rng(SEED)
    preds = {"random caption of another image": [], "1-NN transfer": []}
    for w in (0.0, 1.0):
        preds[f"consensus k=10 cider, image_weight={w:g}"] = []
    for i in range(len(have)):
        rest = np.delete(np.arange(len(have)), i)
        j = rng.choice(rest)
        preds["random caption of another image"].append(
            refs[j][rng.integers(len(refs[j]))]
        )
        y = [refs[r] for r in rest]
        preds["1-NN transfer"].append(
            _nn(consensus=None).fit(F[rest], y).predict(F[i : i + 1])[0]
        )
        for w in (0.0, 1.0):
            m = _nn(n_neighbors=10, consensus="cider", image_weight=w).fit(F[rest], y)
            preds[f"consensus k=10 cider, image_weight={w:g}"].append(
                m.predict(F[i : i + 1])[0]
            )
    rows = []
    # a person: each image's first caption against its other captions
    rows.append(
        dict(
            method="human: 1st caption vs the others",
            **_scores([r[1:] for r in refs], [r[0] for r in refs]),
        )
    )
    for name, p in preds.items():
        rows.append(dict(method=name, **_scores(refs, p)))
    report_table(
        "Pascal Sentences smoke test (47 aeroplane images, HOG + colour, "
        "leave-one-out; references: the held-out image's captions)",
        COLUMNS[:6],
        rows,
        SimpleNamespace(json=None),
    )
    RESULTS["pascal"] = rows


# ----------------------------------------------------------- throughput
def throughput(args):
    frame = load_fashion_products(target="articleType", min_count=20).frame
    HC, _ = _hog_colour(tuple(frame.path))
    titles = np.asarray(frame.title, dtype=object)
    rng = np.random.default_rng(SEED)
    n_gallery, n_query = 10_000, 2_000
    scale = 0.05 * HC.std(axis=0, keepdims=True)
    src = rng.integers(len(HC), size=n_gallery)
    G = np.abs(HC[src] + scale * rng.standard_normal((n_gallery, HC.shape[1])))
    q_src = rng.integers(len(HC), size=n_query)
    Q = np.abs(HC[q_src] + scale * rng.standard_normal((n_query, HC.shape[1])))
    y = list(titles[src])
    print(
        f"\nThroughput: gallery {n_gallery:,} x {HC.shape[1]:,} (the sample's HOG + "
        f"colour tiled with 5% noise, their titles: {len(set(y)):,} distinct), "
        f"{n_query:,} queries, batch_size=256, k=25; median of {args.repeat}"
    )
    rows = []
    for consensus in ("cider", "tfidf-cosine", None, "bleu"):
        m = _nn(consensus=consensus, n_neighbors=25, batch_size=256)
        t0 = time.perf_counter()
        m.fit(G, y)
        fit_s = time.perf_counter() - t0
        nq = 200 if consensus == "bleu" else n_query  # sentence BLEU is slow
        times = []
        for _ in range(1 if consensus == "bleu" else args.repeat):
            t0 = time.perf_counter()
            m.predict(Q[:nq])
            times.append(time.perf_counter() - t0)
        s = statistics.median(times)
        rows.append(
            dict(
                consensus=str(consensus),
                queries=nq,
                fit_s=fit_s,
                predict_s=s,
                rate=nq / s,
            )
        )
        _log(f"  {rows[-1]}")
    base = rows[0]["rate"]
    for r in rows:
        r["ratio"] = r["rate"] / base
    report_table(
        "NearestNeighborCaptioner.predict on a 10,000-photo gallery (passthrough "
        "features)",
        [
            ("consensus", "consensus", ""),
            ("queries", "queries", ",d"),
            ("fit_s", "fit s", ".2f"),
            ("predict_s", "predict s (median)", ".2f"),
            ("rate", "rows/s", ",.0f"),
            ("ratio", "vs cider", ".2f"),
        ],
        rows,
        SimpleNamespace(json=None),
    )

    mem = []
    m = _nn(n_neighbors=25).fit(G, y)
    for nq, bs in ((500, 256), (2000, 256), (2000, 2000)):
        part = Q[:nq].copy()
        m.set_params(batch_size=bs)
        tracemalloc.start()
        t0 = time.perf_counter()
        m.predict(part)
        s = time.perf_counter() - t0
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        mem.append(
            dict(
                case=f"{nq:,} queries, batch_size={bs}",
                input_mb=part.nbytes / 2**20,
                peak_mb=peak / 2**20,
                traced_s=s,
            )
        )
        _log(f"  {mem[-1]}")
    report_table(
        "Traced peak memory of predict (tracemalloc, beyond the query matrix "
        "itself; cider, k=25)",
        [
            ("case", "case", ""),
            ("input_mb", "queries MiB", ".1f"),
            ("peak_mb", "predict peak MiB", ".1f"),
            ("traced_s", "s (traced)", ".1f"),
        ],
        mem,
        SimpleNamespace(json=None),
    )
    print(
        f"peak 2,000 / 500 queries at batch_size=256: "
        f"{mem[1]['peak_mb'] / mem[0]['peak_mb']:.2f}x"
    )
    RESULTS["throughput"] = dict(rows=rows, memory=mem)


def main():
    p = parser(__doc__.splitlines()[0])
    p.add_argument(
        "--only", choices=["fashion", "pascal", "throughput"], action="append"
    )
    p.set_defaults(repeat=3)
    args = p.parse_args()
    t0 = time.perf_counter()
    for name in args.only or ["fashion", "pascal", "throughput"]:
        globals()[name](args)
    print(f"\ntotal {time.perf_counter() - t0:.0f} s on {machine()}")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"machine": machine(), **RESULTS}, fh, indent=2, default=str)


if __name__ == "__main__":
    main()
