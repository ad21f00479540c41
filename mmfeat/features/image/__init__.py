"""Image descriptors: HOG, SIFT bag of visual words, colour histograms."""

from mmfeat.features.image._hog import HOGExtractor, hog_visualization

__all__ = ["HOGExtractor", "hog_visualization"]
