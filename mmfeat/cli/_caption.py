"""``mmfeat caption``: :func:`mmfeat.workflows.caption_file` on the command line."""

from mmfeat.cli import _score

__all__ = ["format_parser", "main"]


def format_parser(parser):
    """Add the arguments of ``mmfeat caption`` (those of ``mmfeat score``)."""
    _score.format_parser(parser, output_help="captions, .parquet or .csv")
    parser.description = (
        "Stream a CSV or Parquet table of photos through a saved captioner "
        "(mmfeat.generation) in chunks and write one caption per record, in "
        "input order; a record whose photo cannot be read gets no caption "
        "and an entry in the error report."
    )


def main(args, out, err):
    """Run ``mmfeat caption``; return the exit status."""
    from mmfeat.workflows import caption_file

    return _score.run_file_command(
        args, out, err, caption_file, ("captioned", "a caption")
    )
