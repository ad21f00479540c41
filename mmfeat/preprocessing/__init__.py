"""Preprocessing before features: data augmentation for images and audio.

The augmenters are imbalanced-learn *samplers*: ``fit_resample(X, y)``
appends augmented copies of chosen rows (the minority classes, or every row
``n_copies`` times). Inside :class:`imblearn.pipeline.Pipeline` they run
when the pipeline is fitted and are skipped when it predicts, so only the
training rows are augmented.
"""

from mmfeat.preprocessing._audio_augmenter import AudioAugmenter
from mmfeat.preprocessing._image_augmenter import ImageAugmenter

__all__ = ["AudioAugmenter", "ImageAugmenter"]
