"""TfidfExtractor's ``"auto"`` defaults: word n-grams for spaced scripts (as
before), character n-grams for scripts written without spaces (issue 14,
part 5)."""

import pickle

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline

import mmfeat
from mmfeat.datasets import load_pascal_sentences
from mmfeat.exceptions import ModelStateError, ParameterError
from mmfeat.features.text import TfidfExtractor
from mmfeat.features.text._tfidf import _AUTO_UNSPACED_SHARE, _unspaced_share

ENGLISH = [
    "Red cotton shirt for men",
    "Blue leather shoe",
    "red leather wallet",
    "Cotton socks, pack of three",
    "a dog runs on the beach",
    "two cats sleep on a sofa",
    "the old train crosses a bridge",
    "a boat on a calm lake",
    "children play football in the park",
    "a red bus in a busy street",
    "a plane lands at night",
]


def _chinese_corpus(n_per_class=120, n_classes=4, seed=0):
    """Texts of Hanzi "words" without spaces, each class with its own words.

    400 distinct ideographs: 160 make 120 shared words, the others (60 per
    class) 40 words of each class; a text is 2-4 clauses of 5-9 words (a
    quarter of them from its class) joined by Chinese punctuation, so word
    tokens are whole clauses. Every text is unique.
    """
    rng = np.random.default_rng(seed)
    hanzi = np.array([chr(c) for c in range(0x4E00, 0x4E00 + 400)])
    rng.shuffle(hanzi)

    def words(chars, n):
        return [
            "".join(rng.choice(chars, size=rng.integers(1, 4), replace=False))
            for _ in range(n)
        ]

    shared = words(hanzi[:160], 120)
    own = [words(chars, 40) for chars in hanzi[160:].reshape(n_classes, -1)]
    texts, y = [], []
    for k in range(n_classes):
        for _ in range(n_per_class):
            clauses = [
                "".join(
                    own[k][rng.integers(40)]
                    if rng.random() < 0.25
                    else shared[rng.integers(120)]
                    for _ in range(rng.integers(5, 10))
                )
                for _ in range(rng.integers(2, 5))
            ]
            texts.append("，".join(clauses) + "。")
            y.append(k)
    order = rng.permutation(len(texts))
    return [texts[i] for i in order], np.array(y)[order]


@pytest.fixture(scope="module")
def chinese():
    texts, y = _chinese_corpus()
    assert len(set(texts)) == len(texts)
    assert " " not in "".join(texts)
    assert 250 <= len(set("".join(texts)) - set("，。")) <= 400
    return texts, y


def test_tfidf_auto_picks_char_ngrams_for_chinese_and_beats_word_ngrams(chinese):
    texts, y = chinese
    half = len(y) // 2

    def score(**params):
        model = make_pipeline(TfidfExtractor(**params), LogisticRegression())
        model.fit(texts[:half], y[:half])
        return model[0], model.score(texts[half:], y[half:])

    auto, auto_acc = score()
    word, word_acc = score(word_ngram_range=(1, 2), char_ngram_range=None)
    assert auto.unspaced_share_ == 1.0
    assert auto.analyzer_ == "char"
    assert auto.word_ngram_range_ is None and auto.word_vectorizer_ is None
    assert auto.char_ngram_range_ == (1, 3) and auto.char_analyzer_ == "char"
    assert word.analyzer_ == "word"
    # 4 classes: forced word n-grams are near chance (a token is a clause)
    assert auto_acc >= 0.9 and word_acc <= 0.4, (auto_acc, word_acc)
    assert auto_acc - word_acc >= 0.5


def test_tfidf_auto_feature_names_are_characters(chinese):
    texts, _ = chinese
    ext = TfidfExtractor().fit(texts)
    names = ext.get_feature_names_out()
    assert len(names) == ext.vocabulary_size_
    assert all(n.startswith("c_") and 2 <= len(n) <= 5 for n in names)
    assert not any(" " in n for n in names)  # no word-boundary padding
    assert f"c_{texts[0][:2]}" in set(names)  # the first bigram of a text


def test_tfidf_auto_on_spaced_english_is_words_and_characters_in_words(data_home):
    texts = load_pascal_sentences(data_home=data_home).frame["text"].tolist()
    auto = TfidfExtractor().fit(texts)
    explicit = TfidfExtractor(
        word_ngram_range=(1, 2), char_ngram_range=(2, 5), char_analyzer="char_wb"
    ).fit(texts)
    assert auto.analyzer_ == "word+char" and auto.unspaced_share_ == 0.0
    assert (auto.word_ngram_range_, auto.char_ngram_range_) == ((1, 2), (2, 5))
    assert auto.char_vectorizer_.analyzer == "char_wb"
    X, R = auto.transform(texts), explicit.transform(texts)
    assert X.format == R.format == "csr" and X.shape == R.shape
    for a in ("data", "indices", "indptr"):
        np.testing.assert_array_equal(getattr(X, a), getattr(R, a))
    np.testing.assert_array_equal(
        auto.get_feature_names_out(), explicit.get_feature_names_out()
    )
    # the word block alone is still scikit-learn's TfidfVectorizer
    words = TfidfExtractor(word_ngram_range=(1, 2), char_ngram_range=None).fit(texts)
    ref = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True).fit(texts)
    assert (words.transform(texts) != ref.transform(texts)).nnz == 0
    assert auto.get_feature_names_out()[0] == f"w_{ref.get_feature_names_out()[0]}"


@pytest.mark.parametrize(
    "text, share",
    [
        ("红色的衬衫", 1.0),
        ("a red shirt", 0.0),
        ("苹果 iPhone 手机壳", 5 / 11),  # brand names in Latin letters
        ("こんにちは、世界！", 1.0),  # kana and kanji, full-width punctuation
        ("ภาษาไทย ไม่มีช่องว่าง", 1.0),  # Thai: combining vowels count too
        ("ພາສາລາວ", 1.0),  # Lao
        ("ភាសាខ្មែរ", 1.0),  # Khmer
        ("မြန်မာဘာသာ", 1.0),  # Myanmar
        ("한국어는 띄어쓰기를 한다", 0.0),  # Hangul is spaced
        ("Ünïcödé wörds 123", 0.0),
    ],
)
def test_tfidf_unspaced_share_of_scripts(text, share):
    assert _unspaced_share([text]) == pytest.approx(share)


def test_tfidf_unspaced_share_ignores_texts_without_letters():
    assert _unspaced_share(["123 456", "!!"]) == 0.0
    assert _unspaced_share(["红色", "2024", "blue"]) == 0.5


@pytest.mark.parametrize(
    "n_chinese, n_english, analyzer",
    [
        (1, 9, "char"),  # share 0.1: at the threshold
        (1, 10, "word+char"),  # share 0.0909: just below
        (2, 9, "char"),
        (0, 11, "word+char"),
        (5, 0, "char"),
    ],
)
def test_tfidf_auto_on_mixed_corpora_around_the_threshold(
    chinese, n_chinese, n_english, analyzer
):
    texts = chinese[0][:n_chinese] + ENGLISH[:n_english]
    ext = TfidfExtractor().fit(texts)
    share = n_chinese / (n_chinese + n_english)
    assert ext.unspaced_share_ == pytest.approx(share)
    assert (share >= _AUTO_UNSPACED_SHARE) == (analyzer == "char")
    assert ext.analyzer_ == analyzer
    X = ext.transform(texts)
    assert X.shape == (len(texts), ext.vocabulary_size_)
    np.testing.assert_allclose(sp.linalg.norm(X, axis=1), 1.0)


def test_tfidf_auto_counts_letters_within_each_text():
    # Chinese titles with Latin brand names: 5 of 11 letters are Hanzi
    titles = ["苹果 iPhone 手机壳", "华为 Huawei 手机膜", "小米 Xiaomi 充电器"]
    assert TfidfExtractor().fit(titles).analyzer_ == "char"
    # an English corpus naming a Chinese city: 2 of 38 letters (0.05)
    spaced = ["the trip to 北京 took two days by a slow train", "a blue car"]
    ext = TfidfExtractor().fit(spaced)
    assert ext.unspaced_share_ < _AUTO_UNSPACED_SHARE
    assert ext.analyzer_ == "word+char"


@pytest.mark.parametrize(
    "params, texts, word, char, analyzer",
    [
        # a disabled block keeps the "auto" one on, whatever the script
        ({"word_ngram_range": None}, ENGLISH, None, (2, 5), "char_wb"),
        (
            {"char_ngram_range": None},
            ["红色的衬衫", "蓝色的鞋子"],
            (1, 2),
            None,
            "char",
        ),
        # explicit ranges mean what they always meant on spaced text ...
        ({"char_ngram_range": (2, 4)}, ENGLISH, (1, 2), (2, 4), "char_wb"),
        ({"word_ngram_range": (1, 1)}, ENGLISH, (1, 1), (2, 5), "char_wb"),
        # ... and on unspaced text the "auto" word block is off
        (
            {"char_ngram_range": (2, 4)},
            ["红色的衬衫", "蓝色的鞋子"],
            None,
            (2, 4),
            "char",
        ),
        # both given: no detection decides anything
        (
            {"word_ngram_range": (1, 1), "char_ngram_range": (1, 2)},
            ["红色的衬衫", "蓝色的鞋子"],
            (1, 1),
            (1, 2),
            "char",
        ),
        (
            {
                "word_ngram_range": None,
                "char_ngram_range": (2, 3),
                "char_analyzer": "char",
            },
            ENGLISH,
            None,
            (2, 3),
            "char",
        ),
    ],
)
def test_tfidf_auto_resolves_only_what_is_auto(params, texts, word, char, analyzer):
    ext = TfidfExtractor(**params).fit(texts)
    assert (ext.word_ngram_range_, ext.char_ngram_range_) == (word, char)
    assert ext.char_analyzer_ == analyzer
    assert ext.analyzer_ == "+".join(
        k for k, r in (("word", word), ("char", char)) if r is not None
    )
    if char is not None:
        assert ext.char_vectorizer_.analyzer == analyzer
        assert ext.char_vectorizer_.ngram_range == char
    if word is not None:
        assert ext.word_vectorizer_.ngram_range == word


def test_tfidf_both_blocks_disabled_is_still_an_error():
    with pytest.raises(ParameterError, match="enable at least one block"):
        TfidfExtractor(word_ngram_range=None, char_ngram_range=None).fit(ENGLISH)


@pytest.mark.parametrize(
    "params, match",
    [
        ({"word_ngram_range": "automatic"}, "The 'word_ngram_range' parameter"),
        ({"char_ngram_range": "char"}, "The 'char_ngram_range' parameter"),
        ({"char_analyzer": "word"}, "The 'char_analyzer' parameter"),
        ({"char_ngram_range": (3, 1)}, "char_ngram_range must have min_n <= max_n"),
    ],
)
def test_tfidf_bad_auto_values_are_parameter_errors(params, match):
    with pytest.raises(ParameterError, match=match):
        TfidfExtractor(**params).fit(ENGLISH)


def test_tfidf_auto_choice_survives_pickle_and_mmfeat_save(chinese, tmp_path):
    texts, _ = chinese
    ext = TfidfExtractor().fit(texts[:100])
    want = ext.transform(texts[100:120])
    path = tmp_path / "tfidf.skops"
    mmfeat.save(ext, path)
    for loaded in (pickle.loads(pickle.dumps(ext)), mmfeat.load(path)):
        assert loaded.analyzer_ == "char" and loaded.char_analyzer_ == "char"
        assert loaded.char_ngram_range_ == (1, 3) and loaded.word_vectorizer_ is None
        assert loaded.unspaced_share_ == ext.unspaced_share_
        # the choice is kept, not made again on what is transformed
        assert (loaded.transform(texts[100:120]) != want).nnz == 0
        assert loaded.transform(ENGLISH).shape == (len(ENGLISH), ext.vocabulary_size_)
        np.testing.assert_array_equal(
            loaded.get_feature_names_out(), ext.get_feature_names_out()
        )


@pytest.mark.parametrize(
    "attr, value, match",
    [
        ("analyzer_", "word", "analyzer_='word'"),
        ("char_analyzer_", "char_wb", "char_analyzer_='char_wb'"),
        (
            "unspaced_share_",
            0.05,
            "char_analyzer_='char' but the parameters give 'char_wb'",
        ),
        ("unspaced_share_", float("nan"), "unspaced_share_=nan"),
        ("char_ngram_range_", (2, 3), r"char_ngram_range_=\(2, 3\)"),
        ("word_ngram_range_", (1, 2), r"word_ngram_range_=\(1, 2\)"),
    ],
)
def test_tfidf_auto_state_is_checked_on_load(chinese, attr, value, match):
    ext = TfidfExtractor().fit(chinese[0][:50])
    setattr(ext, attr, value)
    with pytest.raises(ModelStateError, match=match):
        pickle.loads(pickle.dumps(ext))


def test_tfidf_measures_the_script_only_when_something_is_auto(tmp_path):
    import math
    import pickle

    import mmfeat
    from mmfeat.exceptions import ModelStateError

    fixed = TfidfExtractor(word_ngram_range=(1, 2), char_ngram_range=None)
    fixed.fit(ENGLISH)
    assert math.isnan(fixed.unspaced_share_)  # nothing to decide
    loaded = mmfeat.load(mmfeat.save(fixed, tmp_path / "fixed.skops"))
    assert (loaded.transform(ENGLISH) != fixed.transform(ENGLISH)).nnz == 0
    auto = TfidfExtractor().fit(ENGLISH)
    assert auto.unspaced_share_ == 0.0
    auto.unspaced_share_ = float("nan")  # an edited file: auto must measure
    with pytest.raises(ModelStateError, match="NaN only when no parameter"):
        pickle.loads(pickle.dumps(auto))
