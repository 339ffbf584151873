"""Running a study's stages through Hydra's launcher, resumably, and printing the plan.

Each stage is one ``python search.py -m`` / ``python train.py -m`` sweep driven by the study sweeper over the
stage's plan file (``<study dir>/plan/<stage>.json``): the launcher is the study's (basic, joblib, slurm).
Before a stage runs, every cell's run dir is read: complete cells are skipped, interrupted ones resume
(``ckpt_path=last``), failed ones are rerun only with ``rerun_failed``.
"""

from __future__ import annotations

import shlex
import subprocess
import sys
from collections import Counter, defaultdict
from pathlib import Path

from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from lsnas.analysis.study import STATUS_FILENAME, Cell, Study, read_json, run_status
from lsnas.errors import ConfigError, UserError
from lsnas.methods import search_outcome
from lsnas.utils.io import atomic_write_json, atomic_write_text

ROOT = Path(__file__).resolve().parents[3]  # the repository: conf/, search.py, train.py
CONF_DIR = ROOT / "conf"
SCRIPTS = {"search": ROOT / "search.py", "transfer": ROOT / "train.py"}
STAGES = ("search", "transfer")
LAUNCHERS = ("basic", "joblib", "slurm")  # conf/hydra/launcher/slurm.yaml; basic and joblib are Hydra's


def load_study(overrides: list[str]) -> Study:
    """The study ``conf/analysis.yaml`` composes with ``overrides`` (``study=<name>``, ``study.search.seeds=[0]``)."""
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3", job_name="analysis"):
        try:
            cfg = compose("analysis", overrides=overrides)
        except Exception as error:  # Hydra's message names the override (a list element holding '=' needs quotes)
            raise ConfigError(f"the study's overrides do not compose: {error}") from None
    study_cfg = OmegaConf.create(OmegaConf.to_container(cfg.study, resolve=True))
    return Study(study_cfg)


def save_definition(study: Study) -> None:
    """The resolved study config in its dir, so ``collect`` / ``report <study dir>`` need nothing else."""
    study.dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(study.dir / "study.yaml", OmegaConf.to_yaml(study.cfg))


def study_from_dir(path: str | Path) -> Study:
    definition = Path(path) / "study.yaml"
    if not definition.is_file():
        raise ConfigError(f"{path} holds no study.yaml: is it a study dir (python -m lsnas.analysis run writes it)?")
    cfg = OmegaConf.load(definition)
    cfg.dir = str(Path(path).resolve())  # the dir may have moved (a cluster's study copied to a laptop)
    return Study(cfg)


def statuses(study: Study, cells: list[Cell]) -> list[str]:
    return [run_status(study.dir / c.subdir, c.stage)["status"] for c in cells]


def todo(study: Study, cells: list[Cell], rerun_failed: bool) -> list[Cell]:
    wanted = {"pending", "interrupted", *(("failed",) if rerun_failed else ())}
    return [c for c, s in zip(cells, statuses(study, cells)) if s in wanted]


def stage_command(study: Study, stage: str, plan: Path) -> list[str]:
    launcher = str(study.cfg.get("launcher") or "basic")
    if launcher not in LAUNCHERS:
        raise ConfigError(f"study.launcher={launcher!r}: use one of {', '.join(LAUNCHERS)}")
    return [sys.executable, str(SCRIPTS[stage]), "-m", "hydra/sweeper=study", f"hydra.sweeper.plan={plan}",
            f"hydra.sweep.dir={study.dir / stage}", f"hydra/launcher={launcher}",
            "+hydra.callbacks.study_status._target_=lsnas.analysis.jobs.JobStatusRecorder",
            *[str(o) for o in (study.cfg.get("launcher_overrides") or [])], *study.common_overrides(stage)]


def run_stage(study: Study, stage: str, rerun_failed: bool = False) -> dict[str, int]:
    """Run what the stage still needs; returns the count of its cells by status afterwards."""
    cells = study.cells(stage)
    pending = todo(study, cells, rerun_failed)
    if not pending:
        print(f"{stage}: all {len(cells)} runs done or failed (nothing to run)", flush=True)
    else:
        for cell in pending:  # a rerun starts without its old failure record
            (study.dir / cell.subdir / STATUS_FILENAME).unlink(missing_ok=True)
        plan = study.dir / "plan" / f"{stage}.json"
        atomic_write_json(plan, {"stage": stage, "cells": [
            {**c.to_dict(), "subdir": c.subdir.split("/", 1)[1]} for c in pending]})
        command = stage_command(study, stage, plan)
        print(f"{stage}: running {len(pending)} of {len(cells)} runs\n  {shlex.join(command)}", flush=True)
        proc = subprocess.run(command, cwd=ROOT, stdin=subprocess.DEVNULL)
        if proc.returncode != 0:
            raise StageInterrupted(f"the {stage} stage's sweep exited with status {proc.returncode} (its output is "
                                   "above); rerun the same command to resume it")
    counts = Counter(statuses(study, study.cells(stage)))
    print(f"{stage}: " + ", ".join(f"{n} {s}" for s, n in sorted(counts.items())), flush=True)
    unfinished = counts.get("pending", 0) + counts.get("interrupted", 0)
    if pending and unfinished:  # a job stopped without finishing or failing (a signal): not done, resume later
        raise StageInterrupted(f"the {stage} stage ended with {unfinished} runs unfinished (interrupted); rerun the "
                               "same command to resume them")
    return dict(counts)


class StageInterrupted(UserError):
    """A stage ended before all its runs finished or failed: the study stops there, to be resumed."""


# -- the plan (dry run) --------------------------------------------------------------------------------
def _cost_s(study: Study, cell: Cell) -> float | None:
    run_dir = study.dir / cell.subdir
    if cell.stage == "search":
        return search_outcome(read_json(run_dir / "search_summary.json") or {})[1]
    return (read_json(run_dir / "metrics.json") or {}).get("wall_time_s")


def _estimate(study: Study, cells: list[Cell], status: list[str], key) -> tuple[float, int]:
    """Seconds left for the cells still to run, from the complete ones with the same key (else all of them)."""
    measured: dict = defaultdict(list)
    for cell, s in zip(cells, status):
        if s == "complete" and (cost := _cost_s(study, cell)) is not None:
            measured[key(cell)].append(cost)
    everything = [c for costs in measured.values() for c in costs]
    if not everything:
        return float("nan"), 0
    left = 0.0
    for cell, s in zip(cells, status):
        if s in ("pending", "interrupted"):
            same = measured.get(key(cell)) or everything
            left += sum(same) / len(same)
    return left, len(everything)


def _line(stage: str, cells: list[Cell], status: list[str], estimate: tuple[float, int]) -> str:
    counts = Counter(status)
    parts = [f"{counts.get(s, 0)} {s}" for s in ("complete", "interrupted", "failed", "pending") if counts.get(s)]
    seconds, measured = estimate
    eta = (f"~{seconds / 60:.1f} min left (estimated from {measured} measured runs, run one at a time)"
           if measured else "no measured runs yet to estimate the cost from")
    return f"  {stage}: {len(cells)} runs: {', '.join(parts) or 'none'}; {eta}"


def describe_plan(study: Study) -> str:
    searches = study.search_cells()
    s_status = statuses(study, searches)
    transfers, waiting = study.transfer_cells(searches)
    t_status = statuses(study, transfers)
    lines = [f"study {study.name} in {study.dir}",
             f"  axes: methods {list(study.methods)} x sources {list(study.sources)} x search protocols "
             f"{list(study.search_protocols)} x seeds {study.seeds}; targets {list(study.targets)} x target "
             f"protocols {list(study.target_protocols)}",
             _line("stage 1 search", searches, s_status, _estimate(study, searches, s_status,
                                                                   lambda c: c.axes["method"])),
             _line("stage 2 transfer", transfers, t_status,
                   _estimate(study, transfers, t_status, lambda c: (c.axes["target"], c.axes["target_protocol"])))]
    waiting = [c for c in waiting if run_status(study.dir / c.subdir, "search")["status"] != "failed"]
    if waiting:
        later = sum(study.trains_on(c.axes["source"], t) for c in waiting for t in study.targets)
        lines.append(f"    + {later * len(study.target_protocols)} transfer runs once {len(waiting)} searches finish")
    failed = [c for group, status in ((searches, s_status), (transfers, t_status))
              for c, s in zip(group, status) if s == "failed"]
    for cell in failed:
        reason = run_status(study.dir / cell.subdir, cell.stage)["reason"]
        lines.append(f"  failed: {cell.subdir}: {reason} (rerun with --rerun-failed)")
    return "\n".join(lines)


def check_composes(study: Study) -> None:
    """Fail before anything runs when a cell's overrides do not compose (a typo in the study config): every
    method x source x search protocol with search.py, every target x target protocol with train.py."""
    checks = [("search", [*study.common_overrides("search"), *source, *protocol, *method])
              for name, method in study.methods.items()
              for source in ([[]] if name in study.source_free else study.sources.values())
              for protocol in study.search_protocols.values()]
    checks += [("train", [*study.common_overrides("transfer"), *target, *protocol])
               for target in study.targets.values() for protocol in study.target_protocols.values()]
    for config_name, overrides in checks:
        with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3", job_name=config_name):
            try:
                compose(config_name, overrides=overrides)
            except Exception as error:  # Hydra's own message names the override
                raise ConfigError(f"study {study.name}: these {config_name}.py overrides do not compose "
                                  f"({error}):\n  {' '.join(overrides)}") from None
