"""The README's set-up commands and CI stay in step."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _readme_commands():
    text = (ROOT / "README.md").read_text()
    block = re.search(r"```bash\n(.*?)```", text, re.S).group(1)
    return [line for line in block.splitlines() if line.strip()]


def test_readme_starts_with_two_setup_commands():
    cmds = _readme_commands()
    assert len(cmds) == 2
    assert cmds[0].endswith("mmfeat demo")
    assert "pytest" in cmds[1]


def test_ci_runs_exactly_the_readme_test_command():
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    assert _readme_commands()[1] in ci


def test_ruff_version_is_the_same_for_developers_pre_commit_and_ci():
    """The dev extra's ruff range holds the pre-commit rev; CI installs it."""
    from packaging.specifiers import SpecifierSet
    from packaging.version import Version

    (spec,) = re.findall(r'"ruff([<>=!~][^"]*)"', (ROOT / "pyproject.toml").read_text())
    hooks = (ROOT / ".pre-commit-config.yaml").read_text()
    rev = re.search(r"astral-sh/ruff-pre-commit\n\s+rev: v(\S+)", hooks).group(1)
    assert Version(rev) in SpecifierSet(spec), (rev, spec)
    # nbQA runs the ruff it is given: the same one
    assert re.findall(r'"ruff==([^"]+)"', hooks) == [rev]
    assert f'pip install "ruff{spec}"' in (ROOT / ".ci" / "run").read_text()
