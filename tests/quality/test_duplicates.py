"""Exact and near-duplicate detection (find_duplicates)."""

from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest

from mmfeat import collect_item_errors
from mmfeat.exceptions import InputError, ParameterError
from mmfeat.quality._duplicates import (
    _candidate_probability,
    _hamming_pairs,
    _lsh_shape,
    _minhash_pairs,
    _phash_thumbnail,
    _text_sets,
    find_duplicates,
)


def _photo(seed, size=96):
    """A smooth random colour picture (a few blurred blobs), uint8 RGB."""
    rng = np.random.default_rng(seed)
    img = np.zeros((size, size, 3), np.float32)
    for _ in range(6):
        cy, cx = rng.integers(0, size, 2)
        r = int(rng.integers(size // 8, size // 3))
        cv2.circle(img, (int(cx), int(cy)), r, rng.uniform(0, 255, 3).tolist(), -1)
    return np.clip(cv2.GaussianBlur(img, (0, 0), 3), 0, 255).astype(np.uint8)


def _write(path, img, quality=95):
    cv2.imwrite(str(path), img[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, quality])
    return str(path)


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    """Eight distinct photos, then a re-encoded, a resized, a brighter copy of 0."""
    d = tmp_path_factory.mktemp("photos")
    base = [_photo(s) for s in range(8)]
    paths = [_write(d / f"p{i}.jpg", im) for i, im in enumerate(base)]
    paths.append(_write(d / "reencoded.jpg", base[0], quality=60))
    small = cv2.resize(base[0], None, fx=0.9, fy=0.9, interpolation=cv2.INTER_AREA)
    paths.append(_write(d / "resized.jpg", small))
    bright = np.clip(base[0].astype(np.float32) * 1.1, 0, 255).astype(np.uint8)
    paths.append(_write(d / "brighter.jpg", bright))
    return paths


def _pairs(result):
    return set(zip(result["row"].tolist(), result["other_row"].tolist()))


def test_find_duplicates_images_near_and_exact(photos):
    items = photos + [photos[3]]  # row 11: the same file as row 3
    out = find_duplicates(pd.DataFrame({"image": items}), columns={"image": "image"})
    expected = {(0, 8), (0, 9), (0, 10), (8, 9), (8, 10), (9, 10), (3, 11)}
    assert _pairs(out) == expected
    exact = out[out["kind"] == "exact"]
    assert _pairs(exact) == {(3, 11)}
    assert (out["row"] < out["other_row"]).all()
    assert out["similarity"].is_monotonic_decreasing
    assert out["image_similarity"].min() >= 0.95
    assert list(out.columns) == [
        "row",
        "other_row",
        "similarity",
        "image_similarity",
        "kind",
    ]


def test_find_duplicates_phash_matches_opencv(rng):
    for k in range(50):
        img = (rng.random((32, 32)) * 255).astype(np.uint8)
        if k % 2:
            img = cv2.GaussianBlur(img, (5, 5), 0)
        ref = np.frombuffer(cv2.img_hash.pHash(img).tobytes(), "<u8")[0]
        assert _phash_thumbnail(img) == int(ref)


def test_find_duplicates_texts_near_and_exact():
    titles = [
        "Nike Men Blue Running Shoes",
        "NIKE men blue running shoes",  # case: exact after normalising
        "Nike Men Running Shoes",  # one word dropped
        "Puma Women Black Leather Handbag",
        "Puma Women Black  Handbag.",  # dropped word, punctuation, spaces
        "Fossil Men Steel Watch",
        "Red Cotton Scarf",
    ]
    out = find_duplicates(titles)
    assert list(out.columns)[3] == "item_similarity"
    assert _pairs(out) == {(0, 1), (0, 2), (1, 2), (3, 4)}
    assert out.loc[0, "kind"] == "exact" and _pairs(out.head(1)) == {(0, 1)}
    # words vs characters: both find the dropped word at a lower threshold
    chars = find_duplicates(titles, text_analyzer="char", text_threshold=0.6)
    assert {(0, 1), (0, 2), (3, 4)} <= _pairs(chars)
    assert not {(5, 6), (0, 3)} & _pairs(chars)


def test_find_duplicates_across_tables_only_pairs_leaks():
    train = pd.DataFrame(
        {"title": ["blue denim jacket", "blue denim jacket", "green wool hat", None]}
    )
    test = pd.DataFrame({"title": ["Blue Denim Jacket", "yellow raincoat", None]})
    out = find_duplicates(train, test, columns=["title"])
    assert _pairs(out) == {(0, 0), (1, 0)}  # never (0, 1) inside train
    assert (out["kind"] == "exact").all()


def test_find_duplicates_require_all_and_any(photos):
    X = pd.DataFrame(
        {
            "image": [photos[0], photos[8], photos[1], photos[2]],
            "title": ["red shirt", "red shirt", "red shirt", "blue jeans slim"],
        }
    )
    spec = {"image": "image", "title": "text"}
    both = find_duplicates(X, columns=spec, require="all")
    assert _pairs(both) == {(0, 1)}
    anyone = find_duplicates(X, columns=spec, require="any")
    assert _pairs(anyone) == {(0, 1), (0, 2), (1, 2)}
    row = anyone.set_index(["row", "other_row"]).loc[(0, 2)]
    assert row["title_similarity"] == 1.0 and row["image_similarity"] < 0.95
    assert row["similarity"] == pytest.approx(
        (row["title_similarity"] + row["image_similarity"]) / 2
    )
    # inferred kinds: existing image files -> image, other strings -> text
    inferred = find_duplicates(X, columns=["image", "title"])
    pd.testing.assert_frame_equal(inferred, both)


def test_find_duplicates_hamming_candidates_match_brute_force():
    rng = np.random.default_rng(1)
    base = rng.integers(0, 2**63, size=300, dtype=np.uint64)
    # plant near copies with 0..5 flipped bits
    copies = base[:150].copy()
    for k in range(150):
        for bit in rng.choice(64, size=k % 6, replace=False):
            copies[k] ^= np.uint64(1) << np.uint64(int(bit))
    hashes = np.concatenate([base, copies])
    bits = np.unpackbits(hashes.view(np.uint8)).reshape(len(hashes), 64)
    dist = (bits[:, None, :] != bits[None, :, :]).sum(-1)
    for radius in (0, 3, 5):
        a, b, d, skipped = _hamming_pairs(hashes, radius)
        i, j = np.nonzero(np.triu(dist <= radius, 1))
        assert set(zip(a.tolist(), b.tolist())) == set(zip(i.tolist(), j.tolist()))
        assert (d == dist[a, b]).all() and len(skipped) == 0
    # two sides: only pairs across
    side = np.r_[np.zeros(300, np.int64), np.ones(150, np.int64)]
    a, b, _, _ = _hamming_pairs(hashes, 3, side=side)
    assert (side[a] != side[b]).all()
    assert len(a) == sum(k % 6 <= 3 for k in range(150))


def test_find_duplicates_minhash_recall_vs_brute_force():
    rng = np.random.default_rng(2)
    vocab = [f"w{k}" for k in range(400)]
    texts = []
    for _ in range(150):
        words = list(rng.choice(vocab, size=int(rng.integers(6, 14)), replace=False))
        texts.append(" ".join(words))
        n_drop = int(rng.integers(0, 4))
        keep = [w for k, w in enumerate(words) if k >= n_drop]
        texts.append(" ".join(keep + ["extra"] * int(rng.integers(0, 2))))
    _, indptr, indices, _ = _text_sets(texts, analyzer="word", n=1)
    sets = [set(indices[indptr[k] : indptr[k + 1]].tolist()) for k in range(len(texts))]
    threshold = 0.6
    truth = {}
    for i in range(len(sets)):
        for j in range(i + 1, len(sets)):
            jac = len(sets[i] & sets[j]) / len(sets[i] | sets[j])
            if jac >= threshold:
                truth[(i, j)] = jac
    assert len(truth) > 100
    bands, rows = _lsh_shape(threshold, 128)
    assert _candidate_probability(threshold, bands, rows) >= 0.99
    a, b, sim, _ = _minhash_pairs(indptr, indices, threshold, num_perm=128, seed=0)
    found = dict(zip(zip(a.tolist(), b.tolist()), sim.tolist()))
    assert set(found) <= set(truth)  # verified: no false positive
    for pair, jac in found.items():
        assert jac == pytest.approx(truth[pair])
    expected = np.mean([_candidate_probability(s, bands, rows) for s in truth.values()])
    recall = len(found) / len(truth)
    assert recall >= min(0.97, expected - 0.03)


def test_find_duplicates_missing_items_never_match(photos):
    X = pd.DataFrame(
        {"image": [None, None, photos[0], photos[0]], "title": [None, None, "a", None]}
    )
    out = find_duplicates(X, columns={"image": "image", "title": "text"})
    assert len(out) == 0
    out = find_duplicates(X, columns={"image": "image", "title": "text"}, require="any")
    assert _pairs(out) == {(2, 3)}
    assert np.isnan(out.loc[0, "title_similarity"]) and out.loc[0, "kind"] == "near"
    assert out.loc[0, "similarity"] == 1.0
    assert len(find_duplicates(["", "!!", "", None])) == 0  # no word: not compared


def test_find_duplicates_unreadable_images(tmp_path, photos):
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(Path(photos[0]).read_bytes()[:200])
    train = pd.DataFrame({"image": [photos[0], photos[1]]})
    test = pd.DataFrame({"image": [photos[2], str(broken), photos[8]]})
    with pytest.raises(InputError, match=r"row 1 \(.*broken.jpg\).*of other"):
        find_duplicates(train, test, columns={"image": "image"})
    with collect_item_errors() as errors:
        out = find_duplicates(
            train, test, columns={"image": "image"}, on_error="missing"
        )
    assert _pairs(out) == {(0, 2)}  # rows stay aligned past the bad one
    assert [(e.row, e.modality) for e in errors] == [(1, "other__image")]
    (err,) = out.attrs["errors"]
    assert err["table"] == "other" and err["row"] == 1 and err["column"] == "image"
    assert err["source"].endswith("broken.jpg")
    with pytest.raises(InputError, match=r"row 0 .*expected a text"):
        find_duplicates([3.5j, "a"], columns={"item": "text"})


def test_find_duplicates_big_buckets_are_skipped_and_listed():
    out = find_duplicates(["same words here"] * 30, max_bucket_size=10)
    assert len(out) == 0
    skipped = out.attrs["skipped_buckets"]
    assert skipped and all(s["size"] == 30 for s in skipped)
    assert len(find_duplicates(["same words here"] * 30)) == 30 * 29 // 2


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"require": "most"}, "require"),
        ({"image_threshold": 0.2}, "image_threshold"),
        ({"text_threshold": 0.0}, "text_threshold"),
        ({"num_perm": 0}, "num_perm"),
        ({"max_bucket_size": 1}, "max_bucket_size"),
        ({"on_error": "skip"}, "on_error"),
        ({"text_analyzer": "sentence"}, "text_analyzer"),
        ({"columns": {"title": "video"}}, "columns"),
        ({"columns": ["nope"]}, "nope"),
        ({"columns": []}, "columns"),
    ],
)
def test_find_duplicates_bad_parameters(kwargs, match):
    X = pd.DataFrame({"title": ["a b", "a b"], "n": [1, 2]})
    kwargs = {"columns": ["title"], **kwargs}
    with pytest.raises(ParameterError, match=match):
        find_duplicates(X, **kwargs)


def test_find_duplicates_bad_tables():
    X = pd.DataFrame({"title": ["a b", "a b"], "n": [1, 2]})
    with pytest.raises(ParameterError, match="columns must name"):
        find_duplicates(X)
    with pytest.raises(ParameterError, match="not in other"):
        find_duplicates(X, pd.DataFrame({"other": ["x"]}), columns=["title"])
    with pytest.raises(ParameterError, match="cannot infer"):
        find_duplicates(X, columns=["n"])


def test_find_duplicates_fashion_leaks(data_home):
    from mmfeat.datasets import load_fashion_products

    frame = load_fashion_products(
        data_home=data_home, target="articleType", min_count=50
    ).frame
    frame = frame.iloc[:300].reset_index(drop=True)
    train = pd.DataFrame({"image": frame["path"].astype(str), "title": frame["title"]})
    picked = [3, 50, 120, 250]
    test = train.iloc[picked].reset_index(drop=True)
    test["title"] = test["title"].str.upper()
    test.loc[0, "title"] = " ".join(test.loc[0, "title"].split()[:-1])
    spec = {"image": "image", "title": "text"}
    out = find_duplicates(train, test, columns=spec, n_jobs=2)
    assert {(r, k) for k, r in enumerate(picked)} <= _pairs(out)
    found = out.set_index(["row", "other_row"])
    assert found.loc[(50, 1), "kind"] == "exact"
    assert found.loc[(3, 0), "kind"] == "near"


def test_find_duplicates_whole_hash_band_at_radius_zero_is_not_one_bucket():
    # radius 0 is one 64-bit band; a shift by 64 once made every key equal,
    # one bucket over max_bucket_size, skipped: no pair found
    rng = np.random.default_rng(3)
    hashes = rng.integers(0, 2**63, 1500, dtype=np.uint64) * np.uint64(2) + 1
    hashes[1495:] = hashes[:5]
    a, b, dist, skipped = _hamming_pairs(hashes, 0, max_bucket=1000)
    assert len(skipped) == 0
    assert sorted(zip(a.tolist(), b.tolist())) == [(i, 1495 + i) for i in range(5)]
    assert (dist == 0).all()
