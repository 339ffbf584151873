"""The notebooks execute: nastransfer.ipynb on the synthetic table the analysis tests use."""

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_nastransfer_notebook_executes(tmp_path, monkeypatch):
    nbformat = pytest.importorskip("nbformat")
    from nbclient import NotebookClient

    monkeypatch.delenv("LSNAS_STUDY_TABLE", raising=False)
    notebook = nbformat.read(ROOT / "notebooks" / "nastransfer.ipynb", as_version=4)
    client = NotebookClient(notebook, timeout=600, kernel_name="python3",
                            resources={"metadata": {"path": str(tmp_path)}})
    client.execute()
    outputs = [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.get("outputs", [])]
    assert not [o for o in outputs if o.output_type == "error"]
    text = "".join(str(o.get("data", {}).get("text/markdown", "")) for o in outputs)
    assert "**(iii) Is random sampling competitive" in text and "significant at 5%" in text
    assert sum("image/png" in o.get("data", {}) for o in outputs) >= 4  # bars, forest, heat map, scatter
    assert (tmp_path / "nastransfer_figures" / "accuracy_bars.png").is_file()
