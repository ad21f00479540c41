"""Loaders for mmfeat's real datasets, a fetcher, and the bundled default.

Real data lives outside the package, in a data home resolved as: the
``data_home`` argument, else the ``MMFEAT_DATA_HOME`` environment variable,
else ``~/mmfeat_data`` (see :func:`get_data_home`). Each loader returns a
:class:`~sklearn.utils.Bunch` with a pandas ``frame`` (one row per record:
paths or texts, the label, the dataset's own split and metadata), a
``target`` aligned with it, ``target_names`` and ``DESCR`` (source, citation,
license). :func:`load_digits_images` needs no data home, nor do the
segmentation defaults :func:`load_texture_mosaics` and
:func:`load_stereo_depth` (built from scikit-image's bundled images).
"""

from mmfeat.datasets._av_digits import load_av_digits
from mmfeat.datasets._base import get_data_home
from mmfeat.datasets._digits import load_digits_images
from mmfeat.datasets._fashion import load_fashion_products
from mmfeat.datasets._fetch import fetch_fsdd
from mmfeat.datasets._fsdd import load_fsdd
from mmfeat.datasets._horses import load_weizmann_horses
from mmfeat.datasets._pascal import load_pascal_sentences
from mmfeat.datasets._textures import load_stereo_depth, load_texture_mosaics
from mmfeat.datasets._usps import load_usps

__all__ = [
    "fetch_fsdd",
    "get_data_home",
    "load_av_digits",
    "load_digits_images",
    "load_fashion_products",
    "load_fsdd",
    "load_pascal_sentences",
    "load_stereo_depth",
    "load_texture_mosaics",
    "load_usps",
    "load_weizmann_horses",
]
