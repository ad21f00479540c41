"""mmfeat: multimodal features and fusion for image recognition, the scikit-learn way.

Subpackages
-----------
io
    Robust image and audio readers.
datasets
    Loaders for the real datasets and scikit-learn's bundled digits.
utils
    Estimator discovery and mmfeat's estimator checks.

:func:`save` and :func:`load` store fitted models as skops files, loaded
without unpickling (:func:`model_metadata` reads their recorded versions).
"""

from mmfeat._persistence import load, model_metadata, save
from mmfeat.exceptions import InputError, MmfeatError, ParameterError

__version__ = "0.1.0"

__all__ = [
    "InputError",
    "MmfeatError",
    "ParameterError",
    "__version__",
    "load",
    "model_metadata",
    "save",
]
