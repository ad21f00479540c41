"""Image descriptors: HOG, SIFT bag of visual words, colour histograms."""

from mmfeat.features.image._color import ColorHistogramExtractor
from mmfeat.features.image._hog import HOGExtractor, hog_visualization
from mmfeat.features.image._sift_bovw import SIFTBoVWExtractor, sift_descriptors

__all__ = [
    "ColorHistogramExtractor",
    "HOGExtractor",
    "SIFTBoVWExtractor",
    "hog_visualization",
    "sift_descriptors",
]
