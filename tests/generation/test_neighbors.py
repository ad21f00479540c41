"""NearestNeighborCaptioner: neighbours, consensus, bad rows, state, scale."""

import pickle
import tracemalloc

import numpy as np
import pandas as pd
import pytest
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer

import mmfeat
from mmfeat.evaluation import make_caption_scorer
from mmfeat.exceptions import InputError, ModelStateError, ParameterError
from mmfeat.generation import NearestNeighborCaptioner
from mmfeat.utils._ngrams import NgramSpace, cider_pairwise, tfidf_vectors, tokenize


def _clusters(rng, n_per=6, dim=8):
    """Three tight clusters of features; each cluster's captions share words."""
    centres = np.eye(3, dim) * 3.0
    F, texts, labels = [], [], []
    words = [("red", "shirt"), ("blue", "shoe"), ("black", "watch")]
    for k in range(3):
        for i in range(n_per):
            F.append(centres[k] + 0.1 * rng.standard_normal(dim))
            colour, kind = words[k]
            texts.append(f"brand{i} men {colour} {kind}")
            labels.append(k)
    return np.array(F), texts, np.array(labels)


def test_one_nn_transfers_the_nearest_caption(rng):
    F, texts, _ = _clusters(rng)
    model = NearestNeighborCaptioner("passthrough", consensus=None).fit(F, texts)
    # a training photo's nearest neighbour is itself
    assert model.predict(F).tolist() == texts
    cands = model.predict_candidates(F[:1] + 0.01, k=3)[0]
    assert cands[0][0] == texts[0]
    sims = [s for _, s in cands]
    assert sims == sorted(sims, reverse=True) and -1.0 <= sims[-1] <= 1.0


def test_consensus_picks_the_caption_the_neighbours_agree_on():
    # the nearest photo's caption is an outlier; the four next agree
    F = np.array([[1.0, 0.0], [0.99, 0.1], [0.98, 0.15], [0.97, 0.2], [0.96, 0.25]])
    texts = [
        "zebra pattern scarf",
        "men blue denim shirt",
        "men blue denim shirt slim",
        "men blue denim shirt",
        "men blue cotton shirt",
    ]
    q = np.array([[1.0, 0.01]])
    one = NearestNeighborCaptioner("passthrough", consensus=None, n_neighbors=5)
    assert one.fit(F, texts).predict(q)[0] == "zebra pattern scarf"
    for consensus in ("cider", "tfidf-cosine", "bleu"):
        model = NearestNeighborCaptioner(
            "passthrough", n_neighbors=5, consensus=consensus, image_weight=0.0
        ).fit(F, texts)
        assert model.predict(q)[0] == "men blue denim shirt", consensus


def test_consensus_scores_equal_a_naive_mean_of_pairwise_cider():
    F = np.array([[1.0, 0.0], [0.9, 0.3], [0.8, 0.5], [0.7, 0.6]])
    texts = ["red shirt", "red cotton shirt", "red shirt", "blue shoe"]
    model = NearestNeighborCaptioner(
        "passthrough", n_neighbors=4, consensus="cider", image_weight=0.0
    ).fit(F, texts)
    cands = dict(model.predict_candidates(np.array([[1.0, 0.0]]), k=3)[0])
    # naive: CIDEr-D of each candidate against every *other* occurrence
    distinct = ["red shirt", "red cotton shirt", "blue shoe"]
    space = NgramSpace([tokenize(t) for t in distinct])
    # documents are photos: "red shirt" is on two of the four
    df = []
    for m in space.counts:
        present = (m.toarray() > 0).astype(float)
        df.append(present[0] * 2 + present[1] + present[2])
    vectors, norms = tfidf_vectors(space, df, 4)
    S = cider_pairwise(vectors, norms, space.lengths, [0, 1, 2])
    occurrences = [0, 1, 0, 2]
    for i, text in enumerate(distinct):
        others = list(occurrences)
        others.remove(i)
        want = np.mean([S[i, j] for j in others])
        assert cands[text] == pytest.approx(want, rel=1e-9), text


def test_cider_pairwise_equals_the_reference_scorer_pair_by_pair():
    from pycocoevalcap.cider.cider_scorer import CiderScorer

    texts = ["men blue denim shirt", "blue shirt", "women red heels", "red red shoe"]
    tokens = [tokenize(t) for t in texts]
    space = NgramSpace(tokens)
    # one document per text, as the COCO scorer counts them
    df = space.document_frequency(np.arange(4), 4)
    vectors, norms = tfidf_vectors(space, df, 4)
    S = cider_pairwise(vectors, norms, space.lengths, np.arange(4))
    for i in range(4):
        # the reference scorer's IDF comes from its own references: give it
        # the four texts as the documents, and read the one pair back
        sc = CiderScorer(n=4, sigma=6.0)
        for j in range(4):
            sc += (" ".join(tokens[i]), [" ".join(tokens[j])])
        sc.compute_doc_freq()
        sc.ref_len = np.log(4.0)
        ref = sc.compute_cider()
        np.testing.assert_allclose(S[i], ref, rtol=1e-12)


def test_candidates_are_ranked_and_predict_is_the_best(rng):
    F, texts, _ = _clusters(rng)
    model = NearestNeighborCaptioner("passthrough", n_neighbors=6).fit(F, texts)
    cands = model.predict_candidates(F, k=4)
    pred = model.predict(F)
    for c, p in zip(cands, pred):
        assert len(c) == 4 and c[0][0] == p
        assert [s for _, s in c] == sorted((s for _, s in c), reverse=True)
    with pytest.raises(ParameterError, match="k must be a positive int"):
        model.predict_candidates(F, k=0)


def test_several_captions_per_photo_are_all_candidates(rng):
    F, _, _ = _clusters(rng, n_per=2)
    refs = [[f"caption {i} a", f"caption {i} b"] for i in range(len(F))]
    model = NearestNeighborCaptioner("passthrough", consensus=None).fit(F, refs)
    assert len(model.texts_) == 2 * len(F)
    assert model.predict_candidates(F[:1], k=2)[0][0][0] == "caption 0 a"


def test_rows_without_features_or_caption_are_left_out_and_reported(rng):
    F, texts, _ = _clusters(rng)
    F[2] = np.nan
    texts = list(texts)
    texts[4] = None
    with pytest.raises(InputError, match="row 4"):
        NearestNeighborCaptioner("passthrough").fit(F, texts)
    with mmfeat.collect_item_errors() as errors:
        model = NearestNeighborCaptioner("passthrough", on_error="missing").fit(
            F, texts
        )
    assert [e.row for e in errors] == [4]
    assert 2 not in model.gallery_rows_ and 4 not in model.gallery_rows_
    assert len(model.gallery_rows_) == len(F) - 2
    out = model.predict(F)
    assert out[2] is None and all(v is not None for i, v in enumerate(out) if i != 2)


def test_unreadable_photos_keep_their_rows(rng, tmp_path):
    import cv2

    paths = []
    for i in range(8):
        img = np.full((40, 30, 3), 40 * (i % 4), np.uint8)
        img[:, : 5 + 3 * i] = 255
        p = tmp_path / f"p{i}.png"
        cv2.imwrite(str(p), img)
        paths.append(str(p))
    texts = [f"item {i % 4} grey" for i in range(8)]
    model = NearestNeighborCaptioner(n_neighbors=3, on_error="missing").fit(
        paths, texts
    )
    (tmp_path / "broken.jpg").write_bytes(b"\xff\xd8 not a jpeg")
    query = [paths[0], str(tmp_path / "broken.jpg"), None, paths[5]]
    with mmfeat.collect_item_errors() as errors:
        out = model.predict(query)
    assert out[1] is None and out[2] is None
    assert out[0] is not None and out[3] is not None
    # the broken file once, whatever reads it twice (HOG and colour)
    assert [(e.row, e.source.endswith("broken.jpg")) for e in errors] == [(1, True)]


def test_chunked_queries_give_the_same_answers_and_flat_memory(rng):
    F = rng.standard_normal((3000, 64)).astype(np.float64)
    texts = [f"word{i % 50} word{i % 7} thing" for i in range(3000)]
    small = NearestNeighborCaptioner("passthrough", n_neighbors=10, batch_size=64)
    small.fit(F, texts)
    big = NearestNeighborCaptioner("passthrough", n_neighbors=10, batch_size=5000)
    big.fit(F, texts)
    Q = rng.standard_normal((600, 64))
    assert small.predict(Q).tolist() == big.predict(Q).tolist()
    peaks = []
    for n in (200, 1200):
        Qn = rng.standard_normal((n, 64))
        tracemalloc.start()
        small.predict(Qn)
        peaks.append(tracemalloc.get_traced_memory()[1])
        tracemalloc.stop()
    # the similarity block is batch_size x gallery: it does not grow with n
    assert peaks[1] < 2.0 * peaks[0] + 2e6, peaks


def test_dataframe_input_records_its_column_and_checks_it(rng):
    F, texts, _ = _clusters(rng, n_per=3)
    X = pd.DataFrame({"f": list(F)})
    as_matrix = FunctionTransformer(lambda col: np.stack(col["f"].tolist()))
    model = NearestNeighborCaptioner(as_matrix, consensus=None).fit(X, texts)
    assert model.feature_names_in_.tolist() == ["f"]
    assert model.predict(X.assign(other=1)).tolist() == texts
    with pytest.raises(InputError, match="no column"):
        model.predict(pd.DataFrame({"g": list(F)}))


def test_default_features_refuse_a_table_of_several_columns():
    X = pd.DataFrame({"a": ["x.png"], "b": ["y.png"]})
    with pytest.raises(ParameterError, match="one column of photos"):
        NearestNeighborCaptioner().fit(X, ["t"])


def test_bad_captions_name_their_row(rng):
    F, texts, _ = _clusters(rng, n_per=2)
    texts = list(texts)
    texts[3] = 17
    with pytest.raises(InputError, match="row 3") as exc:
        NearestNeighborCaptioner("passthrough").fit(F, texts)
    assert "caption must be text" in str(exc.value)
    with pytest.raises(ParameterError, match="entries for"):
        NearestNeighborCaptioner("passthrough").fit(F, texts[:-1])
    with pytest.raises(ParameterError, match="sequence of texts"):
        NearestNeighborCaptioner("passthrough").fit(F, "one caption")


def test_grid_search_with_the_cider_scorer(rng):
    F, texts, _ = _clusters(rng, n_per=8)
    search = GridSearchCV(
        NearestNeighborCaptioner("passthrough"),
        {"n_neighbors": [2, 5], "consensus": ["cider", None]},
        cv=3,
        scoring=make_caption_scorer("cider"),
    ).fit(F, texts)
    scores = search.cv_results_["mean_test_score"]
    assert len(scores) == 4 and np.isfinite(scores).all()
    assert search.best_score_ == scores.max()
    pipe = make_pipeline(
        FunctionTransformer(np.abs), NearestNeighborCaptioner("passthrough")
    )
    assert len(pipe.fit(F, texts).predict(F)) == len(F)
    # the default score is CIDEr-D
    model = NearestNeighborCaptioner("passthrough").fit(F, texts)
    assert model.score(F, texts) == pytest.approx(
        make_caption_scorer()(model, F, texts)
    )


def test_save_load_round_trip_and_tampered_state_is_refused(rng, tmp_path):
    F, texts, _ = _clusters(rng)
    for consensus in ("cider", "tfidf-cosine", None):
        model = NearestNeighborCaptioner("passthrough", consensus=consensus)
        model.fit(F, texts)
        path = tmp_path / f"m_{consensus}.skops"
        mmfeat.save(model, path)
        loaded = mmfeat.load(path)
        assert loaded.predict(F).tolist() == model.predict(F).tolist()
        assert (
            pickle.loads(pickle.dumps(model)).predict(F).tolist()
            == model.predict(F).tolist()
        )
    state = dict(model.__getstate__())
    state["caption_text_"] = np.array([10**6] * len(state["caption_text_"]))
    tampered = NearestNeighborCaptioner.__new__(NearestNeighborCaptioner)
    with pytest.raises(ModelStateError, match="caption_text_"):
        tampered.__setstate__(state)
    state = dict(model.__getstate__())
    state["caption_ptr_"] = state["caption_ptr_"][:-1]
    with pytest.raises(ModelStateError, match="caption_ptr_"):
        NearestNeighborCaptioner.__new__(NearestNeighborCaptioner).__setstate__(state)


def test_predict_changes_no_attribute(rng):
    import joblib

    F, texts, _ = _clusters(rng)
    model = NearestNeighborCaptioner("passthrough").fit(F, texts)
    digest = joblib.hash(model)
    model.predict(F)
    model.predict_candidates(F, k=3)
    assert joblib.hash(model) == digest


def test_features_of_another_width_are_refused_with_a_clear_error(rng):
    F, texts, _ = _clusters(rng)
    model = NearestNeighborCaptioner("passthrough").fit(F, texts)
    with pytest.raises(InputError, match="columns"):
        model.predict(F[:, :3])


def test_a_refit_leaves_nothing_of_the_previous_input_behind(rng, tmp_path):
    import cv2

    from mmfeat.fusion import get_modalities

    paths = []
    for i in range(6):
        p = tmp_path / f"p{i}.png"
        cv2.imwrite(str(p), np.full((20, 20, 3), 40 * i, np.uint8))
        paths.append(str(p))
    model = NearestNeighborCaptioner(n_neighbors=2).fit(
        pd.DataFrame({"image": paths}), [f"t{i}" for i in range(6)]
    )
    assert get_modalities(model)[0].estimator is model.transformer_
    F, texts, _ = _clusters(rng, n_per=2)
    model.set_params(transformer="passthrough").fit(F, texts)
    assert model.transformer_ is None and model.n_features_in_ == F.shape[1]
    # no stale image extractor: nothing is read as a file
    assert get_modalities(model)[0].estimator is None
    with pytest.raises(ParameterError, match="2-D numeric matrix"):
        NearestNeighborCaptioner("passthrough").fit(list(F), texts)


@pytest.mark.parametrize(
    "edit, match",
    [
        (lambda s: s.update(text_vectors_=[]), "text_vectors_"),
        (lambda s: s.pop("text_vectors_"), "text_vectors_"),
        (lambda s: s.update(embedding_=np.full((0, 3), 0.0, np.float32)), "photo"),
        (
            lambda s: s["embedding_"].__setitem__((0, 0), np.nan),
            "finite",
        ),
        (lambda s: s.update(transformer_=None, transformer=None), "transformer_"),
    ],
)
def test_loaded_state_that_would_misbehave_is_refused(rng, edit, match):
    F, texts, _ = _clusters(rng)
    model = NearestNeighborCaptioner("passthrough").fit(F, texts)
    state = dict(model.__getstate__())
    state["embedding_"] = state["embedding_"].copy()
    edit(state)
    with pytest.raises(ModelStateError, match=match):
        NearestNeighborCaptioner.__new__(NearestNeighborCaptioner).__setstate__(state)
