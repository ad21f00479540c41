"""Retrieval: similar items of one modality, and across modalities.

:class:`NearestNeighborRetriever` answers "items like this one" over any
mmfeat transformer; :class:`CrossModalRetriever` learns a space shared by
two modalities (CCA, semantic matching, or both) for text -> image and
image -> text queries, and :class:`SharedSpaceEmbedder` makes one modality's
vectors in that space a transformer (a captioner's photo features); the
metrics score rankings against labels.
"""

from mmfeat.retrieval._crossmodal import CrossModalRetriever, SharedSpaceEmbedder
from mmfeat.retrieval._metrics import (
    mean_average_precision,
    precision_at_k,
    recall_at_k,
)
from mmfeat.retrieval._neighbors import NearestNeighborRetriever

__all__ = [
    "CrossModalRetriever",
    "NearestNeighborRetriever",
    "SharedSpaceEmbedder",
    "mean_average_precision",
    "precision_at_k",
    "recall_at_k",
]
