"""The ``mmfeat`` command line: ``mmfeat demo | fit | score | extract | info``."""

from mmfeat.cli._main import build_parser, main

__all__ = ["build_parser", "main"]
