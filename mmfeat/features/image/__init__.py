"""Image descriptors: HOG, SIFT bag of visual words, colour histograms, CNN features.

:class:`CNNExtractor` imports without torch (an optional extra,
``mmfeat[cnn]``); torch is imported when it is fitted.
"""

from mmfeat.features.image._cnn import CNNExtractor
from mmfeat.features.image._color import ColorHistogramExtractor
from mmfeat.features.image._hog import HOGExtractor, hog_visualization
from mmfeat.features.image._sift_bovw import SIFTBoVWExtractor, sift_descriptors

__all__ = [
    "CNNExtractor",
    "ColorHistogramExtractor",
    "HOGExtractor",
    "SIFTBoVWExtractor",
    "hog_visualization",
    "sift_descriptors",
]
