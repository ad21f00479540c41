"""``mmfeat score``: a progress bar of records; rates with and without start-up."""

import re
import subprocess
import sys

import pytest

import mmfeat
from mmfeat.cli import main
from tests.scoring._records import absolute, make_records
from tests.scoring.conftest import build


@pytest.fixture(scope="module")
def multiline(tmp_path_factory):
    """Records whose titles each span three lines, and a model file."""
    work = tmp_path_factory.mktemp("progress")
    records = make_records(work, n=40, seed=4)
    model = build("late").fit(
        absolute(records, work)[["image", "title"]], records["label"]
    )
    path = mmfeat.save(model, work / "model.skops")
    table = records.copy()
    table["title"] = table["title"] + '\nsecond "line"\nthird'
    table.to_csv(work / "records.csv", index=False)
    assert (work / "records.csv").read_text().count("\n") == 3 * len(table) + 1
    return work, path, len(table)


def test_progress_bar_counts_records_not_lines(multiline, capsys):
    work, path, n = multiline
    status = main(
        ["score", str(path), str(work / "records.csv"), "-o", str(work / "p.csv")]
        + ["--progress", "--chunk-size", "16"]
    )
    said = capsys.readouterr()
    assert status == 0, said.err
    bars = said.err.replace("\r", "\n").splitlines()
    last = [b for b in bars if b.startswith("scoring")][-1]
    assert "100%" in last and f"{n}.0/{n}.0" in last, last
    assert not any(f"/{3 * n}" in b for b in bars)


def _rates(out, n):
    found = re.search(
        rf"scored {n} records in ([\d.]+) s \((\d+) rows/s; (\d+) rows/s with the "
        r"([\d.]+) s start-up\)",
        out,
    )
    assert found is not None, out
    scoring, fast, slow, startup = map(float, found.groups())
    assert slow <= fast + 1  # (both rounded)
    assert n / fast == pytest.approx(scoring, abs=0.1 + 0.05 * scoring)
    return startup


def test_rates_with_and_without_start_up_are_printed(multiline, capsys):
    work, path, n = multiline
    argv = ["score", str(path), str(work / "records.csv"), "-o", str(work / "q.csv")]
    assert main(argv + ["--no-progress"]) == 0
    _rates(capsys.readouterr().out, n)  # from main(): loading the model only
    # as a program, the interpreter's start and the imports count too
    proc = subprocess.run(
        [sys.executable, "-m", "mmfeat", *argv, "--no-progress"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    assert _rates(proc.stdout, n) > 0.3
