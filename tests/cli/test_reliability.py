"""Reliability of ``mmfeat score``: bad records, bad tables, SIGKILL + resume.

A model fitted with ``mmfeat fit`` on real product photos and titles (and
spoken-digit recordings as a third, audio, column) scores the bad-record
corpus (``_corpus.py``) in a separate process: no crash, every bad row listed
with its reason, every good row scored, the row count kept.
"""

import os
import signal
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pytest

from mmfeat.cli import main
from tests.cli._corpus import (
    drop_column,
    make_corpus,
    write_empty_csv,
    write_header_only_csv,
)

# every test here scores through `mmfeat score` child processes, after fitting
# a model on real photos, titles and recordings (~40 s, and the SIGKILL run)
pytestmark = pytest.mark.slow


def _mmfeat(*args, timeout=600):
    return subprocess.run(
        [sys.executable, "-m", "mmfeat", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.fixture(scope="module")
def setup(data_home, tmp_path_factory):
    root = tmp_path_factory.mktemp("reliability")
    fashion = data_home / "fashion_products_sample"
    labels = pd.read_csv(fashion / "labels.csv")
    kinds = ["Tshirts", "Watches", "Casual Shoes", "Handbags"]
    train = (
        labels[labels["articleType"].isin(kinds)]
        .groupby("articleType")
        .head(30)
        .reset_index(drop=True)
    )
    clips = sorted((data_home / "fsdd" / "recordings").glob("*_jackson_*.wav"))
    train = pd.DataFrame(
        {
            "image": [str(fashion / p) for p in train["image_file"]],
            "title": train["productDisplayName"],
            "audio": [str(clips[i % len(clips)]) for i in range(len(train))],
            "label": train["articleType"],
        }
    )
    train.to_csv(root / "train.csv", index=False)
    model = root / "model.skops"
    assert (
        main(
            [
                "fit",
                "--data",
                str(root / "train.csv"),
                "--image-col",
                "image",
                "--text-col",
                "title",
                "--audio-col",
                "audio",
                "--label-col",
                "label",
                "--image-features",
                "hog",
                "--test-size",
                "0",
                "-o",
                str(model),
            ]
        )
        == 0
    )
    corpus_dir = root / "corpus"
    corpus_dir.mkdir()
    good = labels.head(6)
    records, expected = make_corpus(
        corpus_dir,
        good_images=[fashion / p for p in good["image_file"]],
        good_titles=good["productDisplayName"].tolist(),
        good_audio=clips[:4],
    )
    # mmfeat reads text cells as they are: only an empty cell is missing, so
    # a title "None" is a title (pandas' default would make it NaN)
    raw = pd.read_csv(corpus_dir / "records.csv", keep_default_na=False, na_values=[""])
    for i, row in expected.iterrows():
        cell = raw.loc[i, "title"]
        if "title" in row["missing_columns"] and isinstance(cell, str) and cell.strip():
            expected.at[i, "missing_columns"] = tuple(
                c for c in row["missing_columns"] if c != "title"
            )
            expected.at[i, "scorable"] = True
    return root, model, corpus_dir, records, expected


def test_corpus_scores_without_crash_and_reports_every_bad_row(setup):
    root, model, corpus_dir, records, expected = setup
    assert expected["kind"].nunique() >= 40
    out, errors = root / "corpus_pred.parquet", root / "corpus_errors.csv"
    proc = _mmfeat(
        "score",
        model,
        corpus_dir / "records.csv",
        "-o",
        out,
        "--errors",
        errors,
        "--id-col",
        "id",
        "--chunk-size",
        "16",
        "--on-error",
        "missing",
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    pred = pd.read_parquet(out)
    report = pd.read_csv(errors, keep_default_na=False)
    assert pred["id"].tolist() == records["id"].astype(str).tolist()
    problems = []
    for _, row in expected.iterrows():
        got = report[report["id"] == row["id"]]
        scored = pred.loc[pred["id"] == row["id"], "predict"].notna().item()
        if scored != row["scorable"]:
            problems.append(f"{row['kind']}: scored={scored}")
        for col, reason in zip(row["bad_columns"], row["reasons"]):
            hits = got[
                (got["column"] == col) & got["reason"].str.contains(reason, regex=False)
            ]
            if hits.empty:
                problems.append(f"{row['kind']}: {col} not reported ({reason!r})")
        unexpected = got[~got["column"].isin(list(row["bad_columns"]) + ["*"])]
        if not unexpected.empty:
            problems.append(
                f"{row['kind']}: unexpected {unexpected.to_dict('records')}"
            )
        if not row["scorable"] and not (got["column"] == "*").any():
            problems.append(f"{row['kind']}: unscored but not reported")
    assert not problems, "\n".join(problems)
    probs = pred.filter(like="proba_")
    np.testing.assert_allclose(probs[pred["predict"].notna()].sum(axis=1), 1.0)
    assert (report["reason"].str.len() > 0).all()


def test_table_level_problems(setup, tmp_path):
    root, model, corpus_dir, records, _ = setup
    # an empty file, and a header alone: zero rows out, no crash
    for name, path in [
        ("empty", write_empty_csv(tmp_path / "empty.csv")),
        (
            "header",
            write_header_only_csv(
                tmp_path / "header.csv", ["id", "image", "title", "audio"]
            ),
        ),
    ]:
        out = tmp_path / f"{name}.out.csv"  # never the input itself
        proc = _mmfeat("score", model, path, "-o", out)
        assert proc.returncode == 0, proc.stderr
        assert len(pd.read_csv(out)) == 0
    # a missing column: every row reported for it, scored from the others
    table = drop_column(records, "title")
    table.to_csv(corpus_dir / "no_title.csv", index=False)
    out = tmp_path / "no_title.parquet"
    proc = _mmfeat(
        "score", model, corpus_dir / "no_title.csv", "-o", out, "--id-col", "id"
    )
    assert proc.returncode == 0, proc.stderr
    report = pd.read_csv(tmp_path / "no_title.errors.csv")
    title = report[report["column"] == "title"]
    assert len(title) == len(records)
    assert (title["reason"] == "column 'title' is not in the input").all()
    assert len(pd.read_parquet(out)) == len(records)
    # a label column with labels the model never saw is ignored at scoring
    labelled = records.assign(label="Spacesuits")
    labelled.to_csv(corpus_dir / "labelled.csv", index=False)
    proc = _mmfeat(
        "score",
        model,
        corpus_dir / "labelled.csv",
        "-o",
        tmp_path / "labelled.parquet",
        "--id-col",
        "id",
    )
    assert proc.returncode == 0, proc.stderr
    # numbers where text should be (a Parquet column of ints): reported
    numeric = records.head(8).copy()
    numeric["title"] = np.arange(8)
    numeric.to_parquet(corpus_dir / "numeric.parquet")
    proc = _mmfeat(
        "score", model, corpus_dir / "numeric.parquet", "-o", tmp_path / "numeric.csv"
    )
    assert proc.returncode == 0, proc.stderr
    report = pd.read_csv(tmp_path / "numeric.errors.csv")
    assert set(report.loc[report["column"] == "title", "row"]) == set(range(8))
    assert report["reason"].str.contains("expected a text").any()


def test_sigkill_then_resume_gives_the_uninterrupted_output(setup, tmp_path):
    root, model, corpus_dir, records, _ = setup
    big = pd.concat([records] * 6, ignore_index=True)
    big["id"] = [f"{i:05d}" for i in range(len(big))]
    big.to_csv(corpus_dir / "big.csv", index=False)
    args = [model, corpus_dir / "big.csv", "--id-col", "id", "--chunk-size", "8"]
    full = tmp_path / "full.csv"
    assert _mmfeat("score", *args, "-o", full).returncode == 0
    out = tmp_path / "killed.csv"
    parts = tmp_path / "killed.csv.parts"
    proc = subprocess.Popen(
        [sys.executable, "-m", "mmfeat", "score", *map(str, args), "-o", str(out)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        done = (
            len([p for p in os.listdir(parts) if p.startswith("part-")])
            if parts.is_dir()
            else 0
        )
        if done >= 5 or proc.poll() is not None:
            break
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, "finished before it could be killed"
    assert not out.exists() and parts.is_dir()
    resumed = _mmfeat("score", *args, "-o", out, "--resume")
    assert resumed.returncode == 0, resumed.stderr
    assert "resumed after" in resumed.stdout
    assert out.read_bytes() == full.read_bytes()
    assert (tmp_path / "killed.errors.csv").read_bytes() == (
        tmp_path / "full.errors.csv"
    ).read_bytes()
    assert not parts.exists()
