"""Audio features: MFCC and bag of audio words."""

from mmfeat.features.audio._boaw import BoAWExtractor
from mmfeat.features.audio._mfcc import MFCCExtractor, mel_filterbank

__all__ = ["BoAWExtractor", "MFCCExtractor", "mel_filterbank"]
