"""The fenced code blocks of README.md, each with the heading it sits under."""

import re
from dataclasses import dataclass
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"

_FENCE = re.compile(r"^```(\S*)")
_HEADING = re.compile(r"^#{1,6}\s+(.*?)\s*#*\s*$")


@dataclass(frozen=True)
class Block:
    """One fenced block: its language, code and where it is."""

    heading: str  # the nearest heading above the block
    language: str  # the fence's info string ("python", "bash", "")
    code: str
    line: int  # README line of the block's first code line

    @property
    def slug(self):
        """The heading as a test id: ``"Audio and text"`` -> ``audio-and-text``."""
        return re.sub(r"[^a-z0-9]+", "-", self.heading.lower()).strip("-")


def readme_blocks(text=None):
    """Every fenced block of ``text`` (README.md by default), in order."""
    if text is None:
        text = README.read_text(encoding="utf-8")
    blocks = []
    heading, fence, start, lines = "", None, 0, []
    for number, line in enumerate(text.splitlines(), start=1):
        if fence is None:
            opening = _FENCE.match(line)
            if opening:
                fence, start, lines = opening.group(1), number + 1, []
            elif _HEADING.match(line):
                heading = _HEADING.match(line).group(1)
        elif line.startswith("```"):
            blocks.append(Block(heading, fence, "\n".join(lines) + "\n", start))
            fence = None
        else:
            lines.append(line)
    if fence is not None:
        raise ValueError(
            f"README.md: the block opened on line {start - 1} never closes"
        )
    return blocks


def python_blocks(text=None):
    """The ```` ```python ```` blocks, the ones the test suite runs."""
    return [b for b in readme_blocks(text) if b.language == "python"]
