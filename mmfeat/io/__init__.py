"""Reading images and audio: single items and columns of items.

The resource limits every read is held to are exported with their defaults
(see README.md, "Security model").
"""

from mmfeat.io._audio import (
    DEFAULT_MAX_AUDIO_FILE_BYTES,
    DEFAULT_MAX_DURATION,
    MAX_CHANNELS,
    MAX_RESAMPLE_FACTOR,
    SAMPLE_RATE_RANGE,
    AudioReader,
    read_audio,
)
from mmfeat.io._gpu_decode import GpuJpegDecoder
from mmfeat.io._images import (
    DEFAULT_MAX_PIXELS,
    SUPPORTED_FORMATS,
    ImageReader,
    check_image_header,
    read_image,
    read_image_stack,
    sniff_image_format,
    validate_image_array,
)
from mmfeat.utils._items import DEFAULT_MAX_FILE_BYTES

__all__ = [
    "AudioReader",
    "DEFAULT_MAX_AUDIO_FILE_BYTES",
    "DEFAULT_MAX_DURATION",
    "DEFAULT_MAX_FILE_BYTES",
    "DEFAULT_MAX_PIXELS",
    "GpuJpegDecoder",
    "ImageReader",
    "MAX_CHANNELS",
    "MAX_RESAMPLE_FACTOR",
    "SAMPLE_RATE_RANGE",
    "SUPPORTED_FORMATS",
    "check_image_header",
    "read_audio",
    "read_image",
    "read_image_stack",
    "sniff_image_format",
    "validate_image_array",
]
