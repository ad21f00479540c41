"""``mmfeat caption`` end to end: a saved captioner, a records file, captions out."""

import cv2
import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

import mmfeat
from mmfeat.cli import main
from mmfeat.generation import AttributeCaptioner, NearestNeighborCaptioner
from mmfeat.workflows import caption_file

_COLOURS = {"red": (0, 0, 220), "blue": (220, 0, 0), "green": (0, 200, 0)}


def _photo(colour, i):
    img = np.full((48, 40, 3), 245, np.uint8)
    img[8 + i % 5 : 40, 6 : 34 - i % 4] = _COLOURS[colour]
    return img


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    """Saved captioners (fitted on a column), 9 records: one broken, one empty."""
    folder = tmp_path_factory.mktemp("caption")
    (folder / "images").mkdir()
    train, titles = [], []
    for i in range(18):
        colour = list(_COLOURS)[i % 3]
        cv2.imwrite(str(folder / "images" / f"t{i}.png"), _photo(colour, i))
        train.append(str(folder / "images" / f"t{i}.png"))
        titles.append(f"brand{i % 2} {colour} shirt")
    table = pd.DataFrame({"image": train, "colour": [t.split()[1] for t in titles]})
    nn = NearestNeighborCaptioner(n_neighbors=4, on_error="missing")
    nn.fit(table[["image"]], titles)
    mmfeat.save(nn, folder / "nn.skops")
    attr = AttributeCaptioner(
        "a {colour} shirt", classifier=LogisticRegression(max_iter=500)
    ).fit(table[["image"]], table[["colour"]])
    mmfeat.save(attr, folder / "attr.skops")
    paths, colours = [], []
    for i in range(9):
        colour = list(_COLOURS)[(i + 1) % 3]
        cv2.imwrite(str(folder / "images" / f"q{i}.png"), _photo(colour, i + 2))
        paths.append(f"images/q{i}.png")
        colours.append(colour)
    (folder / "images" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n cut")
    paths[3] = "images/broken.png"
    paths[6] = None
    records = pd.DataFrame({"image": paths, "id": [f"p{i}" for i in range(9)]})
    records.to_csv(folder / "records.csv", index=False)
    return folder, nn, attr, paths, colours


def _run(folder, model, out, *extra):
    return main(
        [
            "caption",
            str(folder / model),
            str(folder / "records.csv"),
            "-o",
            str(out),
            "--chunk-size",
            "4",
            *extra,
        ]
    )


def test_caption_writes_one_row_per_record_in_order(setup, tmp_path, capsys):
    folder, nn, _, paths, colours = setup
    out = tmp_path / "titles.csv"
    assert _run(folder, "nn.skops", out, "--id-col", "id") == 0
    printed = capsys.readouterr().out
    assert "captioned 9 records" in printed and "7 with a caption, 2 without" in printed
    got = pd.read_csv(out, keep_default_na=False)
    assert got.columns.tolist() == ["id", "caption"]
    assert got["id"].tolist() == [f"p{i}" for i in range(9)]
    good = [i for i in range(9) if i not in (3, 6)]
    want = nn.predict(pd.DataFrame({"image": [str(folder / paths[i]) for i in good]}))
    assert got.loc[good, "caption"].tolist() == want.tolist()
    # the photo's own colour: rows are not shifted past the bad ones
    assert all(colours[i] in got.loc[i, "caption"] for i in good)
    assert got.loc[3, "caption"] == "" and got.loc[6, "caption"] == ""
    errors = pd.read_csv(tmp_path / "titles.errors.csv")
    assert sorted(set(errors["row"])) == [3, 6]
    assert errors["source"].str.contains("broken.png").any()


def test_caption_parquet_with_workers_and_an_attribute_model(setup, tmp_path):
    folder, _, attr, _, colours = setup
    one, two = tmp_path / "one.parquet", tmp_path / "two.parquet"
    assert _run(folder, "attr.skops", one) == 0
    assert _run(folder, "attr.skops", two, "--n-jobs", "2") == 0
    a, b = pd.read_parquet(one), pd.read_parquet(two)
    pd.testing.assert_frame_equal(a, b)
    assert a["row"].tolist() == list(range(9))
    assert a["caption"].isna().tolist() == [i in (3, 6) for i in range(9)]
    assert a.loc[0, "caption"] == f"a {colours[0]} shirt"


def test_caption_resume_continues_the_same_run(setup, tmp_path):
    folder, *_ = setup
    out = tmp_path / "r.csv"
    assert _run(folder, "nn.skops", out) == 0
    first = out.read_text()
    assert _run(folder, "nn.skops", out, "--resume") == 0
    assert out.read_text() == first


def test_caption_refuses_classifiers_list_fitted_models_and_its_own_inputs(
    setup, tmp_path, capsys
):
    folder, *_ = setup
    clf = LogisticRegression().fit(np.eye(2), [0, 1])
    mmfeat.save(clf, tmp_path / "clf.skops")
    listed = NearestNeighborCaptioner("passthrough").fit(np.eye(3), ["a", "b", "c"])
    mmfeat.save(listed, tmp_path / "listed.skops")
    for model, why in [
        (tmp_path / "clf.skops", "not a captioner"),
        (tmp_path / "listed.skops", "fitted on a plain list"),
    ]:
        argv = ["caption", str(model), str(folder / "records.csv"), "-o"]
        assert main([*argv, str(tmp_path / "o.csv")]) == 2
        assert why in capsys.readouterr().err
    assert _run(folder, "nn.skops", folder / "nn.skops") == 2
    assert "replace the model" in capsys.readouterr().err
    assert mmfeat.load(folder / "nn.skops") is not None  # left as it was


def test_caption_file_from_python(setup, tmp_path):
    folder, nn, *_ = setup
    summary = caption_file(nn, folder / "records.csv", tmp_path / "c.csv", chunk_size=3)
    assert summary["rows"] == 9 and summary["scored"] == 7


def test_caption_and_info_on_slots_of_different_sizes(setup, tmp_path, capsys):
    folder, *_ = setup
    table = pd.read_csv(folder / "records.csv")
    train = pd.DataFrame(
        {"image": [str(folder / "images" / f"t{i}.png") for i in range(18)]}
    )
    attrs = pd.DataFrame(
        {
            "colour": [list(_COLOURS)[i % 3] for i in range(18)],
            "fit": ["slim", "loose"] * 9,
        }
    )
    model = AttributeCaptioner(
        "{fit} {colour} shirt", classifier=LogisticRegression(max_iter=500)
    ).fit(train, attrs)
    mmfeat.save(model, tmp_path / "two.skops")
    out = tmp_path / "two.csv"
    argv = ["caption", str(tmp_path / "two.skops"), str(folder / "records.csv")]
    assert main([*argv, "-o", str(out), "--root", str(folder)]) == 0
    got = pd.read_csv(out, keep_default_na=False)
    assert len(got) == len(table) and got.loc[0, "caption"].endswith(" shirt")
    assert main(["info", str(tmp_path / "two.skops")]) == 0
    assert "AttributeCaptioner" in capsys.readouterr().out
