"""search.py with multi-trial methods: outputs, a SIGKILL mid-search then resume, config changes, Ray."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from lsnas.arch import Architecture
from lsnas.errors import ConfigError
from lsnas.methods import search
from lsnas.methods.multitrial.journal import Journal, TrialLog
from tests.helpers.config import compose_config
from tests.test_search_cli import ROOT, run

TINY_TRAIN = ["dataset=digits", "dataset.resolution=8", "protocol.model.layers=3", "protocol.model.init_channels=4",
              "protocol.epochs=1", "protocol.batch_size=32", "protocol.trainer.limit_train_batches=3",
              "protocol.trainer.limit_val_batches=1", "logger=csv"]
SYNTHETIC = ["evaluator=synthetic", "logger=none"]
EVOLUTION = ["method=evolution", "method.strategy.population_size=6", "method.strategy.sample_size=3"]


def trials(run_dir):
    log = TrialLog.replay(Journal(run_dir).read())
    return log, [(k, log.asks[k]["digest"], log.results[k]["status"], log.results[k].get("score"))
                 for k in sorted(log.results)]


@pytest.mark.slow
@pytest.mark.parametrize("method", [["method=random"], ["method=evolution", "method.strategy.population_size=2",
                                                        "method.strategy.sample_size=1"]])
def test_search_trains_candidates_and_writes_the_best_with_a_summary_and_a_trace(tmp_path, method):
    proc = run("search.py", *method, *TINY_TRAIN, "method.num_trials=3", f"hydra.run.dir={tmp_path}")
    log, rows = trials(tmp_path)
    assert len(rows) == 3 and all(status == "complete" for _, _, status, _ in rows)
    summary = json.loads((tmp_path / "search_summary.json").read_text())
    best = max(rows, key=lambda r: (r[3], -r[0]))
    assert (summary["best_trial"], summary["best_score"], summary["trials"]) == (best[0], best[3], 3)
    assert Architecture.load(tmp_path / "arch.json").digest == best[1] == summary["arch_digest"]
    assert summary["total_evaluation_seconds"] > 0 and summary["failed_trials"] == 0 and summary["completed"]
    for result in log.results.values():
        assert result["cost"]["epochs"] == 1 and result["cost"]["params"] > 0 and result["cost"]["macs"] > 0
    assert (tmp_path / "search_trace.png").stat().st_size > 5000
    csv = (tmp_path / "csv" / "metrics.csv").read_text()
    assert "trial/score" in csv and "search/best_score" in csv
    assert proc.stdout.count("| best ") == 3  # one line each, named by k, with the score's name
    assert "trial 2 (3/3) val/top1 " in (tmp_path / "search.log").read_text()
    if "method=evolution" in method:
        assert log.asks[2]["tags"]["origin"] == "mutation" and log.asks[2]["tags"]["parent"] in (0, 1)
    dry = run("train.py", f"arch={tmp_path / 'arch.json'}", "dry_run=true", f"hydra.run.dir={tmp_path / 'train'}")
    assert "params=" in dry.stdout


def test_a_search_killed_with_sigkill_resumes_to_the_uninterrupted_result(tmp_path):
    common = [*EVOLUTION, *SYNTHETIC, "evaluator.seconds=0.1", "evaluator.nan_every=9", "method.num_trials=40"]
    run("search.py", *common, f"hydra.run.dir={tmp_path / 'whole'}")
    _, whole = trials(tmp_path / "whole")

    killed = tmp_path / "killed"
    proc = subprocess.Popen([sys.executable, str(ROOT / "search.py"), *common, f"hydra.run.dir={killed}"], cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None:
        journal = killed / "trials.jsonl"
        if journal.exists() and journal.read_text().count('"event":"result"') >= 15:
            break
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    before, rows = trials(killed)
    assert 15 <= len(rows) < 40, "the search was not killed mid-run"

    run("search.py", *common, f"hydra.run.dir={killed}", "ckpt_path=last")
    after, resumed = trials(killed)
    assert resumed == whole
    events = Journal(killed).read()
    results_per_k = [e["k"] for e in events if e["event"] == "result"]
    assert sorted(results_per_k) == list(range(40))  # no finished trial was evaluated again
    asks_per_k = [e["k"] for e in events if e["event"] == "ask"]
    assert sorted(asks_per_k) == list(range(40))  # pending trials were sent again, not asked again
    assert len(after.sessions) == 2 and after.sessions[1]["resumed"]
    assert json.loads((killed / "search_summary.json").read_text())["sessions"] == 2


def test_resuming_with_other_settings_lists_them_and_a_new_run_needs_ckpt_path(tmp_path):
    common = ["method=random", *SYNTHETIC, "method.num_trials=3"]
    search(compose_config("search", *common), tmp_path)
    with pytest.raises(ConfigError, match="ckpt_path=last"):
        search(compose_config("search", *common), tmp_path)
    changed = compose_config("search", *common, "ckpt_path=last", "evaluator.target_seed=5", "seed=1")
    with pytest.raises(ConfigError, match=r"(?s)evaluator.target_seed: 0 -> 5.*seed: 0 -> 1"):
        search(changed, tmp_path)
    search(compose_config("search", *common, "method.num_trials=5", "ckpt_path=last"), tmp_path)  # budget may change
    assert len(trials(tmp_path)[1]) == 5


def test_impossible_method_and_evaluator_pairs_are_start_up_errors(tmp_path):
    proc = run("search.py", "method=darts", "evaluator=train", f"hydra.run.dir={tmp_path}", check=False)
    assert proc.returncode == 2 and "one-shot method" in proc.stderr and "evaluator" in proc.stderr
    with pytest.raises(ConfigError, match="protocol.model.network"):
        search(compose_config("search", "method=random", "protocol.model.network=nope", "logger=none"), tmp_path / "b")
    assert not (tmp_path / "b" / "trials.jsonl").exists()
