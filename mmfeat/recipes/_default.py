"""The multimodal classifier ``mmfeat fit`` builds, from a mapping of columns."""

from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import FeatureUnion, make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import LinearSVC

from mmfeat.exceptions import ParameterError

__all__ = ["IMAGE_FEATURES", "TEXT_FEATURES", "make_default_model"]

#: Image descriptors :func:`make_default_model` knows (``"bovw"`` is
#: accepted as another name of ``"sift"``).
IMAGE_FEATURES = ("hog", "sift", "color", "cnn", "cnn-onnx")
#: Text features :func:`make_default_model` knows.
TEXT_FEATURES = ("auto", "word", "char")
_IMAGE_ALIASES = {"bovw": "sift"}
_CLASSIFIERS = ("logistic", "linear-svm", "random-forest")
_FUSIONS = ("early", "late", "stacking", "deep", "auto")


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
        CNNExtractor,
        ColorHistogramExtractor,
        HOGExtractor,
        SIFTBoVWExtractor,
    )

    make = {
        "hog": lambda: HOGExtractor(image_size=(64, 64), on_error="missing"),
        "color": lambda: ColorHistogramExtractor(
            image_size=(64, 64), on_error="missing"
        ),
        "sift": lambda: SIFTBoVWExtractor(
            n_words=256,
            image_size=(128, 128),
            pyramid_levels=(1, 2),
            random_state=random_state,
            on_error="missing",
        ),
        # the built-in network, trained on the labels: useful offline (a
        # random or ImageNet network needs torchvision and a download)
        "cnn": lambda: CNNExtractor(
            backbone="simple",
            image_size=(64, 64),
            fine_tune_epochs=5,
            random_state=random_state,
            on_error="missing",
        ),
    }
    # the same network exported to ONNX: scored by onnxruntime, faster on a
    # CPU, and on machines without torch
    make["cnn-onnx"] = lambda: make["cnn"]().set_params(inference="onnx")
    parts = [(name, make[name]()) for name in names]
    return parts[0][1] if len(parts) == 1 else FeatureUnion(parts)


def _text_features(kind):
    from mmfeat.features.text import TfidfExtractor

    if kind == "char":
        # character 1- to 3-grams across spaces: the words of a script
        # without spaces are one or two characters long
        return TfidfExtractor(
            word_ngram_range=None,
            char_ngram_range=(1, 3),
            char_analyzer="char",
            on_error="missing",
        )
    if kind == "word":
        return TfidfExtractor(
            word_ngram_range=(1, 2), char_ngram_range=None, on_error="missing"
        )
    # "auto": the extractor picks words or characters from the texts it is
    # fitted on (analyzer_ tells which)
    return TfidfExtractor(on_error="missing")


def _modality_features(kind, image_features, text_features, random_state):
    if kind == "image":
        return _image_features(image_features, random_state), True
    if kind == "text":
        return _text_features(text_features), False
    from mmfeat.features.audio import MFCCExtractor

    return MFCCExtractor(sr=16000, n_mfcc=20, deltas=1, on_error="missing"), True


def _check_image_features(image_features):
    if isinstance(image_features, str):
        image_features = [image_features]
    try:
        names = [_IMAGE_ALIASES.get(f, f) for f in image_features]
    except TypeError:
        names = None
    if (
        not names
        or any(f not in IMAGE_FEATURES for f in names)
        or len(set(names)) != len(names)
    ):
        shown = list(image_features) if names is not None else image_features
        raise ParameterError(
            f"image_features must be distinct names among {IMAGE_FEATURES}; got {shown}"
        )
    return tuple(names)


def make_default_model(
    columns,
    *,
    fusion="late",
    classifier="logistic",
    image_features=("hog", "color"),
    text_features="auto",
    random_state=0,
    n_jobs=None,
):
    """A multimodal classifier with sensible extractors for each column.

    Parameters
    ----------
    columns : dict of str to str
        Modality kind (``"image"``, ``"text"``, ``"audio"``) to the column
        that holds it: paths for images and audio, strings for text.
    fusion : {"early", "late", "stacking", "deep", "auto"}, default="late"
        ``"early"``: the modalities' features are fused by a
        :class:`~mmfeat.fusion.MultimodalFuser` (L2-normalised blocks) and
        one classifier learns from them. ``"late"``: one classifier per
        modality, their probabilities averaged with weights learned on
        out-of-fold probabilities (:class:`~mmfeat.fusion.LateFusionClassifier`
        with ``weights="learn"``, 3 folds; one modality has weight 1), so a
        weak modality gets a small weight instead of dragging the fusion
        down. ``"stacking"``: a
        logistic regression learns from the modalities' out-of-fold
        probabilities (:class:`~mmfeat.fusion.ModalityStackingClassifier`,
        non-negative coefficients). ``"deep"``: one network over the
        modalities' features (:class:`~mmfeat.fusion.NeuralFusionClassifier`;
        needs torch). ``"auto"``: :class:`~mmfeat.fusion.FusionSearchCV`
        chooses among each modality alone, late fusion (equal and learned
        weights), stacking, early fusion and, with torch, deep fusion, by a
        3-fold cross-validation inside the training rows.
    classifier : {"logistic", "linear-svm", "random-forest"}, default="logistic"
        The per-modality (or the early-fusion) classifier.
    image_features : sequence of str, default=("hog", "color")
        Image descriptors among ``"hog"``, ``"sift"``, ``"color"``,
        ``"cnn"`` and ``"cnn-onnx"``, concatenated: HOG and an HSV colour
        histogram at 64x64; a SIFT bag of 256 visual words with a 2-level
        pyramid (``"bovw"`` is another name for it); the built-in CNN at
        64x64 trained for 5 epochs on the labels (needs torch);
        ``"cnn-onnx"``, that CNN exported to ONNX and scored with
        onnxruntime (fitting needs torch and ``mmfeat[onnx]``, scoring
        only onnxruntime and onnx).
    text_features : {"auto", "word", "char"}, default="auto"
        TF-IDF of word 1- and 2-grams (``"word"``), or of character 1- to
        3-grams across spaces (``"char"``: for Chinese, Japanese, Thai).
        ``"auto"``: the :class:`~mmfeat.features.text.TfidfExtractor`
        chooses when it is fitted, characters for texts in scripts written
        without spaces, else words (its ``analyzer_`` says which).
    random_state : int, default=0
        Seed of the vocabulary, the network, the forests and the folds.
    n_jobs : int, default=None
        Parallel modality fits.

    Returns
    -------
    model : estimator
        Unfitted. Every extractor has ``on_error="missing"``, so an
        unreadable file makes its modality missing for that row instead of
        stopping the fit; the late-fusion and stacking models keep
        ``all_missing="raise"``: a row with no usable modality at all is an
        error at predict time (batch scoring reports it instead).

    See Also
    --------
    mmfeat.workflows.fit_file : Fit this model on a records file and save it.

    Examples
    --------
    >>> model = make_default_model({"image": "photo", "text": "title"})
    >>> type(model).__name__, [name for name, _, _ in model.estimators]
    ('LateFusionClassifier', ['image', 'text'])
    >>> model.weights
    'learn'
    """
    from mmfeat.fusion import (
        FusionSearchCV,
        LateFusionClassifier,
        ModalityStackingClassifier,
        NeuralFusionClassifier,
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
    image_features = _check_image_features(image_features)
    if text_features not in TEXT_FEATURES:
        raise ParameterError(
            f"text_features must be one of {TEXT_FEATURES}; got {text_features!r}"
        )

    def features(kind):
        return _modality_features(kind, image_features, text_features, random_state)

    if fusion == "early":
        blocks = {}
        for kind, col in columns.items():
            feats, dense = features(kind)
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
        feats, dense = features(kind)
        steps = [feats, StandardScaler()] if dense else [feats]
        steps.append(_classifier(classifier, random_state, sparse=not dense))
        estimators.append((kind, make_pipeline(*steps), col))
    if fusion == "late":
        # one modality: nothing to weigh, no out-of-fold fits
        weights = "learn" if len(estimators) > 1 else None
        return LateFusionClassifier(estimators, weights=weights, cv=3, n_jobs=n_jobs)
    if fusion == "auto":
        return FusionSearchCV(
            estimators, cv=3, random_state=random_state, n_jobs=n_jobs
        )
    if fusion == "deep":
        return NeuralFusionClassifier(
            [(name, est[:-1], col) for name, est, col in estimators],
            random_state=random_state,
            n_jobs=n_jobs,
        )
    return ModalityStackingClassifier(
        estimators,
        n_jobs=n_jobs,
    )
