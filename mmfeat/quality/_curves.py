"""Scarce data and overfitting: learning curves of each modality and each fusion."""

import numbers

import numpy as np
import pandas as pd
from joblib import Parallel, delayed
from sklearn.base import clone
from sklearn.metrics import get_scorer
from sklearn.model_selection import train_test_split

from mmfeat.exceptions import ParameterError
from mmfeat.fusion import FusionSearchCV, get_modalities, is_fusion_model
from mmfeat.utils._item_errors import collecting, unpack_collected
from mmfeat.utils._tables import n_rows, take_rows

__all__ = ["LearningCurveReport", "learning_curve_report"]


def _models(models):
    made = models() if callable(models) and not hasattr(models, "fit") else models
    if hasattr(made, "fit"):
        made = {type(made).__name__: made}
    if not isinstance(made, dict) or not made:
        raise ParameterError(
            "models must be a dict of name to unfitted estimator, an estimator, "
            f"or a callable returning such a dict; got {type(made).__name__}"
        )
    for name, est in made.items():
        if not hasattr(est, "fit"):
            raise ParameterError(f"models[{name!r}] is not an estimator: {est!r}")
    return made


def _is_fused(est):
    if isinstance(est, FusionSearchCV):  # unfitted: its modality models say
        return len(est.estimators) > 1
    return is_fusion_model(est) and len(get_modalities(est)) > 1


def _subsample(pool_labels, n, rng):
    """Up to ``n`` positions per class of ``pool_labels``, drawn without replacement."""
    picked = []
    for c in np.unique(pool_labels):
        rows = np.flatnonzero(pool_labels == c)
        picked.append(rng.choice(rows, size=min(n, len(rows)), replace=False))
    return np.sort(np.concatenate(picked))


def _fit_score(name, est, augmenter, X, y, train, test, scorer):
    model = clone(est)
    if augmenter is not None:
        from imblearn.pipeline import Pipeline

        model = Pipeline([("augment", clone(augmenter)), ("model", model)])
    model.fit(take_rows(X, train), y[train])
    return (
        scorer(model, take_rows(X, train), y[train]),
        scorer(model, take_rows(X, test), y[test]),
    )


class LearningCurveReport:
    """What :func:`learning_curve_report` measured.

    Attributes
    ----------
    table : DataFrame
        One row per (model, augmented, examples per class, repeat):
        ``model``, ``fused`` (a fusion of two or more modalities),
        ``augmented``, ``n_per_class``, ``repeat``, ``n_train``,
        ``train_score``, ``test_score``, ``gap`` (train - test: overfitting).
    scoring : str
    """

    def __init__(self, table, scoring):
        self.table = table
        self.scoring = scoring

    def summary(self):
        """Mean and standard deviation over repeats, per model and size.

        Returns
        -------
        summary : DataFrame
            Indexed by (model, augmented, n_per_class), columns
            ``test_mean``, ``test_std``, ``train_mean``, ``gap_mean``.
        """
        grouped = self.table.groupby(["model", "augmented", "n_per_class"])
        return pd.DataFrame(
            {
                "test_mean": grouped["test_score"].mean(),
                "test_std": grouped["test_score"].std(ddof=0),
                "train_mean": grouped["train_score"].mean(),
                "gap_mean": grouped["gap"].mean(),
            }
        )

    def fusion_advantage(self):
        """Best fused model minus best single-modality model, per size.

        Compared repeat by repeat (the same subsamples), then averaged.

        Returns
        -------
        advantage : DataFrame
            Indexed by (augmented, n_per_class): ``best_fused``,
            ``best_single`` (the models' names, by mean test score),
            ``advantage`` (mean paired difference) and ``advantage_std``.
        """
        t = self.table
        if not (t["fused"].any() and (~t["fused"]).any()):
            raise ParameterError(
                "fusion_advantage needs at least one fused and one "
                "single-modality model"
            )
        rows = []
        for (aug, n), part in t.groupby(["augmented", "n_per_class"]):
            means = part.groupby("model")["test_score"].mean()
            fused = part[part["fused"]]["model"].unique()
            single = part[~part["fused"]]["model"].unique()
            best_f = means[fused].idxmax()
            best_s = means[single].idxmax()
            f = part[part["model"] == best_f].set_index("repeat")["test_score"]
            s = part[part["model"] == best_s].set_index("repeat")["test_score"]
            diff = (f - s).dropna()
            rows.append(
                dict(
                    augmented=aug,
                    n_per_class=n,
                    best_fused=best_f,
                    best_single=best_s,
                    advantage=float(diff.mean()),
                    advantage_std=float(diff.std(ddof=0)),
                )
            )
        return pd.DataFrame(rows).set_index(["augmented", "n_per_class"])

    def plot(self, ax=None):
        """Score against examples per class: held-out solid, training dashed.

        Parameters
        ----------
        ax : matplotlib Axes, default=None
            Where to draw (a new figure when None).

        Returns
        -------
        ax : matplotlib Axes
        """
        import matplotlib.pyplot as plt

        if ax is None:
            _, ax = plt.subplots(figsize=(7, 4.5))
        summary = self.summary().reset_index()
        for (name, aug), part in summary.groupby(["model", "augmented"]):
            label = f"{name} + augmentation" if aug else name
            (line,) = ax.plot(
                part["n_per_class"], part["test_mean"], marker="o", label=label
            )
            ax.fill_between(
                part["n_per_class"],
                part["test_mean"] - part["test_std"],
                part["test_mean"] + part["test_std"],
                color=line.get_color(),
                alpha=0.15,
            )
            ax.plot(
                part["n_per_class"],
                part["train_mean"],
                linestyle="--",
                color=line.get_color(),
                alpha=0.6,
            )
        ax.set_xscale("log")
        ax.set_xlabel("training examples per class")
        ax.set_ylabel(f"{self.scoring} (held out solid, training dashed)")
        ax.legend(fontsize="small")
        return ax

    def __repr__(self):
        return (
            f"LearningCurveReport({self.table['model'].nunique()} models, "
            f"n_per_class={sorted(self.table['n_per_class'].unique().tolist())}, "
            f"{self.table['repeat'].nunique()} repeats)"
        )


def learning_curve_report(
    models,
    X,
    y,
    *,
    n_per_class=(5, 10, 20, 50, 100),
    n_repeats=3,
    test_size=0.3,
    augmenter=None,
    scoring="accuracy",
    random_state=0,
    n_jobs=None,
):
    """Learning curves of each modality alone and each fusion, on the same subsamples.

    Each repeat holds out a stratified ``test_size`` of the rows, then, for
    each size, draws ``n`` training rows per class (fewer when a class has
    fewer) from the rest; every model is fitted on that same subsample and
    scored on the training rows and on the held-out ones, so the models
    are compared pair by pair and the train - test gap shows overfitting.
    With an ``augmenter`` every model is also fitted behind it (an
    :class:`imblearn.pipeline.Pipeline`, so only training rows are
    augmented).

    Parameters
    ----------
    models : dict of str to estimator, estimator, or callable
        Unfitted models by name (each modality alone and each fusion), or
        a callable that returns such a dict (a model factory). A model is
        "fused" when it is a fusion model of two or more modalities.
    X : DataFrame
        The table.
    y : array-like of shape (n_samples,)
        Labels.
    n_per_class : sequence of int, default=(5, 10, 20, 50, 100)
        Training examples per class.
    n_repeats : int, default=3
        Seeded repeats (held-out split and subsamples).
    test_size : float, default=0.3
        Held-out share of each repeat.
    augmenter : sampler, default=None
        An mmfeat augmenter (:class:`~mmfeat.preprocessing.ImageAugmenter`
        with ``column=``, :class:`~mmfeat.preprocessing.AudioAugmenter`):
        every model is fitted with and without it.
    scoring : str, default="accuracy"
        A scikit-learn scorer name.
    random_state : int, default=0
        Seed of the splits and subsamples (repeat ``r`` uses
        ``random_state + r``).
    n_jobs : int, default=None
        Fits run in parallel (joblib).

    Returns
    -------
    report : LearningCurveReport
        ``table``, ``summary()``, ``fusion_advantage()`` and ``plot()``.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> from sklearn.linear_model import LogisticRegression
    >>> from mmfeat.fusion import LateFusionClassifier
    >>> rng = np.random.default_rng(0)
    >>> y = np.repeat([0, 1, 2], 40)
    >>> X = pd.DataFrame({"a": y + rng.normal(0, .8, 120),
    ...                   "b": y + rng.normal(0, .8, 120)})
    >>> models = {
    ...     "a": LateFusionClassifier([("a", LogisticRegression(), ["a"])]),
    ...     "b": LateFusionClassifier([("b", LogisticRegression(), ["b"])]),
    ...     "late": LateFusionClassifier([("a", LogisticRegression(), ["a"]),
    ...                                   ("b", LogisticRegression(), ["b"])]),
    ... }
    >>> report = learning_curve_report(models, X, y, n_per_class=[5, 20],
    ...                                n_repeats=2)
    >>> report.table.shape
    (12, 9)
    >>> report.fusion_advantage()["best_fused"].tolist()
    ['late', 'late']
    """
    made = _models(models)
    y = np.asarray(y)
    if n_rows(X) != len(y):
        raise ParameterError(f"X has {n_rows(X)} rows but y has {len(y)} labels")
    sizes = list(n_per_class) if not np.isscalar(n_per_class) else [n_per_class]
    if not sizes or not all(
        isinstance(n, numbers.Integral) and not isinstance(n, bool) and n >= 1
        for n in sizes
    ):
        raise ParameterError(f"n_per_class must be positive ints; got {n_per_class!r}")
    if not (isinstance(n_repeats, numbers.Integral) and n_repeats >= 1):
        raise ParameterError(f"n_repeats must be an int >= 1; got {n_repeats!r}")
    if not (isinstance(test_size, numbers.Real) and 0 < test_size < 1):
        raise ParameterError(f"test_size must be in (0, 1); got {test_size!r}")
    if augmenter is not None and not hasattr(augmenter, "fit_resample"):
        raise ParameterError(
            "augmenter must be a sampler with fit_resample (an mmfeat augmenter)"
        )
    scorer = get_scorer(scoring)
    fused = {name: _is_fused(est) for name, est in made.items()}
    augs = [False] if augmenter is None else [False, True]
    jobs, keys = [], []
    for r in range(n_repeats):
        seed = random_state + r
        pool, test = train_test_split(
            np.arange(len(y)), test_size=test_size, stratify=y, random_state=seed
        )
        rng = np.random.default_rng(seed)
        for n in sorted(set(sizes)):
            train = pool[_subsample(y[pool], n, rng)]
            for name, est in made.items():
                for aug in augs:
                    keys.append((name, fused[name], aug, n, r, len(train)))
                    jobs.append(
                        delayed(collecting(_fit_score))(
                            name,
                            est,
                            augmenter if aug else None,
                            X,
                            y,
                            train,
                            test,
                            scorer,
                        )
                    )
    # items the extractors refuse come back from the workers with the scores
    scores = unpack_collected(Parallel(n_jobs=n_jobs)(jobs))
    table = pd.DataFrame(
        [
            dict(
                model=name,
                fused=f,
                augmented=aug,
                n_per_class=n,
                repeat=r,
                n_train=n_train,
                train_score=tr,
                test_score=te,
                gap=tr - te,
            )
            for (name, f, aug, n, r, n_train), (tr, te) in zip(keys, scores)
        ]
    )
    return LearningCurveReport(table, scoring)
