import re

import pytest

from mmfeat.utils._docstrings import SHARED_DOC, fill_doc
from mmfeat.utils.discovery import all_estimators


def test_fill_doc_replaces_known_markers_and_keeps_literal_percent():
    @fill_doc(extra="the extra text")
    class Thing:
        """Ten %% of %(extra)s and 99.9% of this.

        Parameters
        ----------
        %(on_error_items)s
        """

    assert "the extra text" in Thing.__doc__
    assert "99.9% of this" in Thing.__doc__ and "Ten %% of" in Thing.__doc__
    assert SHARED_DOC["on_error_items"] in Thing.__doc__


def test_an_unknown_marker_fails_at_import_time():
    with pytest.raises(KeyError, match="on_eror"):

        @fill_doc
        class Typo:
            """%(on_eror)s"""


@pytest.mark.parametrize("name, cls", all_estimators())
def test_no_public_estimator_shows_an_unfilled_marker(name, cls):
    assert not re.search(r"%\(\w+\)s", cls.__doc__ or ""), name
