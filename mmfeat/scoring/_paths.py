"""Paths in a records table: joined to the root, or confined under it.

One implementation for everything that reads files a records table names:
the scorer, :func:`~mmfeat.workflows.fit_file` and
:func:`~mmfeat.workflows.extract_file`. The root is resolved once per
column, not once per item.
"""

import os

from mmfeat.exceptions import InputError

__all__ = ["confine_path", "resolve_path", "resolve_paths"]


def resolve_path(item, root):
    """``item`` joined to ``root`` when it is a relative path string."""
    if isinstance(item, str) and item and not os.path.isabs(item):
        return os.path.join(root, item)
    return item


def _confined(item, root, real_root):
    """The real path of ``item`` under ``real_root``, or raise InputError."""
    if isinstance(item, os.PathLike):
        item = os.fspath(item)
    if not isinstance(item, str) or not item:
        return item
    try:
        real = os.path.realpath(os.path.join(real_root, item))
        inside = os.path.commonpath([real, real_root]) == real_root
    except ValueError as exc:  # a NUL byte, or another drive on Windows
        raise InputError(f"not a usable path ({exc})", source=item) from None
    if not inside:
        raise InputError(
            f"path {item!r} resolves outside the root {os.fspath(root)!r} (symlinks "
            "followed); with confine_to_root only files under the root are "
            "read: move the file under the root or give another root "
            "(--root)",
            source=item,
        )
    return real


def confine_path(item, root):
    """The real path of a path item that lies under ``root``.

    ``item`` (relative to ``root``, or absolute) is resolved with
    :func:`os.path.realpath`, symlinks followed, and must be inside
    ``os.path.realpath(root)``. Items that are not paths (missing values,
    raw bytes, arrays, an empty string) come back unchanged.

    Raises
    ------
    InputError
        If the path resolves outside ``root``; nothing is opened.
    """
    return _confined(item, root, os.path.realpath(root))


def resolve_paths(items, root, *, confine=False):
    """A column of path items joined to ``root``, or confined under it.

    Parameters
    ----------
    items : sequence
        The column's cells: path strings (relative to ``root`` or absolute),
        missing values, bytes or arrays (left as they are).
    root : str or path-like
        The folder relative paths are relative to.
    confine : bool, default=False
        Resolve every path with :func:`os.path.realpath` (symlinks followed)
        and refuse one that lies outside the resolved ``root``, as
        :func:`confine_path` does; ``root`` is resolved once for the column.

    Returns
    -------
    paths : list
        One entry per item; a refused item is ``None`` (never opened).
    refused : list of (int, InputError)
        Position in ``items`` and the reason of each refused item, in order.
        Always empty without ``confine``.
    """
    root = os.fspath(root)
    if not confine:
        return [resolve_path(v, root) for v in items], []
    real_root = os.path.realpath(root)
    out, refused = [], []
    for i, item in enumerate(items):
        try:
            out.append(_confined(item, root, real_root))
        except InputError as exc:
            out.append(None)
            refused.append((i, exc))
    return out, refused
