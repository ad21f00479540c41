"""Shared fixtures: seeded RNG, the real-data home, and tiny synthetic items."""

import os
from pathlib import Path

import numpy as np
import pytest

_REPO = Path(__file__).resolve().parents[1]
_DEFAULT_SHARED = _REPO.parent / "shared" / "data"


def _shared_data_home():
    env = os.environ.get("MMFEAT_DATA_HOME")
    return Path(env) if env else _DEFAULT_SHARED


@pytest.fixture(scope="session")
def data_home():
    """The real-data home (``MMFEAT_DATA_HOME`` or ``../shared/data``).

    In CI (``CI`` set) a missing data home is a failure; elsewhere the test is
    skipped with the reason.
    """
    home = _shared_data_home()
    if not (home / "fsdd").is_dir():
        msg = (
            f"real data not found at {home}: set MMFEAT_DATA_HOME to the folder "
            "holding fsdd/, usps/, fashion_products_sample/, pascal_sentences_text/"
        )
        if os.environ.get("CI"):
            pytest.fail(msg)
        pytest.skip(msg)
    return home


@pytest.fixture
def rng():
    return np.random.default_rng(0)
