"""Every Python example in README.md runs as written.

Each ```` ```python ```` block is one test, named by the heading it sits
under, and runs on its own in a fresh namespace, in an empty temporary folder
(what it writes goes there). The code is run exactly as README shows it: the
examples keep their data small themselves (a 300-photo training subset, 600
recordings), so a reader sees the same code and the same sizes as the test.

A block that names a real-data loader (``load_fashion_products``, ...) reads
the shared data through ``MMFEAT_DATA_HOME``, set to the ``data_home``
fixture's folder; without the data it fails in CI and skips elsewhere, as
``tests/conftest.py`` does. So does a block that needs an optional extra
that CI installs (torch for ``CNNExtractor``, dask). Shell blocks
(```` ```bash ````) are not run; ``tests/test_repo.py`` checks README's two
set-up commands against ``.ci/run``. The examples run with one BLAS thread
(their code does not change; see below why).
"""

import ast
import os
import re
import shlex
from importlib.util import find_spec

import pytest
from threadpoolctl import threadpool_limits

from tests._readme_blocks import README, python_blocks, readme_blocks

BLOCKS = python_blocks()

# Loaders that read the data home; a block that names one needs the real data.
_DATA_LOADERS = re.compile(
    r"\b(load_fsdd|load_usps|load_fashion_products|load_pascal_sentences"
    r"|load_av_digits|load_weizmann_horses|fetch_fsdd)\b"
)

# Optional packages README's examples use, and what installs them (CI has both).
_EXTRAS = {
    "torch": "torch is not installed (the cnn extra): pip install torch==2.13.0 "
    "(a CPU build) or 'mmfeat[cnn]'",
    "dask": "dask is not installed (the distributed extra): pip install "
    "'mmfeat[distributed]'",
}


def _needs(block):
    """The optional packages a block imports (or needs: CNN, deep fusion need torch)."""
    tree = ast.parse(block.code)
    modules = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            modules.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            modules.add(node.module.split(".")[0])
    if re.search(r"\b(CNNExtractor|NeuralFusionClassifier)\b", block.code):
        modules.add("torch")
    return sorted(modules & set(_EXTRAS))


def _fail_in_ci_else_skip(reason):
    if os.environ.get("CI"):
        pytest.fail(reason)
    pytest.skip(reason)


def test_readme_has_python_examples():
    assert BLOCKS, "README.md has no ```python block"


def test_readme_code_blocks_are_python_or_bash():
    # ```py, ```sh, ... would be neither run here nor recognised as shell
    odd = [
        f"README.md:{b.line - 1} ```{b.language}"
        for b in readme_blocks()
        if b.language not in ("python", "bash")
    ]
    assert not odd, f"fence code blocks as ```python or ```bash: {odd}"


def test_readme_python_examples_have_their_own_heading():
    slugs = [b.slug for b in BLOCKS]
    twice = sorted({s for s in slugs if slugs.count(s) > 1})
    assert not twice, f"give each Python example its own heading: {twice}"


@pytest.mark.parametrize("block", [pytest.param(b, id=b.slug) for b in BLOCKS])
def test_readme_python_example_runs(block, request, tmp_path, monkeypatch):
    for module in _needs(block):
        if find_spec(module) is None:
            _fail_in_ci_else_skip(_EXTRAS[module])
    if _DATA_LOADERS.search(block.code):
        home = request.getfixturevalue("data_home")  # fails in CI when absent
        monkeypatch.setenv("MMFEAT_DATA_HOME", str(home))
    monkeypatch.chdir(tmp_path)
    # blank lines in front, so that a traceback names README's own line numbers
    code = "\n" * (block.line - 1) + block.code
    # One BLAS thread: on a busy machine (the suite beside other jobs) OpenBLAS's
    # spinning threads made one LogisticRegression fit 15x slower (3 s -> 50 s).
    with threadpool_limits(1, user_api="blas"):
        exec(compile(code, str(README), "exec"), {"__name__": "__readme__"})  # noqa: S102


def test_readme_fit_command_names_real_columns(data_home):
    """The ``mmfeat fit`` shell example (not run here) names real files and columns."""
    shell = "\n".join(b.code for b in readme_blocks() if b.language == "bash")
    shell = shell.replace("\\\n", " ")
    (fit,) = [line for line in shell.splitlines() if line.startswith("mmfeat fit")]
    args = shlex.split(fit, comments=True)
    options = dict(zip(args[2::2], args[3::2]))
    records = data_home / "fashion_products_sample" / "labels.csv"
    assert options["--data"] == "$records"
    assert re.search(
        r"^records=\$\{MMFEAT_DATA_HOME:-~/mmfeat_data\}/fashion_products_sample/"
        r"labels\.csv$",
        shell,
        re.M,
    ), "the fit example should read the fashion sample's labels.csv"
    header = records.read_text(encoding="utf-8").splitlines()[0].split(",")
    for option in ("--image-col", "--text-col", "--label-col"):
        assert options[option] in header, (option, options[option], header)


def test_readme_gives_the_loaders_default_data_home(monkeypatch):
    from pathlib import Path

    from mmfeat.datasets import get_data_home

    monkeypatch.delenv("MMFEAT_DATA_HOME", raising=False)
    text = README.read_text(encoding="utf-8")
    defaults = re.findall(r"`MMFEAT_DATA_HOME`[^`]*?else `([^`]+)`", text)
    defaults += re.findall(r"MMFEAT_DATA_HOME:-([^}]+)\}", text)
    assert defaults, "README should say where data is looked for by default"
    for default in defaults:
        assert Path(default).expanduser() == get_data_home(), default
