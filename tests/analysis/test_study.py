"""A study's plan: the cells of both stages, their run dirs and overrides, statuses, bad definitions."""

import json

import pytest

from lsnas.analysis.collect import COLUMNS, collect, write_table
from lsnas.analysis.runner import check_composes, describe_plan, load_study, stage_command
from lsnas.analysis.study import Study, run_status
from lsnas.errors import ConfigError
from tests.analysis.helpers import make_study, study_config, write_metrics, write_search
from tests.helpers.config import compose_config


def test_search_cells_are_the_product_and_source_free_methods_run_once(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    study = Study(study_config(tmp_path, dir="relative/study"))
    assert study.dir == tmp_path / "relative" / "study"  # absolute: the stages run from the repository root
    cells = study.search_cells()
    assert [c.subdir for c in cells] == [
        "search/darts/small/tiny/seed0", "search/darts/small/tiny/seed1", "search/darts/proxy/tiny/seed0",
        "search/darts/proxy/tiny/seed1", "search/random_sample/none/tiny/seed0", "search/random_sample/none/tiny/seed1"]
    darts = cells[2].overrides
    # source, protocol, method (the method's settings win)
    assert darts[:4] == ("dataset=digits", "dataset.resolution=8", "budget=small", "method=darts")
    assert {"seed=0", "group=mini", "cell.job_type=search", "cell.source=proxy", "ckpt_path=last"} <= set(darts)
    assert not any(o.startswith("dataset") for o in cells[4].overrides)  # the baseline reads no data


def test_transfer_cells_take_the_architectures_found_in_stage_one(tmp_path):
    study = make_study(tmp_path)
    assert study.transfer_cells()[0] == []  # nothing searched yet: nothing to train, never a hand-written list
    write_search(study.dir / "search/darts/small/tiny/seed0", "darts", 0)
    write_search(study.dir / "search/darts/proxy/tiny/seed1", "darts", 1, completed=False)
    cells, waiting = study.transfer_cells()
    assert [c.subdir for c in cells] == ["transfer/darts/small/tiny/seed0/big/plain",
                                         "transfer/darts/small/tiny/seed0/small/plain"]
    assert f"arch='{study.dir / 'search/darts/small/tiny/seed0/arch.json'}'" in cells[0].overrides
    assert "cell.job_type=transfer" in cells[0].overrides and "cell.target=big" in cells[0].overrides
    assert len(waiting) == 5
    # sources_as_targets=own: a target that is a source trains only its own architectures (and the baseline's)
    own = make_study(tmp_path, **{"transfer.sources_as_targets": "own"})
    write_search(own.dir / "search/darts/proxy/tiny/seed0", "darts", 0)
    subdirs = [c.subdir for c in own.transfer_cells()[0]]
    assert "transfer/darts/proxy/tiny/seed0/small/plain" not in subdirs
    assert "transfer/darts/small/tiny/seed0/small/plain" in subdirs


def test_run_status_reads_what_runs_wrote(tmp_path):
    assert run_status(tmp_path / "nothing", "search")["status"] == "pending"
    started = tmp_path / "started"
    (started / ".hydra").mkdir(parents=True)
    assert run_status(started, "transfer")["status"] == "interrupted"
    (started / "study_status.json").write_text(json.dumps({"status": "failed", "error": "ValueError: boom"}))
    assert run_status(started, "transfer") == {"status": "failed", "reason": "ValueError: boom"}
    write_metrics(started, 0.5)  # finished after all (a rerun): complete wins
    assert run_status(started, "transfer")["status"] == "complete"
    stopped = tmp_path / "stopped"
    write_search(stopped, "random", 0, completed=False)
    (stopped / "study_status.json").write_text(json.dumps({"status": "complete"}))
    assert run_status(stopped, "search")["status"] == "failed"  # ended without its answer (a failure rate)
    returned = tmp_path / "returned"  # the job returned but wrote no result: failed, not resumed forever
    write_search(returned, "random", 0, completed=True)
    (returned / "arch.json").unlink()
    (returned / "study_status.json").write_text(json.dumps({"status": "complete"}))
    assert run_status(returned, "search")["status"] == "failed"
    (started / "metrics.json").unlink()
    (started / "study_status.json").write_text(json.dumps({"status": "complete"}))
    assert run_status(started, "transfer")["reason"] == "the training ended without writing metrics.json (see its log)"
    no_flag = tmp_path / "no_flag"  # a method whose summary has no `completed` key: arch.json decides
    write_search(no_flag, "sparse_random", 0)
    summary = json.loads((no_flag / "search_summary.json").read_text())
    del summary["completed"]
    (no_flag / "search_summary.json").write_text(json.dumps(summary))
    assert run_status(no_flag, "search")["status"] == "complete"


def test_collector_lists_every_row_with_its_reason(tmp_path):
    study = make_study(tmp_path)
    d = study.dir
    write_search(d / "search/darts/small/tiny/seed0", "darts", 0, score=0.61)
    write_metrics(d / "transfer/darts/small/tiny/seed0/big/plain", 0.42)
    write_metrics(d / "transfer/darts/small/tiny/seed0/small/plain", 0.80, wandb_id=None)
    write_search(d / "search/darts/small/tiny/seed1", "darts", 1)
    (d / "transfer/darts/small/tiny/seed1/big/plain/.hydra").mkdir(parents=True)  # interrupted
    failed = d / "transfer/darts/small/tiny/seed1/small/plain"
    failed.mkdir(parents=True)
    (failed / "study_status.json").write_text(json.dumps({"status": "failed", "error": "RuntimeError: NaN loss"}))
    (d / "search/darts/proxy/tiny/seed0").mkdir(parents=True)
    (d / "search/darts/proxy/tiny/seed0/study_status.json").write_text(json.dumps({"status": "failed",
                                                                                  "error": "ConfigError: no data"}))
    table = collect(study)
    assert list(table.columns) == list(COLUMNS) and len(table) == 12  # 6 searches x 2 targets x 1 protocol
    row = table[(table["seed"] == 0) & (table["source"] == "small") & (table["target"] == "big")].iloc[0]
    assert row["status"] == "complete" and row["target_top1"] == pytest.approx(42.0)
    assert row["source_top1"] == pytest.approx(80.0) and row["search_score"] == pytest.approx(61.0)
    assert row["train_device_hours"] == pytest.approx(36 * 2 / 3600) and row["transfer_wandb_id"] == "abc123"
    assert row["arch_digest"] and row["search_dir"].endswith("search/darts/small/tiny/seed0")
    by = table.set_index(["method", "source", "seed", "target"])
    assert by.loc[("darts", "small", 1, "big"), "status"] == "interrupted"
    assert by.loc[("darts", "small", 1, "small"), "reason"] == "RuntimeError: NaN loss"
    assert by.loc[("darts", "proxy", 0, "big"), "status"] == "failed"
    assert by.loc[("darts", "proxy", 0, "big"), "stage"] == "search"
    assert by.loc[("random_sample", "none", 0, "big"), "status"] == "pending"
    csv_path, parquet_path = write_table(table, tmp_path)
    import pandas as pd

    back = pd.read_parquet(parquet_path)
    assert back.shape == table.shape and pd.read_csv(csv_path).shape == table.shape


def test_bad_definitions_name_the_setting(tmp_path):
    with pytest.raises(ConfigError, match="study.baseline='nope'"):
        Study(study_config(tmp_path, baseline="nope"))
    with pytest.raises(ConfigError, match="study.search.source_free names 'gdas'"):
        Study(study_config(tmp_path, **{"search.source_free": ["gdas"]}))
    with pytest.raises(ConfigError, match="study.search.sources is empty"):
        Study(study_config(tmp_path, **{"search.sources": {}}))
    with pytest.raises(ConfigError, match="study.transfer.targets.a b"):
        Study(study_config(tmp_path, **{"transfer.targets": {"a b": []}}))
    with pytest.raises(ConfigError, match="do not compose"):
        check_composes(make_study(tmp_path, baseline=None, **{"search.methods": {"x": ["method=nope"]},
                                                  "search.source_free": []}))


def test_the_shipped_studies_compose_and_plan(tmp_path, monkeypatch):
    monkeypatch.setenv("LSNAS_OUTPUT_DIR", str(tmp_path))
    for name in ("digits_demo", "nastransfer_mini"):
        study = load_study([f"study={name}"])
        check_composes(study)
        assert study.dir == tmp_path / "study" / name
        assert "stage 1 search" in describe_plan(study)
    command = stage_command(study, "search", tmp_path / "plan.json")
    assert command[2:5] == ["-m", "hydra/sweeper=study", f"hydra.sweeper.plan={tmp_path / 'plan.json'}"]
    assert "hydra/launcher=basic" in command and "+hydra.callbacks.study_status._target_=" \
        "lsnas.analysis.jobs.JobStatusRecorder" in command


@pytest.mark.parametrize("launcher, target", [("slurm", "SlurmLauncher"), ("joblib", "JoblibLauncher"),
                                              ("basic", "BasicLauncher")])
def test_a_stage_sweep_composes_with_each_launcher(tmp_path, launcher, target):
    if launcher != "basic":
        pytest.importorskip(f"hydra_plugins.hydra_{'submitit' if launcher == 'slurm' else launcher}_launcher")
    study = make_study(tmp_path, launcher=launcher)
    command = stage_command(study, "transfer", tmp_path / "plan.json")
    overrides = [o for o in command[3:] if o.startswith(("hydra", "+hydra"))] + ["trainer=ddp", "trainer.devices=4"]
    cfg = compose_config("train", *overrides, hydra=True)
    assert cfg.hydra.sweeper._target_.endswith("StudySweeper") and cfg.hydra.sweeper.plan == str(tmp_path / "plan.json")
    assert cfg.hydra.launcher._target_.endswith(target)
    assert cfg.hydra.callbacks.study_status._target_ == "lsnas.analysis.jobs.JobStatusRecorder"
    if launcher == "slurm":  # one SLURM job per cell, as many tasks as the cell's devices
        assert cfg.hydra.launcher.tasks_per_node == 4
