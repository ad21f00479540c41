"""Sensible default multimodal models, as ``mmfeat fit`` builds them."""

from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import FeatureUnion, make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import LinearSVC

from mmfeat.exceptions import ParameterError

__all__ = ["IMAGE_FEATURES", "make_default_model"]

IMAGE_FEATURES = ("hog", "color", "bovw")
_CLASSIFIERS = ("logistic", "linear-svm", "random-forest")
_FUSIONS = ("early", "late", "stacking")


def _classifier(name, random_state, *, sparse=False):
    if name == "logistic":
        return LogisticRegression(C=10.0 if sparse else 1.0, max_iter=2000)
    if name == "linear-svm":
        return LinearSVC(C=1.0 if sparse else 0.01, random_state=random_state)
    return RandomForestClassifier(
        n_estimators=300, min_samples_leaf=1, random_state=random_state
    )


def _image_features(names, random_state):
    from mmfeat.features.image import (
        ColorHistogramExtractor,
        HOGExtractor,
        SIFTBoVWExtractor,
    )

    make = {
        "hog": lambda: HOGExtractor(image_size=(64, 64), on_error="missing"),
        "color": lambda: ColorHistogramExtractor(
            image_size=(64, 64), on_error="missing"
        ),
        "bovw": lambda: SIFTBoVWExtractor(
            n_words=256,
            image_size=(128, 128),
            pyramid_levels=(1, 2),
            random_state=random_state,
            on_error="missing",
        ),
    }
    parts = [(name, make[name]()) for name in names]
    return parts[0][1] if len(parts) == 1 else FeatureUnion(parts)


def _modality_features(kind, image_features, random_state):
    if kind == "image":
        return _image_features(image_features, random_state), True
    if kind == "text":
        from mmfeat.features.text import TfidfExtractor

        return TfidfExtractor(min_df=1, on_error="missing"), False
    from mmfeat.features.audio import MFCCExtractor

    return MFCCExtractor(sr=16000, n_mfcc=20, deltas=1, on_error="missing"), True


def make_default_model(
    columns,
    *,
    fusion="late",
    classifier="logistic",
    image_features=("hog", "color"),
    random_state=0,
    n_jobs=None,
):
    """A multimodal classifier with sensible extractors for each column.

    Parameters
    ----------
    columns : dict of str to str
        Modality kind (``"image"``, ``"text"``, ``"audio"``) to the column
        that holds it: paths for images and audio, strings for text.
    fusion : {"early", "late", "stacking"}, default="late"
        ``"early"``: the modalities' features are fused by a
        :class:`~mmfeat.fusion.MultimodalFuser` (L2-normalised blocks) and
        one classifier learns from them. ``"late"``: one classifier per
        modality, probabilities averaged
        (:class:`~mmfeat.fusion.LateFusionClassifier`). ``"stacking"``: a
        logistic regression learns from the modalities' out-of-fold
        probabilities (:class:`~mmfeat.fusion.ModalityStackingClassifier`).
    classifier : {"logistic", "linear-svm", "random-forest"}, default="logistic"
        The per-modality (or the early-fusion) classifier.
    image_features : sequence of {"hog", "color", "bovw"}, default=("hog", "color")
        Image descriptors, concatenated: HOG and an HSV colour histogram at
        64x64, and a SIFT bag of 256 visual words with a 2-level pyramid.
    random_state : int, default=0
        Seed of the vocabulary, the forests and the folds.
    n_jobs : int, default=None
        Parallel modality fits.

    Returns
    -------
    model : estimator
        Unfitted. Every extractor has ``on_error="missing"``, so an
        unreadable file makes its modality missing for that row instead of
        stopping the fit.

    Examples
    --------
    >>> model = make_default_model({"image": "photo", "text": "title"})
    >>> type(model).__name__, [name for name, _, _ in model.estimators]
    ('LateFusionClassifier', ['image', 'text'])
    """
    from mmfeat.fusion import (
        LateFusionClassifier,
        ModalityStackingClassifier,
        make_fuser,
    )

    if not isinstance(columns, dict) or not columns:
        raise ParameterError(
            "columns must map at least one of 'image', 'text', 'audio' to a column"
        )
    unknown = set(columns) - {"image", "text", "audio"}
    if unknown:
        raise ParameterError(
            f"unknown modality kind(s) {sorted(unknown)}; use 'image', 'text', 'audio'"
        )
    if fusion not in _FUSIONS:
        raise ParameterError(f"fusion must be one of {_FUSIONS}; got {fusion!r}")
    if classifier not in _CLASSIFIERS:
        raise ParameterError(
            f"classifier must be one of {_CLASSIFIERS}; got {classifier!r}"
        )
    image_features = tuple(image_features)
    bad = [f for f in image_features if f not in IMAGE_FEATURES]
    if bad or not image_features or len(set(image_features)) != len(image_features):
        raise ParameterError(
            f"image_features must be distinct names among {IMAGE_FEATURES}; got "
            f"{list(image_features)}"
        )
    if fusion == "early":
        blocks = {}
        for kind, col in columns.items():
            feats, dense = _modality_features(kind, image_features, random_state)
            blocks[kind] = (
                make_pipeline(feats, StandardScaler()) if dense else feats,
                col,
            )
        sparse = "text" in columns
        return make_pipeline(
            make_fuser(blocks, block_norm="l2", n_jobs=n_jobs),
            _classifier(classifier, random_state, sparse=sparse),
        )
    estimators = []
    for kind, col in columns.items():
        feats, dense = _modality_features(kind, image_features, random_state)
        steps = [feats, StandardScaler()] if dense else [feats]
        steps.append(_classifier(classifier, random_state, sparse=not dense))
        estimators.append((kind, make_pipeline(*steps), col))
    if fusion == "late":
        return LateFusionClassifier(estimators, n_jobs=n_jobs)
    return ModalityStackingClassifier(
        estimators,
        final_estimator=LogisticRegression(C=1.0, max_iter=2000),
        n_jobs=n_jobs,
    )
