"""Segmentation: pixel features, trainable pixel and superpixel segmenters.

Masks are integer label images: labels >= 1 are classes and 0 means
unlabelled (scikit-image's convention), so sparse scribbles train as well as
full masks.
"""

from mmfeat.segmentation._features import (
    PixelFeatures,
    pixel_feature_names,
    pixel_features,
    skimage_sigmas,
)
from mmfeat.segmentation._io import encode_png, read_channel_map, read_mask
from mmfeat.segmentation._pixel import PixelSegmenter, context_features
from mmfeat.segmentation._superpixel import SuperpixelSegmenter
from mmfeat.segmentation._texture import TextureEnergy

__all__ = [
    "PixelFeatures",
    "PixelSegmenter",
    "SuperpixelSegmenter",
    "TextureEnergy",
    "context_features",
    "encode_png",
    "pixel_feature_names",
    "pixel_features",
    "read_channel_map",
    "read_mask",
    "skimage_sigmas",
]
