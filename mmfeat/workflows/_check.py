"""``check_file``: the data-quality report of a records file (``mmfeat check``)."""

import logging
import os
import time

from mmfeat.exceptions import ParameterError
from mmfeat.workflows._common import rows_text
from mmfeat.workflows._fit import _read as read_table

__all__ = ["check_file"]

logger = logging.getLogger("mmfeat.workflows")

_KINDS = ("image", "text", "audio")
_PATH_KINDS = ("image", "audio")


def _read(path, columns, label_column, root, confine, notes, what):
    from mmfeat.scoring import resolve_paths

    frame = read_table(path, columns, label_column)
    root = os.path.dirname(os.path.abspath(path)) if root is None else root
    X = frame[list(dict.fromkeys(columns.values()))].reset_index(drop=True)
    for kind in _PATH_KINDS:
        col = columns.get(kind)
        if col is None:
            continue
        X[col], refused = resolve_paths(X[col].tolist(), root, confine=confine)
        if refused:
            rows = [i for i, _ in refused]
            notes.append(
                f"{what}: {len(rows)} path(s) in {col!r} resolve outside the root "
                f"{os.fspath(root)!r} and were not read; they are reported as "
                f"unreadable (rows {rows_text(rows)})"
            )
            logger.warning(notes[-1])
    y = frame[label_column].to_numpy() if label_column else None
    return X, y


def _write_table(frame, path):
    from mmfeat.scoring import atomic_output

    with atomic_output(path) as tmp:
        if str(path).lower().endswith(".parquet"):
            frame.to_parquet(tmp, index=False)
        else:
            frame.to_csv(tmp, index=False)


def check_file(
    records,
    *,
    columns,
    label_column=None,
    other=None,
    output=None,
    issues_output=None,
    plots=None,
    checks=None,
    cv=5,
    pair_threshold=0.7,
    root=None,
    confine_to_root=False,
    n_jobs=None,
    random_state=0,
):
    """Check a records file before training: image issues, duplicates, leaks, labels.

    Reads the records (CSV or Parquet, checked as ``mmfeat score`` checks
    them), runs :func:`mmfeat.quality.quality_report` and writes its tables.

    Parameters
    ----------
    records : str or path
        The records file.
    columns : dict of str to str
        Modality kind (``"image"``, ``"text"``, ``"audio"``) to its column.
    label_column : str, default=None
        The labels (the label and pair checks need them).
    other : str or path, default=None
        A second records file with the same columns (the test part): its
        records that are also in ``records`` are reported as leaks.
    output : str or path, default=None
        The per-record table (``.csv`` or ``.parquet``): the modality
        columns, then ``n_issues``, ``issues`` and the scores.
    issues_output : str or path, default=None
        The list of issues, one row per (record, issue); default
        ``<output stem>.issues.csv`` when ``output`` is given.
    plots : str or path, default=None
        A folder for PNG thumbnails of the worst records of each issue
        (needs matplotlib and an image column).
    checks : sequence of str, default=None
        Among :data:`mmfeat.quality.CHECKS`; default all the inputs allow.
    cv : int, default=5
        Folds of the out-of-fold probabilities.
    pair_threshold : float, default=0.7
        Mismatched-pair score from which a record is reported.
    root : str or path, default=None
        Folder relative paths are resolved against (default: the records
        file's folder).
    confine_to_root : bool, default=False
        Refuse paths that resolve outside ``root``.
    n_jobs : int, default=None
        Parallel work.
    random_state : int, default=0
        Seed of the default model.

    Returns
    -------
    result : dict
        ``report`` (the :class:`~mmfeat.quality.QualityReport`), ``text``
        (its summary), ``output``, ``issues_output``, ``plots`` (paths
        written), ``notes`` and ``seconds``.
    """
    from mmfeat.quality import quality_report
    from mmfeat.scoring import check_output_paths

    t0 = time.perf_counter()
    if not isinstance(columns, dict) or not columns or set(columns) - set(_KINDS):
        raise ParameterError(
            "columns must map some of 'image', 'text', 'audio' to a column; "
            f"got {columns!r}"
        )
    if output is not None and issues_output is None:
        stem, _ = os.path.splitext(os.fspath(output))
        issues_output = stem + ".issues.csv"
    outputs = {"output": output, "issues": issues_output}
    check_output_paths({"records": records, "other": other}, outputs)
    notes = []
    X, y = _read(
        records, columns, label_column, root, confine_to_root, notes, "records"
    )
    X_other = None
    if other is not None:
        X_other, _ = _read(other, columns, None, root, confine_to_root, notes, "other")
    kinds = {col: kind for kind, col in columns.items()}
    report = quality_report(
        X,
        y,
        columns=kinds,
        other=X_other,
        checks=checks,
        cv=cv,
        pair_threshold=pair_threshold,
        n_jobs=n_jobs,
        random_state=random_state,
    )
    written = []
    if output is not None:
        table = X.reset_index(drop=True).join(report.table.drop(columns="row"))
        _write_table(table, output)
        _write_table(report.issues, issues_output)
    if plots is not None:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        os.makedirs(plots, exist_ok=True)
        if any(k == "image" for k in kinds.values()):
            for issue in report.summary().index:
                path = os.path.join(plots, f"{issue}.png")
                fig = report.plot_worst(issue)
                fig.savefig(path, dpi=100)
                plt.close(fig)
                written.append(path)
    return dict(
        report=report,
        text=report.to_text(),
        output=None if output is None else os.fspath(output),
        issues_output=None if issues_output is None else os.fspath(issues_output),
        plots=written,
        notes=notes,
        seconds=time.perf_counter() - t0,
    )
