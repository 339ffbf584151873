"""A person's first minutes: user errors print the message and the setting to fix and exit with status 2,
without a traceback (HYDRA_FULL_ERROR=1 shows one); log lines appear once; no third-party noise; the
progress bar fits 80 columns."""

import json

import pytest

from tests.test_search_cli import TINY, run

USER_ERRORS = {
    "unknown config name": ("search.py", ["method=nope"], ["Could not find 'method/nope'", "pcdarts"]),
    "unknown architecture": ("train.py", ["arch=darts_v9", "dry_run=true"],
                             ["unknown architecture 'darts_v9'", "pc_darts_cifar"]),
    "missing data": ("train.py", ["dataset=cifar10", "dataset.root={tmp}/nothing", "dataset.download=false"],
                     ["dataset.root=", "train/<class>"]),
    "malformed arch.json": ("train.py", ["arch={tmp}/arch.json", "dry_run=true"], ["{tmp}/arch.json", "missing"]),
    "impossible combination": ("search.py", [*TINY, "method=pcdarts", "space.init_channels=6"],
                               ["do not split into K=4", "method.partial_channels"]),
    "method cannot search the space": ("search.py", [*TINY, "space.name=resnet"], ["supports: darts", "space="]),
}


@pytest.mark.parametrize("case", list(USER_ERRORS))
def test_user_error_exits_2_with_the_message_and_no_traceback(tmp_path, case):
    script, overrides, expected = USER_ERRORS[case]
    (tmp_path / "arch.json").write_text(json.dumps({"space": "darts", "genotype": {"normal": []}}))
    fill = lambda s: s.replace("{tmp}", str(tmp_path))  # noqa: E731
    proc = run(script, *map(fill, overrides), f"hydra.run.dir={tmp_path}/run", "logger=csv", check=False)
    assert proc.returncode == 2, proc.stderr[-2000:]
    for text in map(fill, expected):
        assert text in proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr
    assert not (tmp_path / "run" / "arch.json").exists() and not (tmp_path / "run" / "metrics.json").exists()


def test_full_error_shows_the_traceback(tmp_path, monkeypatch):
    monkeypatch.setenv("HYDRA_FULL_ERROR", "1")
    proc = run("train.py", "arch=darts_v9", "dry_run=true", f"hydra.run.dir={tmp_path}", check=False)
    assert proc.returncode != 0 and "Traceback" in proc.stderr and "ArchitectureError" in proc.stderr


@pytest.mark.slow
def test_log_lines_once_no_noise_and_an_80_column_progress_bar(tmp_path, monkeypatch):
    monkeypatch.setenv("COLUMNS", "80")
    proc = run("search.py", *TINY, "method.epochs=2", f"hydra.run.dir={tmp_path}")
    out = proc.stdout + proc.stderr
    assert out.count("Seed set to 0") == 1 and out.count("GPU available") == 1
    for noise in ("Tip:", "deprecated", "Warning", "does not have many workers", "logging interval"):
        assert noise not in out, noise
    bars = [line for line in out.splitlines() if line.startswith("Epoch ")]
    assert len(bars) >= 2 and all(len(line) <= 80 for line in bars), bars
    assert all("loss:" in line and "val:" in line for line in bars)  # metrics on the bar's own line
    assert "Seed set to 0" in (tmp_path / "search.log").read_text()  # the file log keeps Lightning's lines
