"""The notebooks in notebooks/ run top to bottom on the real data.

Each notebook is executed in a fresh kernel of this interpreter (its
ipykernel, whatever kernels are installed elsewhere), in a temporary folder,
with ``MMFEAT_DATA_HOME`` pointing at the real-data home and the repository on
``PYTHONPATH`` (so the repo's mmfeat is imported whether or not it is
pip-installed). A cell that raises fails the test with the cell's traceback.
The committed files must carry no outputs, so their diffs stay readable.
"""

import gc
import os
import sys
import time
import warnings
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")

REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((REPO / "notebooks").glob("*.ipynb"))
CELL_TIMEOUT = 300  # seconds per cell; each notebook is meant to take < 90 s in all


def _ids(paths):
    return [p.stem for p in paths]


def _kernel_manager():
    """A manager for ipykernel's own kernel of ``sys.executable``.

    With no kernel folders to search, "python3" resolves to the kernel spec
    that ipykernel ships for the interpreter it is installed in: a "python3"
    spec installed in ~/.local/share/jupyter (for another environment) is
    not picked up, and no ``ipykernel install`` is needed.
    """
    from jupyter_client.kernelspec import KernelSpecManager
    from jupyter_client.manager import AsyncKernelManager

    specs = KernelSpecManager(kernel_dirs=[])
    return AsyncKernelManager(kernel_name="python3", kernel_spec_manager=specs)


def test_notebooks_found():
    assert NOTEBOOKS, f"no notebooks in {REPO / 'notebooks'}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=_ids(NOTEBOOKS))
def test_notebook_is_stripped(path):
    nb = nbformat.read(path, as_version=4)
    dirty = [
        i
        for i, cell in enumerate(nb.cells)
        if cell.cell_type == "code"
        and (cell.get("outputs") or cell.get("execution_count") is not None)
    ]
    assert not dirty, (
        f"{path.name}: cells {dirty} carry outputs or execution counts; commit "
        "notebooks stripped (e.g. jupyter nbconvert --clear-output --inplace)"
    )


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=_ids(NOTEBOOKS))
def test_notebook_runs(path, data_home, tmp_path, monkeypatch):
    # the kernel is a subprocess: it inherits this environment
    monkeypatch.setenv("MMFEAT_DATA_HOME", str(data_home))
    pythonpath = [str(REPO), *filter(None, [os.environ.get("PYTHONPATH")])]
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(pythonpath))
    nb = nbformat.read(path, as_version=4)
    start = time.perf_counter()
    failure = None
    # jupyter_client leaves a few zmq sockets to the garbage collector, whose
    # ResourceWarning would surface (as an error) in whichever test runs next:
    # collect them here, quietly, once the error (whose traceback holds the
    # client) is reduced to its message
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        try:
            _execute(nb, tmp_path)
        except (
            nbclient.exceptions.CellExecutionError,  # the cell and its traceback
            nbclient.exceptions.CellTimeoutError,
            nbclient.exceptions.DeadKernelError,
        ) as exc:
            failure = f"{path.name}: {type(exc).__name__}\n{exc}"
        finally:
            gc.collect()
    if failure is not None:
        pytest.fail(failure, pytrace=False)
    print(f"{path.name}: {time.perf_counter() - start:.1f} s")


def _execute(nb, folder):
    km = _kernel_manager()
    assert km.kernel_spec.argv[0] in ("python", "python3", sys.executable), (
        km.kernel_spec.argv
    )
    client = nbclient.NotebookClient(
        nb,
        km=km,
        timeout=CELL_TIMEOUT,
        kernel_name="python3",
        resources={"metadata": {"path": str(folder)}},
    )
    client.execute()
