"""Generation: text for a photo (titles, captions, tags) from paired data.

:class:`NearestNeighborCaptioner` transfers the caption the nearest training
photos agree on (consensus re-ranking, Devlin et al. 2015; plain 1-NN
transfer, Ordonez et al. 2011, with ``consensus=None``);
:class:`AttributeCaptioner` predicts structured attributes (gender, colour,
type) and fills a template; :class:`HybridCaptioner` re-ranks the neighbour
captions by the predicted attributes; :class:`TagPredictor` gives each photo
a set of tags with per-tag thresholds tuned out of fold. Their metrics
(BLEU, CIDEr-D, slot accuracy, candidate recall, :func:`generation_report`)
are in :mod:`mmfeat.evaluation`; ``mmfeat caption`` runs a saved captioner
over a table of photos.
"""

from mmfeat.generation._attributes import (
    AttributeCaptioner,
    TagPredictor,
    template_slots,
)
from mmfeat.generation._base import make_image_features
from mmfeat.generation._hybrid import HybridCaptioner
from mmfeat.generation._neighbors import NearestNeighborCaptioner

__all__ = [
    "AttributeCaptioner",
    "HybridCaptioner",
    "NearestNeighborCaptioner",
    "TagPredictor",
    "make_image_features",
    "template_slots",
]
