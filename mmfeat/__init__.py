"""mmfeat: multimodal features and fusion for image recognition, the scikit-learn way.

Subpackages
-----------
io
    Robust image and audio readers.
datasets
    Loaders for the real datasets and scikit-learn's bundled digits.
features
    Image, audio and text extractors (HOG, SIFT bag of words, colour
    histograms, CNN embeddings, MFCC, bag of audio words, TF-IDF).
fusion
    Feature-level fusion (``MultimodalFuser``), late fusion and stacking.
preprocessing
    Augmenting samplers for images and audio.
evaluation
    Fusion reports, ablations and plots.
scoring
    Batch scoring of record files (``mmfeat score``), on one machine or a
    Dask cluster.
retrieval
    Same-modality and cross-modal retrieval, and ranking metrics.
quality
    Data quality: image issues, duplicates and train/test leaks, wrong
    labels and mismatched pairs (from every modality), learning curves.
utils
    Estimator discovery and mmfeat's estimator checks.

:func:`save` and :func:`load` store fitted models as skops files, loaded
without unpickling (:func:`model_metadata` reads their recorded versions);
:func:`parallel_backend` runs batch scoring and ``n_jobs`` work on a Dask
cluster. :func:`collect_item_errors` reports the items that extractors
refused (``on_error="missing"``), at any ``n_jobs``.
"""

from mmfeat._persistence import DEFAULT_MAX_BYTES, load, model_metadata, save
from mmfeat.exceptions import InputError, MmfeatError, ParameterError
from mmfeat.utils._item_errors import ItemError, ItemErrorLog, collect_item_errors

__version__ = "0.1.0"

__all__ = [
    "DEFAULT_MAX_BYTES",
    "InputError",
    "ItemError",
    "ItemErrorLog",
    "MmfeatError",
    "ParameterError",
    "__version__",
    "collect_item_errors",
    "load",
    "model_metadata",
    "parallel_backend",
    "save",
]


def __getattr__(name):
    # imported on first use: it pulls in the scoring machinery
    if name == "parallel_backend":
        from mmfeat.scoring import parallel_backend

        return parallel_backend
    raise AttributeError(f"module 'mmfeat' has no attribute {name!r}")
