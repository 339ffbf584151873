"""The report from the tidy table alone: Markdown, a self-contained HTML page, figures, result tables, the
command line on a CSV copied elsewhere (a cluster's table on a laptop), and the study's W&B run offline."""

import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from lsnas.analysis.report import read_table, write_report
from lsnas.analysis.synthetic import make_table

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def table():
    return make_table(seeds=3)


def test_report_files_and_self_contained_html(tmp_path, table):
    answers = write_report(table, tmp_path, settings={"resamples": 200})
    assert set(answers) == {"i", "ii", "iii", "iv"}
    for name in ("report.md", "report.html", "accuracy_bars.png", "source_vs_target.png", "rank_correlation.png",
                 "versus_random.png", "summary.csv", "versus_baseline.csv", "rank_correlations.csv"):
        assert (tmp_path / name).stat().st_size > 200, name
    md = (tmp_path / "report.md").read_text()
    for heading in ("## (i)", "## (ii)", "## (iii)", "## (iv)", "## Against the random-sampling baseline",
                    "![Accuracy per method, source and target](accuracy_bars.png)"):
        assert heading in md
    page = (tmp_path / "report.html").read_text()
    assert page.count("data:image/png;base64,") == 4 and 'src="http' not in page and "<table" in page
    summary = pd.read_csv(tmp_path / "summary.csv")
    assert set(summary["method"]) == {"darts", "pcdarts", "gdas", "random", "random_sample"}
    assert (summary["n"] == 3).all() and summary["ci_low"].notna().all()


def test_no_interval_from_fewer_runs_than_min_runs(tmp_path):
    answers = write_report(make_table(seeds=2), tmp_path, settings={"resamples": 100, "min_runs": 3})
    summary = pd.read_csv(tmp_path / "summary.csv")
    assert (summary["n"] == 2).all() and summary["ci_low"].isna().all() and summary["std"].notna().all()
    assert "95% CI not estimable (too few runs)" in answers["iii"]


def test_report_command_on_a_table_alone(tmp_path, table):
    laptop = tmp_path / "copied"
    laptop.mkdir()
    table.to_csv(laptop / "table.csv", index=False)
    proc = subprocess.run([sys.executable, "-m", "lsnas.analysis", "report", str(laptop / "table.csv")], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "(iii) On big" in proc.stdout  # the baseline inferred: the one method that read no data
    assert (laptop / "report.html").is_file() and read_table(laptop).shape == table.shape
    missing = subprocess.run([sys.executable, "-m", "lsnas.analysis", "report", str(tmp_path / "nothing.csv")],
                             cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert missing.returncode == 2 and "no tidy table" in missing.stderr


def test_report_logs_the_table_to_one_offline_wandb_run(tmp_path, table, monkeypatch):
    monkeypatch.setenv("WANDB_SILENT", "true")
    write_report(table, tmp_path, wandb_mode="offline", settings={"resamples": 100})
    runs = list((tmp_path / "wandb").glob("offline-run-*"))
    assert len(runs) == 1 and list(runs[0].glob("run-*.wandb"))  # syncable later with `wandb sync`
    files = {p.name for p in runs[0].rglob("*") if p.is_file()}
    assert any(name.endswith(".table.json") for name in files) and any(name.endswith(".png") for name in files)
