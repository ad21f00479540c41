"""Image-issue detection from :class:`~mmfeat.features.image.ImageQuality` scores.

:func:`find_image_issues` turns the scores into a table of issues (blurry,
dark, light, low information, grayscale, odd size or aspect ratio,
unreadable), with thresholds fixed, given, or learnt robustly from the
column's own distribution.
"""

import math
from numbers import Number
from typing import NamedTuple

import numpy as np
import pandas as pd

from mmfeat.exceptions import ParameterError
from mmfeat.features.image import QUALITY_SCORES, ImageQuality
from mmfeat.utils._item_errors import collect_item_errors
from mmfeat.utils._items import as_item_list, item_source

__all__ = ["IMAGE_ISSUES", "find_image_issues"]


# --------------------------------------------------------------------------
# Issues
# --------------------------------------------------------------------------
class _Rule(NamedTuple):
    score: str  # the score column it reads
    side: str  # "low", "high": flagged below / above the threshold
    log: bool  # robust statistics on log(score)
    fixed: float  # the default threshold
    bounds: tuple  # a learnt threshold is clipped to these
    min_spread: float  # floor of the robust spread (log units when log)
    learn: bool  # whether "auto" learns it from the data


_RULES = {
    "blurry": _Rule("edge_sharpness", "low", True, 0.008, (0.002, 0.02), 0.1, True),
    "dark": _Rule("luma_p99", "low", False, 0.25, (0.1, 0.4), 0.05, True),
    "light": _Rule("luma_p05", "high", False, 0.85, (0.6, 0.95), 0.05, True),
    "low_information": _Rule("entropy", "low", False, 2.0, (1.0, 3.0), 0.25, True),
    "grayscale": _Rule("colourfulness", "low", False, 1.0, (1.0, 1.0), 1.0, False),
    # elongation max(w/h, h/w) above the threshold
    "odd_aspect_ratio": _Rule("aspect", "high", True, 3.0, (3.0, 3.0), 0.25, False),
    # sqrt(h*w) further than a factor from the median (two-sided)
    "odd_size": _Rule("height", "both", True, 4.0, (4.0, 16.0), 0.25, True),
}

#: Issue types :func:`find_image_issues` reports, ``"unreadable"`` included.
IMAGE_ISSUES = tuple(_RULES) + ("unreadable",)

# fewer scored images than this: "auto" uses the fixed thresholds
_MIN_AUTO = 20
_MAD_TO_SD = 1.4826


def _robust(values, min_spread):
    """Median and spread (1.4826 MAD, floored) of the finite ``values``."""
    values = values[np.isfinite(values)]
    if values.size == 0:
        return math.nan, min_spread
    med = float(np.median(values))
    mad = float(np.median(np.abs(values - med))) * _MAD_TO_SD
    return med, max(mad, min_spread)


def _issue_values(issue, table):
    """The score an issue is judged on, as reported (not log-transformed)."""
    if issue == "odd_aspect_ratio":
        a = table["aspect"].to_numpy(dtype=float)
        return np.maximum(a, 1.0 / a)
    if issue == "odd_size":
        return np.sqrt(
            table["height"].to_numpy(dtype=float) * table["width"].to_numpy(dtype=float)
        )
    return table[_RULES[issue].score].to_numpy(dtype=float)


def _safe_log(x):
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.log(np.maximum(x, 1e-300))


def _check_thresholds(thresholds, issues):
    if isinstance(thresholds, str):
        if thresholds not in ("auto", "fixed"):
            raise ParameterError(
                'thresholds must be "auto", "fixed" or a dict of issue -> number '
                f'(or "auto"/"fixed"); got {thresholds!r}'
            )
        return dict.fromkeys(issues, thresholds)
    if not isinstance(thresholds, dict):
        raise ParameterError(
            'thresholds must be "auto", "fixed" or a dict of issue -> number; got '
            f"{type(thresholds).__name__}"
        )
    unknown = sorted(set(thresholds) - set(_RULES))
    if unknown:
        raise ParameterError(
            f"thresholds names unknown issues {unknown}; known: {sorted(_RULES)}"
        )
    out = dict.fromkeys(issues, "auto")
    for issue, value in thresholds.items():
        ok = (
            value in ("auto", "fixed")
            if isinstance(value, str)
            else (
                isinstance(value, Number)
                and not isinstance(value, bool)
                and math.isfinite(value)
                and value > 0
            )
        )
        if not ok:
            raise ParameterError(
                f"thresholds[{issue!r}] must be a positive number, 'auto' or "
                f"'fixed'; got {value!r}"
            )
        if issue in out:
            out[issue] = value if isinstance(value, str) else float(value)
    return out


def _check_issues(issues):
    if issues is None:
        return list(IMAGE_ISSUES)
    if isinstance(issues, str):
        issues = [issues]
    issues = list(issues)
    unknown = sorted(set(issues) - set(IMAGE_ISSUES))
    if unknown or not issues:
        raise ParameterError(
            f"issues must be None or a list of {list(IMAGE_ISSUES)}; got {issues!r}"
        )
    return list(dict.fromkeys(issues))


def _score_table(X, *, working_size, n_jobs, verbose):
    """(scores DataFrame, {row: (source, reason)}, sources) for a column or a table."""
    if isinstance(X, pd.DataFrame) and set(QUALITY_SCORES) <= set(X.columns):
        table = X[list(QUALITY_SCORES)].reset_index(drop=True).astype(float)
        bad = table.isna().all(axis=1).to_numpy()
        reasons = {
            int(i): (None, "no scores (a missing or unreadable item)")
            for i in np.flatnonzero(bad)
        }
        return table, reasons, [None] * len(table)
    items = as_item_list(X, stack_ndim=3)
    quality = ImageQuality(
        working_size=working_size, on_error="missing", n_jobs=n_jobs, verbose=verbose
    ).fit()
    with collect_item_errors() as errors:
        scores = quality.transform(items)
    table = pd.DataFrame(scores, columns=list(QUALITY_SCORES))
    reasons = {e.row: (e.source, e.reason) for e in errors}
    for i in np.flatnonzero(np.isnan(scores).all(axis=1)):
        reasons.setdefault(int(i), (None, "missing item"))
    return table, reasons, [_source(it) for it in items]


def _source(item):
    if item is None or (isinstance(item, float) and math.isnan(item)):
        return None
    return item_source(item)


def _flag(issue, table, setting, n_mads):
    """(mask, reported scores, thresholds per row, severity, threshold info)."""
    rule = _RULES[issue]
    values = _issue_values(issue, table)
    valid = np.isfinite(values)
    t = _safe_log(values) if rule.log else values
    n_valid = int(valid.sum())
    med, spread = _robust(t[valid], rule.min_spread)

    if issue in ("odd_size",):
        # factor from the median side, learnt as exp(n_mads * spread) in auto
        if isinstance(setting, float):
            factor = setting
        elif setting == "auto" and rule.learn and n_valid >= _MIN_AUTO:
            factor = float(np.clip(math.exp(n_mads * spread), *rule.bounds))
        else:
            factor = rule.fixed
        if factor <= 1:
            raise ParameterError(
                f"thresholds['odd_size'] is a factor from the median size and must "
                f"be > 1; got {factor}"
            )
        if not math.isfinite(med):
            return np.zeros(len(values), bool), values, values, values, factor
        lo, hi = med - math.log(factor), med + math.log(factor)
        small = valid & (t < lo)
        large = valid & (t > hi)
        thr = np.where(small, math.exp(lo), math.exp(hi))
        severity = np.where(small, lo - t, t - hi) / spread
        return small | large, values, thr, severity, factor

    if isinstance(setting, float):
        threshold = setting
    elif setting == "auto" and rule.learn and n_valid >= _MIN_AUTO:
        centre = med - n_mads * spread if rule.side == "low" else med + n_mads * spread
        learnt = math.exp(centre) if rule.log else centre
        threshold = float(np.clip(learnt, *rule.bounds))
    else:
        threshold = rule.fixed
    t_thr = math.log(threshold) if rule.log else threshold
    with np.errstate(invalid="ignore"):
        if rule.side == "low":
            mask = valid & (values < threshold)
            severity = (t_thr - t) / spread
        else:
            mask = valid & (values > threshold)
            severity = (t - t_thr) / spread
    return mask, values, np.full(len(values), threshold), severity, threshold


def find_image_issues(
    X,
    *,
    issues=None,
    thresholds="auto",
    n_mads=4.0,
    working_size=256,
    n_jobs=None,
    verbose=0,
):
    """Find blurry, dark, light, blank, odd and unreadable images in a column.

    Each image is scored by :class:`ImageQuality` (or the scores are given),
    then each issue compares one score with a threshold:

    ================  ==================  =====================================
    issue             score               flagged when
    ================  ==================  =====================================
    blurry            edge_sharpness      below the threshold (0.008)
    dark              luma_p99            below (0.25: even the brightest
                                          pixels are dark)
    light             luma_p05            above (0.85: even the darkest
                                          pixels are bright)
    low_information   entropy             below (2 bits)
    grayscale         colourfulness       below (1.0)
    odd_aspect_ratio  max(w/h, h/w)       above (3.0)
    odd_size          sqrt(height*width)  further than a factor (4) from the
                                          column's median, either way
    unreadable        (none)              the reader refused the item, or it
                                          is missing
    ================  ==================  =====================================

    Parameters
    ----------
    X : column of images, or DataFrame of ImageQuality scores
        Paths, bytes, arrays or missing values (a list, array, Series or
        one-column DataFrame), or the output of
        ``ImageQuality().set_output(transform="pandas").fit_transform(...)``
        (a DataFrame with all its score columns), so the images are not
        decoded twice.
    issues : list of str, default=None
        The issues to look for (of :data:`IMAGE_ISSUES`); ``None``: all.
    thresholds : "auto", "fixed" or dict, default="auto"
        ``"fixed"``: the defaults in the table. ``"auto"``: learnt from the
        column itself, robustly: a row is flagged when its score (its log for
        ``edge_sharpness`` and sizes) lies more than ``n_mads`` robust
        standard deviations (1.4826 x the median absolute deviation, with a
        floor) beyond the column's median, on the issue's side; the learnt
        threshold is kept within a sane range (blurry 0.002-0.02, dark
        0.1-0.4, light 0.6-0.95, low information 1-3 bits, odd size a factor
        of 4-16), so a clean column flags nothing far-fetched and a column
        full of dark images still has them flagged. Grayscale and odd aspect
        ratio always use their fixed thresholds, and with fewer than 20
        readable images "auto" is "fixed". A dict maps issues to a number,
        ``"auto"`` or ``"fixed"``; the issues it leaves out are "auto".
    n_mads : float, default=4.0
        How many robust standard deviations from the median "auto" flags.
    working_size : int or None, default=256
        :class:`ImageQuality`'s working size (ignored for a score table).
    n_jobs : int, default=None
        Decoding threads and numba threads.
    verbose : int, default=0
        Progress bar when > 0.

    Returns
    -------
    issues : DataFrame
        One row per (image, issue), most severe first, with columns ``row``
        (position in ``X``), ``issue``, ``score`` (the value that tripped it),
        ``threshold`` (in the score's units), ``severity`` (how many robust
        standard deviations past the threshold; ``inf`` for unreadable),
        ``source`` (path, ``"bytes"``, ``"array"``) and ``detail`` (the
        reader's reason for unreadable items). The thresholds used are in
        ``issues.attrs["thresholds"]``. No issue: an empty table.

    See Also
    --------
    ImageQuality : The scores.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> photo = rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)
    >>> dark = (photo // 10).astype(np.uint8)
    >>> found = find_image_issues([photo, dark, b"not an image", None])
    >>> found[["row", "issue"]]
       row       issue
    0    2  unreadable
    1    3  unreadable
    2    1        dark
    >>> found.loc[0, "detail"][:30]
    'not an image: the file holds t'
    >>> found = find_image_issues([photo, dark], thresholds={"dark": 0.05})
    >>> len(found)
    0
    """
    issues = _check_issues(issues)
    settings = _check_thresholds(thresholds, [i for i in issues if i in _RULES])
    if not (isinstance(n_mads, Number) and not isinstance(n_mads, bool) and n_mads > 0):
        raise ParameterError(f"n_mads must be a positive number; got {n_mads!r}")
    table, reasons, sources = _score_table(
        X, working_size=working_size, n_jobs=n_jobs, verbose=verbose
    )

    parts = []
    used = {}
    for issue, setting in settings.items():
        mask, values, thr, severity, used[issue] = _flag(
            issue, table, setting, float(n_mads)
        )
        rows = np.flatnonzero(mask)
        parts.append(
            pd.DataFrame(
                {
                    "row": rows,
                    "issue": issue,
                    "score": values[rows],
                    "threshold": thr[rows],
                    "severity": severity[rows],
                    "source": [sources[i] for i in rows],
                    "detail": None,
                }
            )
        )
    if "unreadable" in issues and reasons:
        rows = sorted(reasons)
        parts.append(
            pd.DataFrame(
                {
                    "row": rows,
                    "issue": "unreadable",
                    "score": np.nan,
                    "threshold": np.nan,
                    "severity": np.inf,
                    "source": [reasons[i][0] or sources[i] for i in rows],
                    "detail": [reasons[i][1] for i in rows],
                }
            )
        )
    columns = ["row", "issue", "score", "threshold", "severity", "source", "detail"]
    parts = [p for p in parts if len(p)]
    if parts:
        out = pd.concat(parts, ignore_index=True)
    else:
        out = pd.DataFrame({c: [] for c in columns})
    out = out.astype(
        {
            "row": np.int64,
            "issue": object,
            "score": float,
            "threshold": float,
            "severity": float,
            "source": object,
            "detail": object,
        }
    )
    out = out.sort_values(
        ["severity", "row"], ascending=[False, True], kind="stable"
    ).reset_index(drop=True)[columns]
    out.attrs["thresholds"] = used
    return out
