"""Image descriptors: HOG, SIFT bag of visual words, colour histograms, CNN features.

:class:`ImageQuality` scores each image's sharpness, exposure, contrast,
colourfulness, entropy and size (what :mod:`mmfeat.quality` flags issues
from; usable as features too).

:class:`CNNExtractor` imports without torch (an optional extra,
``mmfeat[cnn]``); torch is imported when it is fitted.
"""

from mmfeat.features.image._cnn import CNNExtractor
from mmfeat.features.image._color import ColorHistogramExtractor
from mmfeat.features.image._hog import HOGExtractor, hog_visualization
from mmfeat.features.image._quality import QUALITY_SCORES, ImageQuality
from mmfeat.features.image._sift_bovw import SIFTBoVWExtractor, sift_descriptors

__all__ = [
    "QUALITY_SCORES",
    "CNNExtractor",
    "ColorHistogramExtractor",
    "HOGExtractor",
    "ImageQuality",
    "SIFTBoVWExtractor",
    "hog_visualization",
    "sift_descriptors",
]
