"""``mmfeat check`` and ``quality_report``: every planted issue found, rows aligned."""

import shutil
import sys

import cv2
import numpy as np
import pandas as pd
import pytest

from mmfeat.cli import main
from mmfeat.exceptions import ParameterError
from mmfeat.quality import quality_report
from tests.scoring._records import make_records

FLIPPED, SWAPPED, DARK, DUPLICATE, MISSING, UNLABELLED = 10, (20, 21), 30, 41, 50, 55


@pytest.fixture(scope="module")
def corrupted(tmp_path_factory):
    """60 striped/checked records with one planted issue of each kind."""
    folder = tmp_path_factory.mktemp("check")
    records = make_records(folder, n=60, seed=5)
    # titles of 3 words out of 4 repeat: make each record's its own
    records["title"] += [f" sku{i} lot{i}" for i in range(len(records))]
    records.loc[FLIPPED, "label"] = "checks"  # a striped record labelled checks
    a, b = SWAPPED  # a striped and a checked record swap photos
    records.loc[[a, b], "image"] = records.loc[[b, a], "image"].to_numpy()
    img = cv2.imread(str(folder / records.loc[DARK, "image"]), cv2.IMREAD_GRAYSCALE)
    cv2.imwrite(str(folder / "images" / "dark.png"), (img // 12).astype(np.uint8))
    records.loc[DARK, "image"] = "images/dark.png"
    # record 41 is record 40 again: the same photo re-encoded, the title recased
    src = cv2.imread(str(folder / records.loc[40, "image"]), cv2.IMREAD_GRAYSCALE)
    cv2.imwrite(
        str(folder / "images" / "copy.jpg"), src, [cv2.IMWRITE_JPEG_QUALITY, 90]
    )
    records.loc[DUPLICATE, ["image", "title", "label"]] = [
        "images/copy.jpg",
        records.loc[40, "title"].upper(),
        records.loc[40, "label"],
    ]
    records.loc[MISSING, "image"] = "images/not-there.png"
    records.loc[UNLABELLED, "label"] = None
    records.to_csv(folder / "records.csv", index=False)
    return folder, records


@pytest.fixture(scope="module")
def checked(corrupted):
    folder, records = corrupted
    import io

    out, err = io.StringIO(), io.StringIO()
    from mmfeat.cli._main import build_parser, run_command

    args = build_parser().parse_args(
        [
            "check",
            str(folder / "records.csv"),
            "--image-col",
            "image",
            "--text-col",
            "title",
            "--label-col",
            "label",
            "--cv",
            "3",
            # 60 records give less confident posteriors than a catalogue
            "--pair-threshold",
            "0.5",
            "-o",
            str(folder / "quality.csv"),
            "--plots",
            str(folder / "plots"),
        ]
    )
    status = run_command(args, out, err)
    return folder, records, status, out.getvalue(), err.getvalue()


def _issues_of(table, row):
    return set(filter(None, table.loc[row, "issues"].split("; ")))


def test_check_finds_every_planted_issue_in_its_row(checked):
    folder, records, status, out, err = checked
    assert status == 0, err
    table = pd.read_csv(folder / "quality.csv", keep_default_na=False)
    # one row per record, in order, next to its own columns
    assert len(table) == len(records)
    assert table["title"].tolist() == records["title"].tolist()
    assert "label" in _issues_of(table, FLIPPED)
    for row in SWAPPED:
        assert "mismatched_pair" in _issues_of(table, row)
    assert "dark" in _issues_of(table, DARK)
    assert "duplicate" in _issues_of(table, DUPLICATE)
    assert "duplicate" in _issues_of(table, 40)
    assert "unreadable" in _issues_of(table, MISSING)
    assert "no_label" in _issues_of(table, UNLABELLED)
    # the suggestion for the flipped label is the truth, and the photo is the
    # suspect of a swapped pair
    assert table.loc[FLIPPED, "suggested_label"] == "stripes"
    assert table.loc[SWAPPED[0], "suspect"] == "image"
    # clean records: few flags (nothing planted there)
    planted = {FLIPPED, *SWAPPED, DARK, 40, DUPLICATE, MISSING, UNLABELLED}
    clean = table.drop(index=list(planted))
    assert (clean["n_issues"] > 0).mean() <= 0.1


def test_check_prints_the_summary_and_writes_the_issue_list_and_plots(checked):
    folder, records, status, out, err = checked
    assert status == 0, err
    assert "60 records checked" in out
    assert "\ndark: 1 records (1.7%)" in out
    assert f"row {FLIPPED}: labelled 'checks', looks like 'stripes'" in out
    issues = pd.read_csv(folder / "quality.issues.csv")
    assert set(issues.loc[issues["issue"] == "label", "row"]) == {FLIPPED}
    assert set(issues.loc[issues["issue"] == "mismatched_pair", "row"]) == set(SWAPPED)
    assert {"row", "issue", "column", "score", "detail"} <= set(issues.columns)
    assert set(issues.loc[issues["issue"] == "dark", "row"]) == {DARK}
    missing = issues[(issues["issue"] == "unreadable")]
    assert MISSING in set(missing["row"])
    assert (folder / "plots" / "dark.png").stat().st_size > 0
    assert (folder / "plots" / "label.png").stat().st_size > 0


def test_check_refuses_to_write_over_its_input(corrupted, tmp_path, capsys):
    folder, _ = corrupted
    shutil.copy(folder / "records.csv", tmp_path / "records.csv")
    before = (tmp_path / "records.csv").read_bytes()
    status = main(
        [
            "check",
            str(tmp_path / "records.csv"),
            "--text-col",
            "title",
            "-o",
            str(tmp_path / "records.csv"),
        ]
    )
    err = capsys.readouterr().err
    assert status == 2
    assert "mmfeat check: error:" in err
    assert (tmp_path / "records.csv").read_bytes() == before


def test_check_confines_paths_and_reports_them_as_unreadable(corrupted, capsys):
    folder, records = corrupted
    outside = records.copy()
    outside.loc[3, "image"] = "/etc/passwd"
    outside.to_csv(folder / "outside.csv", index=False)
    status = main(
        [
            "check",
            str(folder / "outside.csv"),
            "--image-col",
            "image",
            "--checks",
            "images",
            "--confine-to-root",
            "-o",
            str(folder / "outside-quality.csv"),
        ]
    )
    captured = capsys.readouterr()
    assert status == 0, captured.err
    assert "resolve outside the root" in captured.err
    table = pd.read_csv(folder / "outside-quality.csv", keep_default_na=False)
    assert "unreadable" in _issues_of(table, 3)


def test_check_needs_a_modality_column_and_known_checks(corrupted, capsys):
    folder, _ = corrupted
    assert main(["check", str(folder / "records.csv")]) == 2
    assert "--image-col" in capsys.readouterr().err
    status = main(
        [
            "check",
            str(folder / "records.csv"),
            "--text-col",
            "title",
            "--checks",
            "labels",
        ]
    )
    assert status == 2
    assert "needs y" in capsys.readouterr().err


def test_check_without_cleanlab_skips_the_label_check_or_says_what_to_install(
    corrupted, capsys, monkeypatch
):
    folder, _ = corrupted
    monkeypatch.setitem(sys.modules, "cleanlab", None)  # import cleanlab fails
    base = ["check", str(folder / "records.csv"), "--text-col", "title"]
    status = main([*base, "--label-col", "label", "--checks", "labels"])
    assert status == 2
    assert "needs cleanlab" in capsys.readouterr().err
    status = main(
        [*base, "--label-col", "label", "--checks", "duplicates", "--cv", "3"]
    )
    assert status == 0
    X = pd.DataFrame({"title": [f"t{i} {i % 2}" for i in range(40)]})
    report = quality_report(X, np.arange(40) % 2, columns={"title": "text"}, cv=3)
    assert report.label_issues is None
    assert any("mmfeat[quality]" in n for n in report.notes)
    assert "note: the label check was skipped" in report.to_text()


def test_quality_report_api(corrupted):
    folder, records = corrupted
    X = records.copy()
    X["image"] = [str(folder / p) for p in X["image"]]
    report = quality_report(
        X, "label", columns={"image": "image", "title": "text"}, checks=["images"]
    )
    assert report.label_issues is None and report.image_issues is not None
    assert set(report.summary().index) >= {"dark", "unreadable"}
    assert report.worst("dark", 3)["row"].tolist() == [DARK]
    with pytest.raises(ParameterError, match="no record has issue"):
        report.worst("label")
    assert "unreadable" in report.to_text() and "QualityReport(60" in repr(report)
    # thumbnails in colour, padded with white, titled by record
    fig = report.plot_worst("dark", 2)
    thumb = fig.axes[0].images[0].get_array()
    assert thumb.shape == (96, 96, 3) and fig.axes[0].get_title() == f"row {DARK}"
    with pytest.raises(ParameterError, match="must be one of"):
        quality_report(X, columns={"image": "photo"})
    with pytest.raises(ParameterError, match="no column"):
        quality_report(X, columns={"photo": "image"})
    with pytest.raises(ParameterError, match="checks"):
        quality_report(X, columns={"image": "image"}, checks=["spelling"])
