"""The ``mmfeat`` command line: ``mmfeat demo``, ``mmfeat --version``."""

from mmfeat.cli._main import build_parser, main

__all__ = ["build_parser", "main"]
