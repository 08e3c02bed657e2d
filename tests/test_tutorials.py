"""Every notebook in ``tutorials/`` runs from top to bottom without an error.

Each notebook is executed in a fresh ``python3`` kernel of the interpreter that runs
the tests (the project's virtual environment), with ``tutorials/`` as the working
directory. A cell that raises fails the test with the cell's traceback.
"""

from __future__ import annotations

import time
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

TUTORIALS = Path(__file__).resolve().parent.parent / "tutorials"
NOTEBOOKS = sorted(TUTORIALS.glob("*.ipynb"))
#: seconds one cell may take (the notebooks take well under a minute in all)
CELL_TIMEOUT = 300


def test_there_are_tutorials() -> None:
    assert len(NOTEBOOKS) >= 3, f"expected the tutorial notebooks in {TUTORIALS}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_is_stored_without_outputs(path: Path) -> None:
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert not cell.outputs and cell.execution_count is None, (
                f"{path.name}: clear the outputs before committing (a cell holds outputs)"
            )


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs(path: Path) -> None:
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(
        nb,
        kernel_name="python3",
        timeout=CELL_TIMEOUT,
        allow_errors=False,
        resources={"metadata": {"path": str(TUTORIALS)}},
    )
    t0 = time.perf_counter()
    client.execute()  # raises CellExecutionError with the failing cell's traceback
    print(f"{path.name}: {time.perf_counter() - t0:.1f}s")
    errors = [out for cell in nb.cells if cell.cell_type == "code"
              for out in cell.get("outputs", []) if out.get("output_type") == "error"]
    assert not errors
