"""ImageQuality scores against references, and find_image_issues."""

import pickle
import struct
import zlib

import cv2
import joblib
import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone

from mmfeat.exceptions import InputError, ParameterError
from mmfeat.features.image import QUALITY_SCORES, ImageQuality
from mmfeat.quality import IMAGE_ISSUES, find_image_issues


def _photo(rng, h=120, w=160):
    """A textured, colourful synthetic "photo": smooth shapes plus fine noise."""
    yy, xx = np.mgrid[0:h, 0:w]
    img = np.zeros((h, w, 3), np.float32)
    img[..., 0] = 128 + 90 * np.sin(xx / 7.0)
    img[..., 1] = 128 + 90 * np.cos(yy / 5.0)
    img[..., 2] = 128 + 60 * np.sin((xx + yy) / 9.0)
    for _ in range(12):
        cy, cx, r = rng.integers(0, h), rng.integers(0, w), rng.integers(4, 20)
        img[(yy - cy) ** 2 + (xx - cx) ** 2 < r * r] = rng.integers(0, 256, 3)
    img += rng.normal(0, 12, img.shape)
    return np.clip(img, 0, 255).astype(np.uint8)


def _jpeg(img):
    ok, buf = cv2.imencode(".jpg", np.ascontiguousarray(img[..., ::-1]))
    assert ok
    return buf.tobytes()


def _scores(images, **params):
    return ImageQuality(**params).set_output(transform="pandas").fit_transform(images)


# --------------------------------------------------------------------------
# kernel against references
# --------------------------------------------------------------------------
@pytest.mark.parametrize("shape", [(37, 53), (1, 7), (9, 1), (2, 2), (64, 64)])
def test_image_quality_scores_match_references(shape):
    rng = np.random.default_rng(sum(shape))
    img = rng.integers(0, 256, shape + (3,), dtype=np.uint8)
    got = _scores([img], working_size=None).iloc[0]
    grey = cv2.cvtColor(img, cv2.COLOR_RGB2GRAY)
    lap = cv2.Laplacian(grey, cv2.CV_64F)
    gx = cv2.Sobel(grey, cv2.CV_64F, 1, 0)
    gy = cv2.Sobel(grey, cv2.CV_64F, 0, 1)
    y = grey.astype(np.float64) / 255
    counts = np.bincount(grey.ravel(), minlength=256) / grey.size
    counts = counts[counts > 0]
    rgb = img.astype(np.float64)
    rg = rgb[..., 0] - rgb[..., 1]
    yb = 0.5 * (rgb[..., 0] + rgb[..., 1]) - rgb[..., 2]
    colourful = np.hypot(rg.std(), yb.std()) + 0.3 * np.hypot(rg.mean(), yb.mean())
    q = np.quantile(y, [0.01, 0.05, 0.95, 0.99], method="inverted_cdf")
    g2 = (gx**2 + gy**2).mean()
    want = {
        "sharpness": lap.var() / 255**2,
        "edge_sharpness": lap.var() / g2 if g2 > 0 else 0.0,
        "brightness": y.mean(),
        "contrast": y.std(),
        "luma_p01": q[0],
        "luma_p05": q[1],
        "luma_p95": q[2],
        "luma_p99": q[3],
        "dark_fraction": (grey <= 25).mean(),
        "light_fraction": (grey >= 230).mean(),
        "colourfulness": colourful,
        "entropy": -(counts * np.log2(counts)).sum(),
        "height": shape[0],
        "width": shape[1],
        "aspect": shape[1] / shape[0],
    }
    assert list(got.index) == list(QUALITY_SCORES)
    for name, value in want.items():
        assert got[name] == pytest.approx(value, rel=1e-9, abs=1e-9), name


def test_image_quality_working_size_bounds_the_work_not_the_size():
    rng = np.random.default_rng(0)
    big = cv2.resize(_photo(rng), (640, 480), interpolation=cv2.INTER_LINEAR)
    small = cv2.resize(big, (256, 192), interpolation=cv2.INTER_AREA)
    a, b = _scores([big, small]).to_numpy()
    names = list(QUALITY_SCORES)
    assert a[names.index("height")] == 480 and a[names.index("width")] == 640
    assert a[names.index("aspect")] == pytest.approx(640 / 480)
    # both scored at 256 x 192: the same image, the same scores
    same = [names.index(n) for n in ("sharpness", "brightness", "entropy")]
    np.testing.assert_allclose(a[same], b[same], rtol=1e-6)


def test_image_quality_grey_and_alpha_inputs():
    grey = np.full((10, 12), 0.5, np.float32)
    rgba = np.zeros((10, 12, 4), np.uint8)  # fully transparent: white
    out = _scores([grey, rgba])
    assert out.loc[0, "colourfulness"] == 0
    assert out.loc[1, "brightness"] == 1.0 and out.loc[1, "entropy"] == 0.0


# --------------------------------------------------------------------------
# estimator contract
# --------------------------------------------------------------------------
def test_image_quality_transform_changes_nothing_clone_pickle():
    rng = np.random.default_rng(1)
    items = [_photo(rng), _jpeg(_photo(rng)), None, b"garbage"]
    est = ImageQuality(on_error="missing").fit()
    digest = joblib.hash(est)
    out = est.transform(items)
    assert joblib.hash(est) == digest
    assert np.isnan(out[2:]).all() and np.isfinite(out[:2]).all()
    loaded = pickle.loads(pickle.dumps(est))
    np.testing.assert_array_equal(loaded.transform(items), out)
    cloned = clone(est)
    assert not hasattr(cloned, "n_features_out_")
    assert cloned.get_params() == est.get_params()
    assert len(est.get_feature_names_out()) == out.shape[1]


def test_image_quality_bad_item_raises_with_row():
    items = [np.zeros((4, 4, 3), np.uint8), b"\xff\xd8\xff\xe0 not really"]
    with pytest.raises(InputError, match="row 1"):
        ImageQuality().fit_transform(items)


def test_image_quality_bad_parameter():
    with pytest.raises(ParameterError, match="working_size"):
        ImageQuality(working_size=2).fit()


def test_image_quality_mmfeat_checks():
    from mmfeat.utils.estimator_checks import check_mmfeat_estimator

    check_mmfeat_estimator(ImageQuality(working_size=16))


# --------------------------------------------------------------------------
# issues on synthetic images
# --------------------------------------------------------------------------
@pytest.fixture(scope="module")
def synthetic():
    rng = np.random.default_rng(0)
    clean = [_photo(rng) for _ in range(30)]
    base = _photo(rng)
    bad = {
        "blurry": cv2.GaussianBlur(base, (15, 15), 0),
        "dark": (base * 0.1).astype(np.uint8),
        "light": np.clip(base * 2.2 + 120.0, 0, 255).astype(np.uint8),
        "low_information": np.full((120, 160, 3), 200, np.uint8),
        "grayscale": np.repeat(cv2.cvtColor(base, cv2.COLOR_RGB2GRAY)[..., None], 3, 2),
        "odd_aspect_ratio": _photo(rng, h=40, w=200),
    }
    items = list(clean) + list(bad.values())
    return items, {k: 30 + i for i, k in enumerate(bad)}


@pytest.mark.parametrize("thresholds", ["auto", "fixed"])
def test_find_image_issues_flags_synthetic_defects(synthetic, thresholds):
    items, where = synthetic
    found = find_image_issues(items, thresholds=thresholds)
    assert list(found.columns) == [
        "row",
        "issue",
        "score",
        "threshold",
        "severity",
        "source",
        "detail",
    ]
    pairs = set(zip(found["row"], found["issue"]))
    for issue, row in where.items():
        assert (row, issue) in pairs, (issue, found)
    assert not (found["row"] < 30).any(), found[found["row"] < 30]
    assert found["severity"].is_monotonic_decreasing
    assert set(found.attrs["thresholds"]) == set(IMAGE_ISSUES) - {"unreadable"}


def test_find_image_issues_unreadable_rows_aligned(tmp_path, synthetic):
    items, _ = synthetic
    good = tmp_path / "good.jpg"
    good.write_bytes(_jpeg(items[0]))
    truncated = tmp_path / "truncated.jpg"
    truncated.write_bytes(_jpeg(items[1])[:-300])
    text = tmp_path / "notes.jpg"
    text.write_text("this is not an image at all\n" * 10)
    column = pd.Series(
        [
            str(good),
            str(truncated),
            None,
            b"\x00\x01garbage bytes",
            str(tmp_path / "missing.png"),
            str(text),
            np.nan,
            items[2],
        ]
    )
    found = find_image_issues(column, issues=["unreadable", "blurry"])
    bad = found[found["issue"] == "unreadable"].set_index("row")
    assert sorted(bad.index) == [1, 2, 3, 4, 5, 6]
    assert "truncated" in bad.loc[1, "detail"]
    assert bad.loc[2, "detail"] == "missing item"
    assert bad.loc[4, "source"].endswith("missing.png")
    assert "text" in bad.loc[5, "detail"]
    assert np.isinf(bad["severity"]).all()
    assert found["issue"].iloc[0] == "unreadable"  # most severe first


def test_find_image_issues_refuses_bomb_header():
    # a valid PNG header claiming 100000 x 100000 pixels, and no pixel data
    ihdr = struct.pack(">IIBBBBB", 100_000, 100_000, 8, 2, 0, 0, 0)
    chunk = b"IHDR" + ihdr
    png = (
        b"\x89PNG\r\n\x1a\n"
        + struct.pack(">I", len(ihdr))
        + chunk
        + struct.pack(">I", zlib.crc32(chunk))
        + b"\x00\x00\x00\x00IEND\xaeB`\x82"
    )
    found = find_image_issues([png, np.zeros((8, 8, 3), np.uint8)])
    row = found[found["issue"] == "unreadable"]
    assert row["row"].tolist() == [0]
    assert "max_pixels" in row["detail"].iloc[0]


def test_find_image_issues_accepts_a_score_table(synthetic):
    items, where = synthetic
    table = _scores(items + [None])
    a = find_image_issues(items + [None])
    b = find_image_issues(table)
    pd.testing.assert_frame_equal(
        a.drop(columns=["source", "detail"]), b.drop(columns=["source", "detail"])
    )
    assert b.loc[b["issue"] == "unreadable", "row"].tolist() == [len(items)]


def test_find_image_issues_thresholds_dict_and_errors(synthetic):
    items, where = synthetic
    found = find_image_issues(items, issues=["dark"], thresholds={"dark": 0.01})
    assert found.empty and list(found.columns)[:2] == ["row", "issue"]
    found = find_image_issues(items, issues="dark", thresholds={"dark": 0.99})
    assert len(found) > 1 and (found["threshold"] == 0.99).all()
    with pytest.raises(ParameterError, match="unknown issues"):
        find_image_issues(items, thresholds={"fuzzy": 1.0})
    with pytest.raises(ParameterError, match="issues"):
        find_image_issues(items, issues=["fuzzy"])
    with pytest.raises(ParameterError, match="thresholds"):
        find_image_issues(items, thresholds="median")


def test_find_image_issues_auto_adapts_to_the_column():
    # a column of uniformly soft images: "auto" learns the column's own level
    # (within its bounds), "fixed" flags by the absolute default
    rng = np.random.default_rng(3)
    soft = [cv2.GaussianBlur(_photo(rng), (5, 5), 0) for _ in range(25)]
    soft.append(cv2.GaussianBlur(soft[0], (21, 21), 0))
    auto = find_image_issues(soft, issues=["blurry"])
    assert auto["row"].tolist() == [25]


def test_find_image_issues_real_photos(data_home, tmp_path):
    from mmfeat.datasets import load_fashion_products

    paths = list(load_fashion_products(data_home=data_home).frame["path"][:60])
    column = list(paths)
    for k, p in enumerate(paths[:3]):
        img = cv2.imread(str(p))
        edits = {
            "blurry": cv2.GaussianBlur(img, (13, 13), 0),
            "dark": (img * 0.12).astype(np.uint8),
        }
        for issue, out in edits.items():
            dst = tmp_path / f"{k}_{issue}.jpg"
            cv2.imwrite(str(dst), out, [cv2.IMWRITE_JPEG_QUALITY, 90])
            column.append(str(dst))
    found = find_image_issues(column, issues=["blurry", "dark"])
    flagged = set(zip(found["row"], found["issue"]))
    want = {(60 + 2 * k, "blurry") for k in range(3)}
    want |= {(61 + 2 * k, "dark") for k in range(3)}
    assert want <= flagged
    assert not (found["row"] < 60).any()
