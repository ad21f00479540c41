"""Ready-made models: the ones ``mmfeat fit`` and ``mmfeat demo`` build.

:func:`make_default_model` builds the multimodal classifier of
``mmfeat fit`` (and of :func:`mmfeat.workflows.fit_file`) from a mapping of
modality kinds to columns. :func:`make_av_digits_model` builds the
audio-visual digit models of ``mmfeat demo`` and of
``benchmarks/bench_accuracy_fusion.py``.
"""

from mmfeat.recipes._av_digits import AV_DIGITS_MODELS, make_av_digits_model
from mmfeat.recipes._default import (
    IMAGE_FEATURES,
    TEXT_FEATURES,
    make_default_model,
)

__all__ = [
    "AV_DIGITS_MODELS",
    "IMAGE_FEATURES",
    "TEXT_FEATURES",
    "make_av_digits_model",
    "make_default_model",
]
