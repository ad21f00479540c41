"""Text features: TF-IDF."""

from mmfeat.features.text._tfidf import TfidfExtractor

__all__ = ["TfidfExtractor"]
