"""Feature extractors, one subpackage per modality."""
