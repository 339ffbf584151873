"""A Hydra multirun sweep, as in ``python search.py -m method=darts,pcdarts,gdas seed=0,1,2``: every job in its
own run dir, with its own arch.json and a summary that says which method and seed it ran."""

import json

import pytest

from lsnas.arch import Architecture
from tests.test_search_cli import TINY, run


@pytest.mark.slow
def test_two_by_two_search_sweep(tmp_path):
    run("search.py", "-m", *TINY, "method=darts,pcdarts", "seed=0,1", "method.epochs=1",
        f"hydra.sweep.dir={tmp_path}")
    jobs = sorted(p for p in tmp_path.iterdir() if p.is_dir() and p.name.isdigit())
    assert [p.name for p in jobs] == ["0", "1", "2", "3"]
    seen = set()
    for job in jobs:
        summary = json.loads((job / "search_summary.json").read_text())
        seen.add((summary["method"], summary["seed"]))
        assert Architecture.load(job / "arch.json").digest == summary["arch_digest"]
        assert (job / ".hydra" / "overrides.yaml").exists() and (job / "search.log").exists()
    assert seen == {("darts", 0), ("darts", 1), ("pcdarts", 0), ("pcdarts", 1)}
    assert (tmp_path / "multirun.yaml").exists()
