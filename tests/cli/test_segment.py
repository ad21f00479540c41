"""``mmfeat segment`` end to end: a saved segmenter, records, masks and an index."""

import os

import cv2
import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

import mmfeat
from mmfeat.cli import main
from mmfeat.segmentation import PixelFeatures, PixelSegmenter
from mmfeat.workflows import _segment as segment_module
from mmfeat.workflows import segment_file


def _scene(rng, h, w, rgb=False):
    """A bright square on a dark noisy ground, and its mask (1 ground, 2 square)."""
    image = rng.random((h, w)) * 0.3
    mask = np.ones((h, w), dtype=np.uint8)
    r, c = rng.integers(2, h // 3), rng.integers(2, w // 3)
    image[r : r + h // 2, c : c + w // 2] += 0.6
    mask[r : r + h // 2, c : c + w // 2] = 2
    return np.clip(image, 0, 1), mask


def _segmenter(**kwargs):
    return PixelSegmenter(
        features=PixelFeatures(sigmas=(1.0, 2.0), features=("gaussian",), color="grey"),
        classifier=LogisticRegression(max_iter=200),
        n_samples_per_image=300,
        random_state=0,
        **kwargs,
    )


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    """A saved grey segmenter, 9 images as relative paths, one broken, one empty."""
    folder = tmp_path_factory.mktemp("segment")
    rng = np.random.default_rng(0)
    train = [_scene(rng, 24, 28) for _ in range(3)]
    seg = _segmenter().fit([t[0] for t in train], [t[1] for t in train])
    mmfeat.save(seg, folder / "seg.skops")
    data = folder / "data"
    (data / "images").mkdir(parents=True)
    paths = []
    for i in range(9):
        image, _ = _scene(rng, 20 + i, 24)
        cv2.imwrite(str(data / "images" / f"{i}.png"), (image * 255).astype(np.uint8))
        paths.append(f"images/{i}.png")
    (data / "images" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n cut")
    paths[3] = "images/broken.png"  # unreadable
    paths[6] = None  # empty cell
    records = pd.DataFrame({"image": paths, "id": [f"im{i}" for i in range(9)]})
    records.to_csv(folder / "records.csv", index=False)
    return folder, data, seg, paths


def _run(folder, data, out, *extra):
    argv = [
        "segment",
        str(folder / "seg.skops"),
        str(folder / "records.csv"),
        "-o",
        str(out),
        "--root",
        str(data),
        "--chunk-size",
        "4",
        *extra,
    ]
    return main(argv)


def _read_mask(path):
    return cv2.imread(str(path), cv2.IMREAD_UNCHANGED)


def test_segment_writes_masks_equal_to_predict_and_a_row_aligned_index(
    setup, tmp_path, capsys
):
    folder, data, seg, paths = setup
    out = tmp_path / "masks"
    assert _run(folder, data, out) == 0
    printed = capsys.readouterr().out
    assert "segmented 9 records" in printed and "7 with a mask, 2 without" in printed
    index = pd.read_csv(out / "index.csv", keep_default_na=False, dtype={"name": str})
    assert index["row"].tolist() == list(range(9))
    assert index["name"].tolist() == [f"{i:06d}" for i in range(9)]
    assert index.loc[3, "status"] == "error" and index.loc[6, "status"] == "error"
    assert "broken.png" in index.loc[3, "source"] and index.loc[3, "reason"]
    assert "missing" in index.loc[6, "reason"] and index.loc[6, "mask"] == ""
    good = [i for i in range(9) if i not in (3, 6)]
    assert (index.loc[good, "status"] == "ok").all()
    expected = seg.predict([str(data / p) for p in (paths[i] for i in good)])
    for i, want in zip(good, expected):
        got = _read_mask(out / index.loc[i, "mask"])
        assert got.dtype == np.uint8 and got.shape == (20 + i, 24)
        np.testing.assert_array_equal(got, want)  # the row's own image: not shifted
    assert not (out / "000003.png").exists() and not (out / ".parts").exists()
    assert "proba" not in index.columns


def test_segment_proba_maps_sum_to_one_and_name_column(setup, tmp_path):
    folder, data, seg, paths = setup
    out = tmp_path / "p"
    assert _run(folder, data, out, "--proba", "--name-col", "id") == 0
    index = pd.read_csv(out / "index.csv", keep_default_na=False, dtype={"name": str})
    assert (
        index.loc[0, "mask"] == "im0.png" and index.loc[0, "proba"] == "im0.proba.npy"
    )
    maps = np.load(out / "im0.proba.npy")
    assert maps.dtype == np.float32 and maps.shape == (20, 24, 2)
    np.testing.assert_allclose(maps.sum(axis=2), 1.0, atol=1e-5)
    want = seg.predict_proba([str(data / paths[0])])[0]
    np.testing.assert_allclose(maps, want, rtol=1e-6)
    np.testing.assert_array_equal(
        _read_mask(out / "im0.png"), seg.classes_[np.argmax(maps, axis=2)]
    )
    assert index.loc[3, "proba"] == ""


def test_segment_resume_after_a_killed_run_skips_done_rows_same_outputs(
    setup, tmp_path, monkeypatch, capsys
):
    folder, data, _, _ = setup
    full = tmp_path / "full"
    assert _run(folder, data, full, "--proba") == 0
    part = tmp_path / "part"
    real = segment_module._write_bytes
    calls = []

    def dying(path, data_):
        if path.endswith(".png") and len(calls) == 5:
            raise KeyboardInterrupt  # killed after 5 masks (mid second chunk)
        real(path, data_)
        if path.endswith(".png"):
            calls.append(path)

    monkeypatch.setattr(segment_module, "_write_bytes", dying)
    assert _run(folder, data, part, "--proba") == 130
    assert "--resume" in capsys.readouterr().err
    assert not (part / "index.csv").exists()
    monkeypatch.setattr(segment_module, "_write_bytes", real)
    predicted = []
    real_predict = segment_module._predict_rows

    def counting(model, X, on_error):
        predicted.append(len(X))
        return real_predict(model, X, on_error)

    monkeypatch.setattr(segment_module, "_predict_rows", counting)
    assert _run(folder, data, part, "--proba", "--resume") == 0
    # chunk 0 (rows 0-3) is skipped whole, rows 4 and 5 have their masks
    assert "6 already done" in capsys.readouterr().out
    assert sum(predicted) == 3  # rows 6, 7 (its map, not its mask, was written), 8
    names = sorted(os.listdir(full))
    assert sorted(os.listdir(part)) == names
    for name in names:
        if name != "segment.json":
            assert (full / name).read_bytes() == (part / name).read_bytes(), name


def test_segment_resume_refuses_other_settings(setup, tmp_path, capsys):
    folder, data, _, _ = setup
    out = tmp_path / "r"
    assert _run(folder, data, out) == 0
    assert _run(folder, data, out, "--proba", "--resume") == 2
    assert "proba" in capsys.readouterr().err


def test_segment_refuses_a_model_that_is_not_a_segmenter(setup, tmp_path, capsys):
    folder, data, _, _ = setup
    clf = LogisticRegression().fit([[0.0], [1.0]], [0, 1])
    mmfeat.save(clf, tmp_path / "clf.skops")
    status = main(
        [
            "segment",
            str(tmp_path / "clf.skops"),
            str(folder / "records.csv"),
            "-o",
            str(tmp_path / "m"),
        ]
    )
    err = capsys.readouterr().err
    assert status == 2
    assert err.startswith("mmfeat segment: error: ")
    assert "not a segmenter" in err and "mmfeat score" in err


@pytest.mark.parametrize("where", ["records", "model", "records_folder", "root"])
def test_segment_refuses_an_output_dir_that_is_an_input(setup, where, capsys):
    folder, data, _, _ = setup
    out = {
        "records": folder / "records.csv",
        "model": folder / "seg.skops",
        "records_folder": folder,
        "root": data,
    }[where]
    before = sorted(os.listdir(folder))
    assert _run(folder, data, out) == 2
    err = capsys.readouterr().err
    assert "mmfeat segment: error: output folder" in err
    assert sorted(os.listdir(folder)) == before
    assert (folder / "records.csv").read_text().startswith("image,id")


def test_segment_refuses_a_folder_of_other_files(setup, tmp_path, capsys):
    folder, data, _, _ = setup
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "mine.txt").write_text("keep")
    assert _run(folder, data, busy) == 2
    assert "not from an earlier mmfeat segment run" in capsys.readouterr().err
    assert os.listdir(busy) == ["mine.txt"]


def test_segment_file_inputs_inside_the_output_folder_are_row_errors(tmp_path):
    rng = np.random.default_rng(1)
    train = [_scene(rng, 20, 20) for _ in range(2)]
    seg = _segmenter().fit([t[0] for t in train], [t[1] for t in train])
    out = tmp_path / "out"
    out.mkdir()
    (out / "segment.json").write_text("{}")  # an earlier run's folder
    image, _ = _scene(rng, 20, 20)
    cv2.imwrite(str(out / "x.png"), (image * 255).astype(np.uint8))
    cv2.imwrite(str(tmp_path / "y.png"), (image * 255).astype(np.uint8))
    pd.DataFrame({"image": ["out/x.png", "y.png"]}).to_csv(
        tmp_path / "r.csv", index=False
    )
    summary = segment_file(seg, tmp_path / "r.csv", out)
    index = pd.read_csv(summary["index"], keep_default_na=False)
    assert index["status"].tolist() == ["error", "ok"]
    assert "inside the output folder" in index.loc[0, "reason"]
    assert summary["ok"] == 1 and summary["errors"] == 1
    with pytest.raises(mmfeat.InputError, match="inside the output folder") as info:
        segment_file(seg, tmp_path / "r.csv", out, on_error="raise")
    assert info.value.row == 0


def test_segment_file_multimodal_columns_and_duplicate_names(tmp_path):
    rng = np.random.default_rng(2)
    rows = []
    for i in range(4):
        image, mask = _scene(rng, 18, 20)
        depth = (mask.astype(np.float32) * 3.0 + rng.random(mask.shape)).astype(
            np.float32
        )
        cv2.imwrite(str(tmp_path / f"i{i}.png"), (image * 255).astype(np.uint8))
        np.save(tmp_path / f"d{i}.npy", depth)
        rows.append((f"i{i}.png", f"d{i}.npy", mask))
    feats = PixelFeatures(sigmas=(1.0,), features=("gaussian",), color="grey")
    raw = PixelFeatures(sigmas=(1.0,), features=("gaussian",), color="raw")
    seg = PixelSegmenter(
        features=[("image", feats, "photo"), ("depth", raw, "disp")],
        classifier=LogisticRegression(max_iter=200),
        n_samples_per_image=200,
        random_state=0,
    )
    X = pd.DataFrame(
        {
            "photo": [str(tmp_path / r[0]) for r in rows[:3]],
            "disp": [str(tmp_path / r[1]) for r in rows[:3]],
        }
    )
    seg.fit(X, [r[2] for r in rows[:3]])
    pd.DataFrame(
        {
            "rgb": [r[0] for r in rows],
            "disp": [r[1] for r in rows[:3]] + ["missing.npy"],
            "key": ["a", "b", "a", "c"],
        }
    ).to_csv(tmp_path / "r.csv", index=False)
    out = tmp_path / "masks"
    with pytest.raises(mmfeat.InputError, match="no column 'photo'"):
        segment_file(seg, tmp_path / "r.csv", out)
    summary = segment_file(
        seg, tmp_path / "r.csv", out, columns={"image": "rgb"}, name_column="key"
    )
    index = pd.read_csv(summary["index"], keep_default_na=False)
    assert index["status"].tolist() == ["ok", "ok", "error", "ok"]
    assert "already used by row 0" in index.loc[2, "reason"]
    assert index.loc[0, "source"] == "image=i0.png;depth=d0.npy"
    # row 3 lost its depth map: segmented from the photo, the loss noted
    assert "depth" in index.loc[3, "reason"] and index.loc[3, "mask"] == "c.png"
    want = seg.predict(
        pd.DataFrame(
            {"photo": [str(tmp_path / "i1.png")], "disp": [str(tmp_path / "d1.npy")]}
        )
    )[0]
    np.testing.assert_array_equal(_read_mask(out / "b.png"), want)
    with pytest.raises(mmfeat.ParameterError, match="unknown modalities"):
        segment_file(seg, tmp_path / "r.csv", out, columns={"colour": "rgb"})


def test_a_fresh_run_into_an_earlier_runs_folder_leaves_no_stale_mask(setup, tmp_path):
    folder, data, seg, paths = setup
    out = tmp_path / "again"
    assert _run(folder, data, out) == 0
    assert (out / "000000.png").exists()
    # the first image is broken now: the rerun must not keep its old mask
    records = pd.DataFrame({"image": ["images/broken.png"] + paths[1:]})
    records.to_csv(tmp_path / "records.csv", index=False)
    (tmp_path / "notes.png").write_bytes(b"not ours")  # beside, not inside
    argv = ["segment", str(folder / "seg.skops"), str(tmp_path / "records.csv")]
    assert main([*argv, "-o", str(out), "--root", str(data)]) == 0
    index = pd.read_csv(out / "index.csv", keep_default_na=False, dtype={"name": str})
    assert index.loc[0, "status"] == "error"
    assert not (out / "000000.png").exists()
    assert (out / "000001.png").exists() and (tmp_path / "notes.png").exists()
