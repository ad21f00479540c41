"""Reading images and audio: single items and columns of items."""

from mmfeat.io._audio import AudioReader, read_audio
from mmfeat.io._images import DEFAULT_MAX_PIXELS, ImageReader, read_image

__all__ = [
    "AudioReader",
    "DEFAULT_MAX_PIXELS",
    "ImageReader",
    "read_audio",
    "read_image",
]
