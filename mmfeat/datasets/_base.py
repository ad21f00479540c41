"""Data home resolution shared by every loader and fetcher."""

import os
from pathlib import Path

from mmfeat.exceptions import DataNotFoundError

__all__ = ["get_data_home", "_dataset_dir"]


def get_data_home(data_home=None):
    """Return the folder that holds mmfeat's real datasets.

    Resolution order: the ``data_home`` argument, else the ``MMFEAT_DATA_HOME``
    environment variable, else ``~/mmfeat_data``. The folder is not created.

    Parameters
    ----------
    data_home : str or path-like, default=None
        Explicit data home.

    Returns
    -------
    data_home : pathlib.Path
        The resolved folder (``~`` expanded).

    Examples
    --------
    >>> get_data_home("/tmp/somewhere").as_posix()
    '/tmp/somewhere'
    """
    if data_home is None:
        data_home = os.environ.get("MMFEAT_DATA_HOME") or "~/mmfeat_data"
    return Path(data_home).expanduser()


def _dataset_dir(name, data_home=None, *, required=()):
    """Return ``data_home/name``, checking that ``required`` entries exist.

    Raises a :class:`~mmfeat.exceptions.DataNotFoundError` that says where
    mmfeat looked and how to point it elsewhere.
    """
    home = get_data_home(data_home)
    folder = home / name
    missing = [r for r in required if not (folder / r).exists()]
    if not folder.is_dir() or missing:
        what = (
            f"{folder}"
            if not folder.is_dir()
            else ", ".join(str(folder / m) for m in missing)
        )
        raise DataNotFoundError(
            f"dataset {name!r} not found: missing {what}. Put the data in "
            f"{home} (layout as in its SOURCE.md), pass data_home=..., or set "
            "the MMFEAT_DATA_HOME environment variable to the folder that "
            f"holds {name}/."
        )
    return folder
