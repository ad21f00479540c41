"""Docstring text shared by several estimators, written once.

Estimators put ``%(name)s`` markers in their docstring and decorate the
class with :func:`fill_doc`; only the known markers are replaced, so a
literal ``%`` in a docstring needs no escaping.
"""

import re

__all__ = ["SHARED_DOC", "fill_doc"]

SHARED_DOC = {
    "on_error_features": """on_error : {"raise", "missing"}, default="raise"
        What a bad item does (an unreadable, missing or corrupt file, a value
        of the wrong type): ``"raise"`` raises :class:`~mmfeat.InputError`
        naming its row, source and reason; ``"missing"`` makes it a NaN row
        of the output and reports it to :func:`mmfeat.collect_item_errors`
        (at any ``n_jobs``).""",
    "on_error_items": """on_error : {"raise", "missing"}, default="raise"
        What a bad item does (an unreadable, missing or corrupt file, a value
        of the wrong type): ``"raise"`` raises :class:`~mmfeat.InputError`
        naming its row, source and reason; ``"missing"`` makes it ``None``
        (a missing item) and reports it to :func:`mmfeat.collect_item_errors`
        (at any ``n_jobs``).""",
}

_MARKER = re.compile(r"%\((\w+)\)s")


def fill_doc(obj=None, /, **fragments):
    """Replace ``%(name)s`` markers in a docstring with shared text.

    Use as ``@fill_doc`` (the fragments of :data:`SHARED_DOC`) or
    ``@fill_doc(**more)`` (those and ``more``). An unknown marker raises
    ``KeyError`` at import time, so a typo cannot reach the documentation.
    """
    table = {**SHARED_DOC, **fragments}

    def apply(target):
        doc = target.__doc__
        if doc:
            target.__doc__ = _MARKER.sub(lambda m: table[m.group(1)], doc)
        return target

    return apply if obj is None else apply(obj)
