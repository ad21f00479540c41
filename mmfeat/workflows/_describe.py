"""describe_model: what a saved model is made of, as a dict."""

import os

import numpy as np

from mmfeat.utils._tags import get_item_tags
from mmfeat.workflows._common import load_model

__all__ = ["describe_model"]

# the versions a model file records, in the order they are shown
_PACKAGES = (
    "mmfeat",
    "scikit-learn",
    "imbalanced-learn",
    "numpy",
    "scipy",
    "skops",
    "python",
)


def _short(est):
    """``HOGExtractor(image_size=(64, 64))``: the class and its changed parameters."""
    params = est.get_params(deep=False) if hasattr(est, "get_params") else {}
    try:
        default = type(est)().get_params(deep=False)
    except TypeError:
        default = {}
    changed = {
        k: v
        for k, v in params.items()
        if not hasattr(v, "get_params")
        and not isinstance(v, list)
        and k in default
        and repr(default[k]) != repr(v)
    }
    inner = ", ".join(f"{k}={v!r}" for k, v in changed.items())
    return f"{type(est).__name__}({inner})"


def _steps(est):
    """A pipeline's steps (with a FeatureUnion's parts), or the estimator alone."""
    steps = getattr(est, "steps", None)
    if steps is None:
        return [{"name": None, "estimator": _short(est), "parts": []}]
    return [
        {
            "name": name,
            "estimator": _short(step),
            "parts": [
                {"name": sub[0], "estimator": _short(sub[1])}
                for sub in getattr(step, "transformer_list", []) or []
            ],
        }
        for name, step in steps
    ]


def describe_model(model, *, trusted=None, max_bytes=None):
    """What a fitted model is made of: type, classes, modalities, steps, versions.

    This is what ``mmfeat info`` prints.

    Parameters
    ----------
    model : fitted estimator, or str or path-like
        A model, or a file written by :func:`mmfeat.save` (loaded with
        :func:`mmfeat.load`; its recorded versions are read with
        :func:`mmfeat.model_metadata`).
    trusted : list of str, default=None
        Extra types to trust when loading a file.
    max_bytes : int, default=None
        The most a model file may hold uncompressed (default
        :data:`mmfeat.DEFAULT_MAX_BYTES`).

    Returns
    -------
    description : dict
        ``file`` and ``file_bytes`` (None for a model object); ``type`` (the
        class name); ``saved_at`` and ``versions`` (package to version, as
        recorded by :func:`mmfeat.save`; None and {} when not a file);
        ``classes`` (list, or None); ``kind``: ``"ensemble"`` (late fusion,
        stacking), ``"deep"`` (a :class:`~mmfeat.fusion.NeuralFusionClassifier`,
        with ``network`` describing it), ``"fused"`` (a Pipeline with a
        fuser) or ``"other"``; ``search`` (a
        :class:`~mmfeat.fusion.FusionSearchCV`'s ``chosen`` candidate and
        every candidate's cross-validated score; absent otherwise);
        ``modalities``: per modality a dict of ``name``, ``columns`` (as the
        model selects them), ``training_rows`` and ``weight`` (None when the
        model has none) and ``steps``; ``final_estimator`` (the stacking
        meta-model, else None); ``steps`` (the pipeline's, for models that
        are not ensembles; else []); ``parameters`` (the model's changed
        parameters). A step is a dict of ``name`` (None for a bare
        estimator), ``estimator`` (``"HOGExtractor(image_size=(64, 64))"``)
        and ``parts`` (a FeatureUnion's, each with ``name`` and
        ``estimator``).

    Examples
    --------
    >>> import pandas as pd
    >>> from sklearn.linear_model import LogisticRegression
    >>> from mmfeat.fusion import LateFusionClassifier
    >>> X = pd.DataFrame({"a": [0.0, 1, 2, 3], "b": [1.0, 0, 1, 0]})
    >>> model = LateFusionClassifier([("a", LogisticRegression(), ["a"]),
    ...                               ("b", LogisticRegression(), ["b"])],
    ...                              cv=2).fit(X, [0, 0, 1, 1])
    >>> info = describe_model(model)
    >>> info["type"], info["classes"], [m["name"] for m in info["modalities"]]
    ('LateFusionClassifier', [0, 1], ['a', 'b'])
    """
    from mmfeat import model_metadata
    from mmfeat.fusion import (
        FusionSearchCV,
        NeuralFusionClassifier,
        find_fuser,
        is_modality_ensemble,
        unwrap_model,
    )

    meta = None
    if isinstance(model, (str, os.PathLike)):
        meta = model_metadata(model)
    model, path = load_model(model, trusted=trusted, max_bytes=max_bytes)
    inner = unwrap_model(model)
    meta = meta or {}
    # a captioner predicts texts: its classes_ (per slot, or tags) are not
    # what it predicts
    captioner = get_item_tags(inner).target is not None
    classes = None if captioner else getattr(inner, "classes_", None)
    out = {
        "file": path,
        "file_bytes": None if path is None else os.path.getsize(path),
        "type": type(model).__name__,
        "saved_at": meta.get("saved_at"),
        "versions": {k: meta[k] for k in _PACKAGES if k in meta},
        "classes": None if classes is None else np.asarray(classes).tolist(),
        "kind": "other",
        "modalities": [],
        "final_estimator": None,
        "steps": [],
        "parameters": _short(inner),
    }
    if isinstance(model, FusionSearchCV) and hasattr(model, "cv_results_"):
        res = model.cv_results_
        out["search"] = {
            "chosen": model.best_candidate_,
            "candidates": dict(zip(res["candidate"], res["mean_test_score"])),
        }
    if is_modality_ensemble(inner):
        out["kind"] = "ensemble"
        rows = getattr(inner, "n_training_rows_", None) or {}
        weights = getattr(inner, "weights_", None)
        for name, est, cols in inner.estimators:
            out["modalities"].append(
                {
                    "name": name,
                    "columns": cols,
                    "training_rows": rows.get(name),
                    "weight": weights.get(name) if isinstance(weights, dict) else None,
                    "steps": _steps(est),
                }
            )
        final = getattr(inner, "final_estimator", None)
        if final is not None:
            out["final_estimator"] = _short(final)
        return out
    if isinstance(inner, NeuralFusionClassifier):
        out["kind"] = "deep"
        rows = getattr(inner, "n_training_rows_", None) or {}
        parts = getattr(inner, "transformers_", None) or inner.modalities
        for name, est, cols in parts:
            out["modalities"].append(
                {
                    "name": name,
                    "columns": cols,
                    "training_rows": rows.get(name),
                    "weight": None,
                    "steps": [] if isinstance(est, str) else _steps(est),
                }
            )
        spec = getattr(inner, "network_spec_", None)
        if spec is not None:
            out["network"] = (
                f"{spec['fusion']} fusion of {len(spec['inputs'])} encoders of "
                f"{spec['hidden_size']} units, {spec['n_classes']} classes"
                + (", wide" if spec.get("wide") else "")
            )
        return out
    fuser = find_fuser(inner)
    if fuser is not None:
        out["kind"] = "fused"
        for name, est, cols in fuser.transformers:
            out["modalities"].append(
                {
                    "name": name,
                    "columns": cols,
                    "training_rows": None,
                    "weight": None,
                    "steps": _steps(est),
                }
            )
    out["steps"] = _steps(inner)
    return out
