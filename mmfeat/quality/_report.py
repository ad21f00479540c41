"""One table a user reads before training: every issue of every record."""

import numpy as np
import pandas as pd

from mmfeat.exceptions import ParameterError
from mmfeat.quality._duplicates import find_duplicates
from mmfeat.quality._image import find_image_issues
from mmfeat.quality._issues import _cleanlab, find_label_issues, find_mismatched_pairs
from mmfeat.quality._oof import cross_val_modality_proba
from mmfeat.utils._tables import n_rows

__all__ = ["CHECKS", "QualityReport", "quality_report"]

#: What :func:`quality_report` can check.
CHECKS = ("images", "duplicates", "leaks", "labels", "pairs")
_KINDS = ("image", "text", "audio")


def _check_columns(X, columns):
    if not isinstance(columns, dict) or not columns:
        raise ParameterError(
            "columns must be a dict of column name to kind ('image', 'text' or "
            f"'audio'); got {columns!r}"
        )
    for col, kind in columns.items():
        if kind not in _KINDS:
            raise ParameterError(
                f"columns[{col!r}] must be one of {_KINDS}; got {kind!r}"
            )
        if col not in X.columns:
            raise ParameterError(
                f"no column {col!r} in X (columns: {list(X.columns)[:12]})"
            )
    return dict(columns)


def _has_cleanlab():
    try:
        _cleanlab("the label check")
    except ImportError:
        return False
    return True


def _default_model(columns, random_state, n_jobs):
    from mmfeat.recipes import make_default_model

    by_kind = {}
    for col, kind in columns.items():
        by_kind.setdefault(kind, col)  # the first column of each kind
    return make_default_model(
        by_kind, fusion="late", random_state=random_state, n_jobs=n_jobs
    )


def _entries(rows, issue, column, score, detail):
    return pd.DataFrame(
        {
            "row": np.asarray(rows, dtype=np.int64),
            "issue": issue,
            "column": column,
            "score": np.asarray(score, dtype=np.float64),
            "detail": list(detail),
        }
    )


class QualityReport:
    """What :func:`quality_report` found.

    Attributes
    ----------
    issues : DataFrame
        One row per (record, issue): ``row`` (position in the table),
        ``issue`` ("blurry", "dark", ..., "unreadable", "duplicate", "leak",
        "label", "mismatched_pair"), ``column`` (the column it concerns, or
        None for the whole record), ``score`` (higher is worse within an
        issue) and ``detail`` (in words). Grouped by issue, worst first.
    table : DataFrame
        One row per record: ``row``, ``n_issues``, ``issues`` (the issue
        names, "; "-joined, "" when none), and where checked
        ``label_score``, ``suggested_label``, ``pair_score``, ``suspect``.
    label_issues, mismatched_pairs, image_issues, duplicates, leaks : DataFrame or None
        The full outputs of each check (None when it was not run).
    X : DataFrame
        The table checked (for the thumbnails).
    columns : dict of str to str
        The modality columns checked, and their kinds.
    notes : list of str
        Checks that were skipped, and why.
    """

    def __init__(self, X, issues, table, parts, columns, notes=()):
        self.X = X
        self.columns = dict(columns)
        self.notes = list(notes)
        self.issues = issues
        self.table = table
        self.label_issues = parts.get("labels")
        self.mismatched_pairs = parts.get("pairs")
        self.image_issues = parts.get("images")
        self.duplicates = parts.get("duplicates")
        self.leaks = parts.get("leaks")

    def summary(self):
        """Records with each issue.

        Returns
        -------
        summary : DataFrame
            Indexed by issue: ``records`` and ``share`` of all records.
        """
        counts = self.issues.groupby("issue")["row"].nunique()
        n = max(len(self.table), 1)
        return pd.DataFrame({"records": counts, "share": counts / n}).sort_values(
            "records", ascending=False
        )

    def worst(self, issue, n=10):
        """The ``n`` worst records of one issue (rows of :attr:`issues`)."""
        part = self.issues[self.issues["issue"] == issue]
        if not len(part) and issue not in set(self.issues["issue"]):
            known = sorted(set(self.issues["issue"]))
            raise ParameterError(f"no record has issue {issue!r}; found: {known}")
        return part.head(n)

    def to_text(self, n=5):
        """The summary and the worst ``n`` records of each issue, as text."""
        lines = [f"{len(self.table)} records checked"]
        lines += [f"note: {n}" for n in self.notes]
        summary = self.summary()
        if not len(summary):
            lines.append("no issue found")
            return "\n".join(lines)
        flagged = int((self.table["n_issues"] > 0).sum())
        lines.append(f"{flagged} records ({flagged / len(self.table):.1%}) have issues")
        for issue, row in summary.iterrows():
            lines.append(
                f"\n{issue}: {int(row['records'])} records ({row['share']:.1%})"
            )
            for _, e in self.worst(issue, n).iterrows():
                where = f" [{e['column']}]" if e["column"] is not None else ""
                lines.append(f"  row {e['row']}{where}: {e['detail']}")
        return "\n".join(lines)

    def __str__(self):
        return self.to_text()

    def __repr__(self):
        return (
            f"QualityReport({len(self.table)} records, "
            f"{self.issues['issue'].nunique()} issues, "
            f"{int((self.table['n_issues'] > 0).sum())} records flagged)"
        )

    def plot_worst(self, issue, n=8, *, image_column=None, thumbnail=96):
        """Thumbnails of the worst records of one issue, with what was found.

        Parameters
        ----------
        issue : str
            An issue of :attr:`issues`.
        n : int, default=8
            How many records.
        image_column : str, default=None
            The image column shown; default: the issue's column when it is
            an image column, else the first image column.
        thumbnail : int, default=96
            Thumbnail side in pixels.

        Returns
        -------
        figure : matplotlib Figure
        """
        import matplotlib.pyplot as plt

        from mmfeat.io import read_image

        part = self.worst(issue, n)
        images = [c for c, k in self.columns.items() if k == "image"]
        if not images:
            raise ParameterError("plot_worst needs an image column")
        fig, axes = plt.subplots(
            1, max(len(part), 1), figsize=(2 * max(len(part), 1), 2.6)
        )
        axes = np.atleast_1d(axes)
        for ax, (_, e) in zip(axes, part.iterrows()):
            col = image_column or (e["column"] if e["column"] in images else images[0])
            try:
                img = read_image(
                    self.X[col].iloc[e["row"]],
                    mode="rgb",
                    size=(thumbnail, thumbnail),
                    resize="pad",
                    pad_value=1.0,  # white, as catalogue backgrounds are
                )
                ax.imshow(img)
            except Exception as exc:  # an unreadable image is a finding too
                ax.text(0.5, 0.5, type(exc).__name__, ha="center", va="center")
            ax.set_title(f"row {e['row']}", fontsize=8)
            ax.set_xlabel(str(e["detail"])[:40], fontsize=6)
            ax.set_xticks([])
            ax.set_yticks([])
        for ax in axes[len(part) :]:
            ax.axis("off")
        fig.suptitle(issue)
        fig.tight_layout()
        return fig


def _duplicate_entries(pairs, issue):
    if pairs is None or not len(pairs):
        return []
    out = []
    for side, other_side in (("row", "other_row"), ("other_row", "row")):
        if issue == "leak" and side == "other_row":
            break  # a leak is reported on the checked table's row
        out.append(
            _entries(
                pairs[side],
                issue,
                None,
                pairs["similarity"],
                [
                    f"{kind} {'duplicate' if issue == 'duplicate' else 'copy'} "
                    f"of {'other table ' if issue == 'leak' else ''}row {o} "
                    f"(similarity {s:.2f})"
                    for o, s, kind in zip(
                        pairs[other_side], pairs["similarity"], pairs["kind"]
                    )
                ],
            )
        )
    return out


def quality_report(
    X,
    y=None,
    *,
    columns,
    model=None,
    other=None,
    checks=None,
    cv=5,
    pair_threshold=0.7,
    random_state=0,
    n_jobs=None,
):
    """Check a multimodal table before training: one report of every issue.

    Runs, as asked by ``checks``:

    - ``"images"``: :func:`find_image_issues` on each image column
      (blurry, dark, light, low information, odd sizes, unreadable; grey
      images only when they are the minority of the column);
    - ``"duplicates"``: :func:`find_duplicates` within ``X`` over
      ``columns`` (every column must match);
    - ``"leaks"``: :func:`find_duplicates` between ``X`` and ``other`` (a
      test part): records of ``X`` that are also in ``other``;
    - ``"labels"`` (needs ``y``): :func:`find_label_issues`, the rows
      cleanlab flags on the fused out-of-fold probabilities (rows without
      a label are reported as ``no_label`` and left out of this check and
      the next);
    - ``"pairs"`` (needs ``y`` and two modalities):
      :func:`find_mismatched_pairs`, rows scoring ``pair_threshold`` or
      more.

    The out-of-fold probabilities are computed once for both model checks.

    Parameters
    ----------
    X : DataFrame
        The records.
    y : array-like or str, default=None
        Labels, or the name of the label column of ``X``.
    columns : dict of str to {"image", "text", "audio"}
        The modality columns and their kinds.
    model : classifier, default=None
        The fusion model of the label and pair checks; default
        :func:`~mmfeat.recipes.make_default_model` over ``columns`` (late
        fusion of HOG + colour and TF-IDF logistic regressions).
    other : DataFrame, default=None
        A second table (the test part) for ``"leaks"``.
    checks : sequence of str, default=None
        Among :data:`CHECKS`; default every check the inputs allow (the
        label check only when cleanlab is installed: else it is skipped
        with a note in ``report.notes``; asked for, it raises ImportError).
    cv : int, default=5
        Folds of the out-of-fold probabilities.
    pair_threshold : float, default=0.7
        Mismatched-pair score from which a record is reported. With the
        default model on the corrupted fashion sample (3% of photos
        swapped), 0.7 reported 56 records at precision 0.52 and recall 0.78
        (0.5: 172 records, precision 0.20, recall 0.95); the full ranking is
        in ``mismatched_pairs``.
    random_state : int, default=0
        Seed of the default model and of the retriever's candidates.
    n_jobs : int, default=None
        Parallel work (decoding, folds).

    Returns
    -------
    report : QualityReport
        ``issues`` (long), ``table`` (one row per record), ``summary()``,
        ``to_text()``, ``plot_worst(issue)``, and each check's full output.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> rng = np.random.default_rng(0)
    >>> photos = [rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
    ...           for _ in range(30)]
    >>> photos[4] = np.zeros((32, 32, 3), np.uint8)  # a blank, black photo
    >>> titles = [f"item {i} in {c}" for i, c in enumerate(["red", "blue"] * 15)]
    >>> titles[7] = titles[6]
    >>> photos[7] = photos[6].copy()  # record 7 is record 6 again
    >>> X = pd.DataFrame({"photo": photos, "title": titles})
    >>> report = quality_report(X, columns={"photo": "image", "title": "text"})
    >>> sorted(report.summary().index)
    ['blurry', 'dark', 'duplicate', 'grayscale', 'low_information']
    >>> report.table.loc[7, "issues"]
    'duplicate'
    """
    if not isinstance(X, pd.DataFrame):
        raise ParameterError(f"X must be a DataFrame; got {type(X).__name__}")
    columns = _check_columns(X, columns)
    if isinstance(y, str):
        if y not in X.columns:
            raise ParameterError(f"no label column {y!r} in X")
        y = X[y].to_numpy()
    if y is not None:
        y = np.asarray(y)
        if len(y) != n_rows(X):
            raise ParameterError(f"X has {n_rows(X)} rows but y has {len(y)} labels")
    n_modalities = len(columns)
    allowed = {
        "images": any(k == "image" for k in columns.values()),
        "duplicates": any(k in ("image", "text") for k in columns.values()),
        "leaks": other is not None,
        "labels": y is not None,
        "pairs": y is not None and n_modalities >= 2,
    }
    notes = []
    if checks is None:
        checks = [c for c in CHECKS if allowed[c]]
        if "labels" in checks and not _has_cleanlab():
            checks.remove("labels")
            notes.append(
                "the label check was skipped: it needs cleanlab (pip install "
                "'mmfeat[quality]')"
            )
    else:
        checks = list(checks)
        for c in checks:
            if c not in CHECKS:
                raise ParameterError(f"checks must be among {CHECKS}; got {c!r}")
            if not allowed[c]:
                raise ParameterError(
                    f"check {c!r} needs "
                    + {
                        "images": "an image column",
                        "duplicates": "an image or text column",
                        "leaks": "other (the second table)",
                        "labels": "y",
                        "pairs": "y and two modality columns",
                    }[c]
                )
    if "labels" in checks:
        _cleanlab("the label check")  # before any fitting
    parts, entries = {}, []
    if "images" in checks:
        frames = []
        for col, kind in columns.items():
            if kind != "image":
                continue
            found = find_image_issues(X[col], n_jobs=n_jobs).assign(column=col)
            grey = found["issue"] == "grayscale"
            if grey.sum() > 0.5 * n_rows(X):
                # a grey collection: being grey is its nature, not an issue
                found = found[~grey].reset_index(drop=True)
            frames.append(found)
            entries.append(
                _entries(
                    found["row"],
                    found["issue"].to_numpy(),
                    col,
                    found["severity"],
                    [
                        d
                        if isinstance(d, str) and d
                        else f"score {s:.3g}, threshold {t:.3g}"
                        for d, s, t in zip(
                            found["detail"], found["score"], found["threshold"]
                        )
                    ],
                )
            )
        parts["images"] = pd.concat(frames, ignore_index=True) if frames else None
    dup_columns = {c: k for c, k in columns.items() if k in ("image", "text")}
    if "duplicates" in checks:
        parts["duplicates"] = find_duplicates(
            X, columns=dup_columns, on_error="missing", n_jobs=n_jobs
        )
        entries += _duplicate_entries(parts["duplicates"], "duplicate")
    if "leaks" in checks:
        parts["leaks"] = find_duplicates(
            X, other, columns=dup_columns, on_error="missing", n_jobs=n_jobs
        )
        entries += _duplicate_entries(parts["leaks"], "leak")
    oof = None
    if "labels" in checks or "pairs" in checks:
        # rows without a label are reported, and the model checks run on the rest
        labelled = np.flatnonzero(pd.notna(y))
        if len(labelled) < n_rows(X):
            missing = np.setdiff1d(np.arange(n_rows(X)), labelled)
            entries.append(
                _entries(
                    missing,
                    "no_label",
                    None,
                    np.ones(len(missing)),
                    ["no label: left out of the label and pair checks"] * len(missing),
                )
            )
        Xl = X.iloc[labelled].reset_index(drop=True)
        yl = y[labelled]
        if model is None:
            model = _default_model(columns, random_state, n_jobs)
        oof = cross_val_modality_proba(model, Xl, yl, cv=cv, n_jobs=n_jobs)
    if "labels" in checks:
        found = find_label_issues(model, Xl, yl, oof=oof)
        found["row"] = labelled[found["row"].to_numpy()]
        parts["labels"] = found
        flagged = found[found["is_issue"]]
        entries.append(
            _entries(
                flagged["row"],
                "label",
                None,
                flagged["score"],
                [
                    f"labelled {g!r}, looks like {s!r} ({p:.0%})"
                    + (f"; disagreeing: {d}" if d else "")
                    for g, s, p, d in zip(
                        flagged["given_label"],
                        flagged["suggested_label"],
                        flagged["suggested_proba"],
                        flagged["disagreeing"],
                    )
                ],
            )
        )
    if "pairs" in checks and len(oof.modality_proba) >= 2:
        found = find_mismatched_pairs(model, Xl, yl, oof=oof, random_state=random_state)
        found["row"] = labelled[found["row"].to_numpy()]
        parts["pairs"] = found
        flagged = found[found["score"] >= pair_threshold]
        names = list(oof.modality_proba)
        entries.append(
            _entries(
                flagged["row"],
                "mismatched_pair",
                None,
                flagged["score"],
                [
                    f"suspect: {r['suspect']}; "
                    + ", ".join(f"{m} says {r[f'{m}_prediction']!r}" for m in names)
                    + f" (label {r['given_label']!r})"
                    for _, r in flagged.iterrows()
                ],
            )
        )
    issues = (
        pd.concat([e for e in entries if len(e)], ignore_index=True)
        if any(len(e) for e in entries)
        else _entries([], "", None, [], [])
    )
    if len(issues):
        order = np.lexsort((-issues["score"].to_numpy(), issues["issue"].to_numpy()))
        issues = issues.iloc[order].reset_index(drop=True)
    n = n_rows(X)
    names = issues.groupby("row")["issue"].agg(lambda s: "; ".join(dict.fromkeys(s)))
    table = pd.DataFrame({"row": np.arange(n)})
    table["n_issues"] = issues.groupby("row").size().reindex(range(n), fill_value=0)
    table["issues"] = names.reindex(range(n), fill_value="").to_numpy()
    if parts.get("labels") is not None:
        lab = parts["labels"].set_index("row").reindex(range(n))
        table["label_score"] = lab["score"].to_numpy()
        table["suggested_label"] = lab["suggested_label"].to_numpy()
    if parts.get("pairs") is not None:
        pr = parts["pairs"].set_index("row").reindex(range(n))
        table["pair_score"] = pr["score"].to_numpy()
        table["suspect"] = pr["suspect"].to_numpy()
    return QualityReport(X, issues, table, parts, columns, notes)
