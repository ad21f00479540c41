"""The bad-record corpus of the ``mmfeat score`` reliability tests is grounded.

Every expectation of ``tests/cli/_corpus.py`` (which cells are bad, which
are missing, which rows stay scorable) is checked here against what the
real readers do with the corpus: ``HOGExtractor`` for the image column,
``TfidfExtractor`` for the titles and ``AudioReader`` for the clips.
"""

import os
import time

import numpy as np
import pandas as pd
import pytest

from mmfeat import collect_item_errors
from mmfeat.features.image import HOGExtractor
from mmfeat.features.text import TfidfExtractor
from mmfeat.io import AudioReader
from tests.cli._corpus import (
    drop_column,
    make_corpus,
    restrict_expected,
    write_empty_csv,
    write_header_only_csv,
)


@pytest.fixture(scope="module")
def good_inputs(data_home):
    fashion = data_home / "fashion_products_sample"
    labels = pd.read_csv(fashion / "labels.csv").head(6)
    images = [fashion / f for f in labels["image_file"]]
    titles = labels["productDisplayName"].tolist()
    audio = sorted((data_home / "fsdd" / "recordings").glob("*_george_*.wav"))[:4]
    assert len(images) == 6 and len(audio) == 4
    return images, titles, audio


def _build(root, good_inputs, with_audio):
    images, titles, audio = good_inputs
    start = time.perf_counter()
    records, expected = make_corpus(
        root,
        good_images=images,
        good_titles=titles,
        good_audio=audio if with_audio else None,
    )
    return records, expected, time.perf_counter() - start


@pytest.fixture(scope="module", params=[False, True], ids=["no_audio", "audio"])
def corpus(request, tmp_path_factory, good_inputs):
    root = tmp_path_factory.mktemp("corpus")
    records, expected, seconds = _build(root, good_inputs, request.param)
    return root, records, expected, seconds


def _resolve(root, cell):
    """A path cell as the scorer resolves it: relative to the CSV's folder."""
    if not isinstance(cell, str):
        return cell  # missing value
    return cell if os.path.isabs(cell) else str(root / cell)


def _observe(root, records):
    """Per modality column: {row: reason} of errors and the set of missing rows."""
    observed = {}
    paths = [_resolve(root, c) for c in records["image"]]
    hog = HOGExtractor(image_size=(64, 64), on_error="missing")
    with collect_item_errors() as errors:
        out = hog.fit().transform(paths)
    observed["image"] = (
        {e.row: e.reason for e in errors},
        {i for i in np.flatnonzero(np.isnan(out).all(1))},
        np.isfinite(out).all(1),
    )
    tfidf = TfidfExtractor(on_error="missing")
    with collect_item_errors() as errors:
        out = tfidf.fit_transform(records["title"]).toarray()
    observed["title"] = (
        {e.row: e.reason for e in errors},
        {i for i in np.flatnonzero(np.isnan(out).all(1))},
        np.isfinite(out).all(1),
    )
    if "audio" in records:
        reader = AudioReader(on_error="missing")
        with collect_item_errors() as errors:
            clips = reader.fit_transform([_resolve(root, c) for c in records["audio"]])
        none = {i for i, c in enumerate(clips) if c is None}
        observed["audio"] = (
            {e.row: e.reason for e in errors},
            none,
            np.array([c is not None for c in clips]),
        )
    return observed


def _mismatches(expected, observed):
    """Every way the readers' behaviour differs from ``expected``, as strings."""
    problems = []
    kinds = expected["kind"].tolist()
    for col, (errors, nan_rows, usable) in observed.items():
        want_bad = {
            i: dict(zip(b, r))[col]
            for i, (b, r) in enumerate(
                zip(expected["bad_columns"], expected["reasons"])
            )
            if col in b
        }
        want_missing = {
            i for i, m in enumerate(expected["missing_columns"]) if col in m
        }
        for i in sorted(set(errors) ^ set(want_bad)):
            problems.append(
                f"{col} row {i} ({kinds[i]}): expected "
                f"{'bad' if i in want_bad else 'not bad'}, reader says "
                f"{errors.get(i, 'no error')!r}"
            )
        for i in sorted(set(errors) & set(want_bad)):
            reason = errors[i]
            if not (isinstance(reason, str) and reason.strip()):
                problems.append(f"{col} row {i} ({kinds[i]}): empty reason")
            elif want_bad[i] not in reason:
                problems.append(
                    f"{col} row {i} ({kinds[i]}): reason {reason!r} lacks "
                    f"{want_bad[i]!r}"
                )
        for i in sorted((nan_rows - set(errors)) ^ want_missing):
            problems.append(
                f"{col} row {i} ({kinds[i]}): expected "
                f"{'missing' if i in want_missing else 'present'}"
            )
        for i in np.flatnonzero(~usable):
            if i not in errors and i not in nan_rows:
                problems.append(f"{col} row {i} ({kinds[i]}): partly NaN features")
    usable_any = np.any([u for _, _, u in observed.values()], axis=0)
    for i, (want, got) in enumerate(zip(expected["scorable"], usable_any)):
        if bool(want) != bool(got):
            problems.append(f"row {i} ({kinds[i]}): scorable {want}, readers {got}")
    return problems


@pytest.fixture(scope="module")
def observed(corpus):
    root, records, _, _ = corpus
    return _observe(root, records)


def test_corpus_table_shape(corpus):
    root, records, expected, seconds = corpus
    with_audio = "audio" in records
    assert list(records.columns) == ["id", "image", "title"] + (
        ["audio"] if with_audio else []
    )
    assert list(expected.columns) == [
        "id",
        "kind",
        "bad_columns",
        "missing_columns",
        "reasons",
        "scorable",
    ]
    assert records["id"].is_unique and list(records["id"]) == list(expected["id"])
    pd.testing.assert_frame_equal(records, pd.read_csv(root / "records.csv"))
    # a scorer reading the CSV gets only strings or missing values
    for col in records.columns[1:]:
        assert all(isinstance(v, str) or pd.isna(v) for v in records[col]), col
    bad = expected[
        expected["bad_columns"].map(len).astype(bool) | ~expected["scorable"]
    ]
    assert bad["kind"].nunique() >= 30 + (8 if with_audio else 0)
    assert (expected["kind"] == "good").sum() == 10
    good_rows = np.flatnonzero(expected["kind"] == "good")
    assert good_rows[0] == 0 and np.diff(good_rows).max() <= 12  # interleaved
    unscorable = {"image_bad_title_missing", "image_bad_title_whitespace"}
    unscorable |= {"all_missing"} | ({"all_bad"} if with_audio else set())
    assert set(expected.loc[~expected["scorable"], "kind"]) == unscorable
    assert (~expected["scorable"]).sum() == len(unscorable)
    assert seconds < 2, f"corpus took {seconds:.2f} s to build"


def test_expectations_match_the_readers(corpus, observed):
    _, _, expected, _ = corpus
    problems = _mismatches(expected, observed)
    assert not problems, "\n".join(problems)


def test_every_error_reason_is_a_nonempty_string(observed):
    reasons = [r for errors, _, _ in observed.values() for r in errors.values()]
    assert reasons and all(isinstance(r, str) and r.strip() for r in reasons)


def test_a_wrong_expectation_is_caught(corpus, observed):
    _, _, expected, _ = corpus
    tampered = expected.copy()
    good = int(np.flatnonzero(tampered["kind"] == "image_cmyk_jpeg")[0])
    bomb = int(np.flatnonzero(tampered["kind"] == "image_png_bomb")[0])
    tampered.at[good, "bad_columns"] = ("image",)
    tampered.at[good, "reasons"] = ("cannot decode",)
    tampered.at[bomb, "reasons"] = ("truncated PNG",)  # bad, for another reason
    tampered.at[0, "scorable"] = False
    problems = _mismatches(tampered, observed)
    assert len(problems) == 3, problems
    assert any("image_cmyk_jpeg" in p for p in problems)
    assert any("image_png_bomb" in p and "lacks" in p for p in problems)


def test_a_python_number_title_is_refused_in_memory_but_not_via_csv(corpus):
    # "42" in the CSV reads back as a string; an int in a DataFrame is an error
    _, records, expected, _ = corpus
    row = int(np.flatnonzero(expected["kind"] == "title_number")[0])
    assert records["title"][row] == "42"
    # the 2 MB title only slows this check down
    titles = records["title"].where(expected["kind"] != "title_long_2mb")
    with collect_item_errors() as errors:
        tfidf = TfidfExtractor(on_error="missing").fit(titles)
    assert list(errors) == []
    titles = titles.astype(object).tolist()
    titles[row] = 42
    with collect_item_errors() as errors:
        tfidf.transform(titles)
    assert [e.row for e in errors] == [row]


def test_restrict_expected_to_the_model_columns(corpus):
    _, records, expected, _ = corpus
    if "audio" not in records:
        pytest.skip("the audio corpus only")
    image_text = restrict_expected(expected, ["image", "title"])
    kinds = image_text.set_index("kind")
    assert kinds.loc["audio_only", "scorable"] == np.False_
    assert kinds.loc["audio_truncated", "bad_columns"] == ()
    assert kinds.loc["all_bad", "bad_columns"] == ("image",)
    assert kinds.loc["all_bad", "reasons"] == ("truncated JPEG",)
    assert restrict_expected(expected, ["image", "title", "audio"]).equals(expected)


def test_table_level_helpers(tmp_path, corpus):
    _, records, _, _ = corpus
    empty = write_empty_csv(tmp_path / "empty.csv")
    assert empty.stat().st_size == 0
    with pytest.raises(pd.errors.EmptyDataError):
        pd.read_csv(empty)
    header = write_header_only_csv(tmp_path / "header.csv", records.columns)
    back = pd.read_csv(header)
    assert list(back.columns) == list(records.columns) and len(back) == 0
    no_title = drop_column(records, "title")
    assert "title" not in no_title and "title" in records
    with pytest.raises(KeyError, match="no column"):
        drop_column(records, "label")
