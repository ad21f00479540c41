"""Sizes in messages, written one way everywhere.

``268,435,456 bytes (256 MiB)``: the exact count a user can compare with
``ls -l``, then a readable size; a limit reads ``max_bytes=536,870,912 bytes
(512 MiB)``, the parameter as the user passes it.
"""

__all__ = ["limit_text", "short_size", "size_text"]

_UNITS = ("bytes", "KiB", "MiB", "GiB", "TiB")


def short_size(n):
    """``n`` bytes as a readable size alone: ``'512 bytes'``, ``'256 MiB'``."""
    value = float(n)
    for unit in _UNITS:
        if value < 1024 or unit == _UNITS[-1]:
            break
        value /= 1024
    return f"{int(n):,} bytes" if unit == "bytes" else f"{value:.3g} {unit}"


def size_text(n):
    """``'268,435,456 bytes (256 MiB)'``: exact count, then a readable size.

    >>> size_text(512), size_text(50 * 2**20)
    ('512 bytes', '52,428,800 bytes (50 MiB)')
    """
    short = short_size(n)
    return short if short.endswith(" bytes") else f"{int(n):,} bytes ({short})"


def limit_text(name, n):
    """``'max_bytes=536,870,912 bytes (512 MiB)'``: a size limit and its value."""
    return f"{name}={size_text(n)}"
