"""The audio-visual digit models of ``mmfeat demo`` and the fusion benchmark."""

from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC

from mmfeat.exceptions import ParameterError

__all__ = ["AV_DIGITS_MODELS", "make_av_digits_model"]

#: What :func:`make_av_digits_model` builds.
AV_DIGITS_MODELS = ("image", "audio", "early", "late", "stacking")


def _hog(n_jobs):
    from mmfeat.features.image import HOGExtractor

    return HOGExtractor(pixels_per_cell=(4, 4), cells_per_block=(2, 2), n_jobs=n_jobs)


def _mfcc(n_jobs):
    from mmfeat.features.audio import MFCCExtractor

    return MFCCExtractor(
        sr=8000,
        n_fft=256,
        hop_length=64,
        n_mels=40,
        n_mfcc=20,
        deltas=2,
        pooling=("mean", "std", "min", "max"),
        n_jobs=n_jobs,
    )


def _svc(random_state):
    return SVC(C=10, random_state=random_state)


def make_av_digits_model(kind="late", *, weights=None, n_jobs=None, random_state=0):
    """A model of :func:`~mmfeat.datasets.load_av_digits`' ``image`` and ``audio``.

    HOG of the 16x16 USPS digit (4x4-pixel cells, 2x2-cell blocks) and MFCC
    of the FSDD recording at 8 kHz (20 coefficients of 40 mel bands, with
    deltas and delta-deltas, pooled by mean, std, min and max), each scaled
    and classified by an RBF SVC (``C=10``), alone or fused.

    Parameters
    ----------
    kind : {"image", "audio", "early", "late", "stacking"}, default="late"
        ``"image"`` or ``"audio"``: that modality alone (a Pipeline).
        ``"early"``: both blocks standardised by a
        :class:`~mmfeat.fusion.MultimodalFuser`, one SVC. ``"late"``: a
        :class:`~mmfeat.fusion.LateFusionClassifier` of the two pipelines.
        ``"stacking"``: a :class:`~mmfeat.fusion.ModalityStackingClassifier`
        (its default non-negative logistic meta-model, 3 folds).
    weights : None, dict or "learn", default=None
        The late fusion's weights (equal by default); ``"learn"`` learns them
        on 3 out-of-fold splits.
    n_jobs : int, default=None
        Extractor threads and parallel modality fits.
    random_state : int, default=0
        Seed of the SVCs.

    Returns
    -------
    model : estimator
        Unfitted. Each recording is paired with several images: pass
        ``groups=X["audio"]`` to the fusion models' ``fit`` so that one
        recording stays in one fold.

    Examples
    --------
    >>> type(make_av_digits_model("stacking")).__name__
    'ModalityStackingClassifier'
    >>> [name for name, _ in make_av_digits_model("image").steps]
    ['hogextractor', 'standardscaler', 'svc']
    """
    from mmfeat.fusion import (
        LateFusionClassifier,
        ModalityStackingClassifier,
        make_fuser,
    )

    if kind not in AV_DIGITS_MODELS:
        raise ParameterError(f"kind must be one of {AV_DIGITS_MODELS}; got {kind!r}")

    def alone(modality):
        feats = _hog(n_jobs) if modality == "image" else _mfcc(n_jobs)
        return make_pipeline(feats, StandardScaler(), _svc(random_state))

    if kind in ("image", "audio"):
        return alone(kind)
    if kind == "early":
        return make_pipeline(
            make_fuser(
                {"image": _hog(n_jobs), "audio": _mfcc(n_jobs)}, block_norm="standard"
            ),
            _svc(random_state),
        )
    modalities = [(m, alone(m), m) for m in ("image", "audio")]
    if kind == "late":
        return LateFusionClassifier(modalities, weights=weights, cv=3, n_jobs=n_jobs)
    return ModalityStackingClassifier(modalities, cv=3, n_jobs=n_jobs)
