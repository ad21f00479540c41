"""Looking inside a fitted fusion model through public names.

Evaluation, scoring and the command line ask a model what it is made of;
these functions are the one place that knows how (until the modality
protocol of the architecture issue replaces them).
"""

from mmfeat.fusion._base import BaseModalityEnsemble
from mmfeat.fusion._fuser import MultimodalFuser
from mmfeat.fusion._modality import split_modality_model

__all__ = ["find_fuser", "is_modality_ensemble", "split_modality_model", "unwrap_model"]


def unwrap_model(model):
    """The model a fitted search CV refitted (``best_estimator_``), else ``model``."""
    return getattr(model, "best_estimator_", model)


def is_modality_ensemble(model):
    """True for the model-level ensembles (late fusion, stacking)."""
    return isinstance(model, BaseModalityEnsemble)


def find_fuser(model):
    """The :class:`MultimodalFuser` of ``model`` or of its pipeline, or None."""
    steps = getattr(model, "steps", None)
    if steps is None:
        return model if isinstance(model, MultimodalFuser) else None
    for _, step in steps:
        if isinstance(step, MultimodalFuser):
            return step
    return None
