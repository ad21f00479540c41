"""TfidfExtractor overhead over scikit-learn's TfidfVectorizer.

Run: ``python benchmarks/bench_tfidf.py [--repeat N] [--json FILE] [--large]``.

Pascal Sentences captions (1,000 items, 5 captions joined) and fashion
product titles (2,946), fit_transform with word 1-2 grams and sublinear tf,
once with a few missing texts (which TfidfVectorizer cannot represent: it
gets them as empty strings). Output equality is checked. Target: mmfeat at
most 1.1x the time of TfidfVectorizer (ratio >= 0.91 in this table).
"""

import numpy as np
from _common import median_time, parser, report
from sklearn.feature_extraction.text import TfidfVectorizer

from mmfeat.datasets import load_fashion_products, load_pascal_sentences
from mmfeat.features.text import TfidfExtractor


def main():
    args = parser(__doc__).parse_args()
    corpora = {
        "Pascal captions": load_pascal_sentences().frame["text"].tolist(),
        "fashion titles": load_fashion_products().frame["title"].tolist(),
    }
    rows = []
    for name, texts in corpora.items():
        if args.large:
            texts = texts * 10
        with_missing = list(texts)
        with_missing[::50] = [None] * len(with_missing[::50])
        blank = ["" if t is None else t for t in with_missing]
        ours = TfidfExtractor(word_ngram_range=(1, 2), char_ngram_range=None)
        ref = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True)
        np.testing.assert_allclose(
            ours.fit_transform(texts).toarray(),
            ref.fit_transform(texts).toarray(),
            atol=1e-12,
        )
        for label, a, b in [("", texts, texts), (", 2% missing", with_missing, blank)]:
            t_ours = median_time(lambda a=a: ours.fit_transform(a), repeat=args.repeat)
            t_ref = median_time(lambda b=b: ref.fit_transform(b), repeat=args.repeat)
            rows.append(
                (f"{name}{label}", t_ours, t_ref, len(texts), "TfidfVectorizer")
            )
    report("TF-IDF fit_transform (texts/s)", rows, args, unit="texts/s")


if __name__ == "__main__":
    main()
