"""What ``search.py`` does for a multi-trial method: build the strategy, evaluator and executor, run the
ask/tell loop over the run dir's journal, and write the best architecture with a summary and a trace plot.

    python search.py method=random                                  # digits, small budget, in process
    python search.py method=evolution dataset=cifar10 evaluator.executor=ray evaluator.workers=2
    python search.py method=random evaluator=train_job dataset=imagenet22k evaluator.launcher=submitit
    python search.py ... hydra.run.dir=<run dir> ckpt_path=last    # resume: finished trials are kept
"""

from __future__ import annotations

import ast
import inspect
import json
import logging
import re
import time
from pathlib import Path

from hydra.utils import get_class, instantiate
from lightning.pytorch.utilities.exceptions import SIGTERMException
from omegaconf import DictConfig, OmegaConf

from lsnas.arch import ARCH_FILENAME
from lsnas.errors import ConfigError
from lsnas.evaluators.base import EVALUATORS, Evaluator
from lsnas.methods import print_train_command
from lsnas.methods.multitrial.executors import make_executor
from lsnas.methods.multitrial.journal import JOURNAL_FILENAME, Journal, TrialLog
from lsnas.methods.multitrial.loop import FAILURES, SearchLoop
from lsnas.methods.multitrial.strategy import SearchState, Strategy, Trial
from lsnas.spaces import space_from_config
from lsnas.spaces.base import SearchSpace
from lsnas.training.trainer import flat_config, make_loggers
from lsnas.utils import preemption
from lsnas.utils.io import atomic_write_json
from lsnas.viz import plot_search_trace

log = logging.getLogger(__name__)

# Settings that say how to run trials, not what they mean: they may change when a search is resumed
# (as may loader workers, anywhere in the config).
EXECUTION_KEYS = ("executor", "workers", "ray_address", "cpus_per_trial", "gpus_per_trial", "max_retries")
RESUMABLE_KEYS = (*EXECUTION_KEYS, "timeout_s", "launcher", "submitit")
BUDGET_KEYS = ("method.num_trials", "method.max_failure_rate", "method.run._target_", "method.source.num_trials",
               "method.target.num_trials")


def search_config(cfg: DictConfig) -> dict:
    """The settings that make a search what it is (compared when it is resumed), as flat dotted keys."""
    resolved = OmegaConf.to_container(cfg, resolve=True)
    parts = {key: resolved.get(key) for key in ("dataset", "space", "method", "evaluator", "seed")}
    flat = flat_config(OmegaConf.create(parts))
    return {k: v for k, v in flat.items() if k not in BUDGET_KEYS and not k.endswith(".num_workers")
            and not (k.startswith("evaluator.") and k.split(".")[1] in RESUMABLE_KEYS)}


def grown_range(key: str, before: dict, after: dict) -> bool:
    """A box dim's range whose edges only grew, on the same grid: every journaled point stays feasible, so the
    search may go on over the larger box (as the spline paper extended phi past its edge)."""
    if not re.search(r"(^|\.)space\.dims\.[^.]+\.range$", key):  # the space, or an evaluator's copy of it
        return False
    try:
        (low0, high0), (low1, high1) = (ast.literal_eval(str(c[key])) for c in (before, after))
    except (ValueError, SyntaxError, TypeError):
        return False
    step_key = key[: -len("range")] + "step"
    step = before.get(step_key, 1)
    on_grid = abs((low0 - low1) / step - round((low0 - low1) / step)) < 1e-9
    return after.get(step_key, 1) == step and low1 <= low0 and high1 >= high0 and on_grid


def check_same_search(log_: TrialLog, config: dict) -> None:
    if not log_.sessions:
        return
    before = log_.sessions[-1]["config"]  # the latest session's: a box may have grown since the first
    changed = sorted(k for k in before.keys() | config.keys() if before.get(k) != config.get(k))
    for key in [k for k in changed if grown_range(k, before, config)]:
        if key.startswith("space."):  # not again for an evaluator's copy of the space
            log.info("the box grows: %s %s -> %s (every measured point stays in it)", key, before[key], config[key])
        changed.remove(key)
    if changed:
        lines = [f"  {k}: {before.get(k)!r} -> {config.get(k)!r}" for k in changed]
        raise ConfigError("this run dir holds a search with other settings; a resumed search may only change its "
                          "budget (method.num_trials) and how trials run (evaluator.executor, workers, ...), or "
                          "grow a box dim's range (space.dims.<dim>.range, same step). "
                          "Changed:\n" + "\n".join(lines) + "\nStart a new run dir for a different search.")


def open_journal(cfg: DictConfig, journal: Journal) -> TrialLog:
    events = journal.read()
    ckpt_path = cfg.get("ckpt_path")
    if ckpt_path not in (None, "", "last"):
        raise ConfigError(f"ckpt_path={ckpt_path!r}: a multi-trial search resumes in its own run dir, with "
                          "hydra.run.dir=<run dir> ckpt_path=last")
    if events and ckpt_path != "last":
        raise ConfigError(f"{journal.path} already holds a search; resume it with ckpt_path=last, or choose "
                          "another run dir (hydra.run.dir=...)")
    return TrialLog.replay(events)


def part_prefix(cfg: DictConfig, run_dir: Path | None) -> str:
    """The metric prefix of a search that is a part of its task (``ranking/``, ``sparsity_0.5/search/``): its run
    dir relative to the loggers' (the task's), so the parts' curves stay apart in the one W&B run."""
    if run_dir is None or not cfg.get("logger"):
        return ""
    for name in cfg.logger.keys():
        root = OmegaConf.select(cfg.logger, f"{name}.save_dir", throw_on_resolution_failure=False)
        if root and Path(run_dir).resolve().is_relative_to(Path(root).resolve()):
            part = Path(run_dir).resolve().relative_to(Path(root).resolve()).as_posix()
            return "" if part == "." else f"{part}/"
    return ""


class TrialLogger:
    """Each finished trial and the best-so-far curve to the run's loggers (W&B, CSV). Trials finish out of
    order with parallel workers, so the step is the number of finished trials and ``trial/k`` is logged."""

    def __init__(self, cfg: DictConfig, state: SearchState, run_dir: Path | None = None):
        self.loggers = make_loggers(cfg)  # the run's: every part of a task logs to one W&B run
        self.state = state
        self.prefix = part_prefix(cfg, run_dir)

    def __call__(self, trial: Trial) -> None:
        best = self.state.best()
        metrics = {"trial/k": trial.k, "trial/complete": float(trial.complete),
                   "trial/seconds": float(trial.result.get("cost", {}).get("seconds") or 0.0),
                   "search/best_score": best.score if best else None,
                   "search/trials_finished": len(self.state.log.results),
                   "search/total_cost_seconds": total_cost(self.state)}
        if trial.score is not None:
            metrics["trial/score"] = trial.score
        metrics = {f"{self.prefix}{k}": v for k, v in metrics.items() if v is not None}
        for logger in self.loggers:
            logger.log_metrics(metrics, step=len(self.state.log.results))

    def close(self) -> None:
        for logger in self.loggers:
            logger.finalize("success")


def total_cost(state: SearchState) -> float:
    return round(state.log.total_seconds, 3)


def data_label(cfg: DictConfig, evaluator: Evaluator) -> str:
    """What the scores were measured on, for log lines and plot titles."""
    return cfg.dataset.name if evaluator.reads_data else "a synthetic objective (no data)"


def summarize(cfg: DictConfig, state: SearchState, wall_s: float, evaluator: Evaluator, strategy: Strategy) -> dict:
    best = state.best()
    statuses: dict[str, int] = {}
    for result in state.log.results.values():
        statuses[result["status"]] = statuses.get(result["status"], 0) + 1
    dataset = cfg.dataset.name if evaluator.reads_data else None  # a synthetic objective read no data
    return {"method": cfg.method.name, "space": cfg.space.name, "dataset": dataset, "seed": cfg.seed,
            "evaluator": EVALUATORS.name_of(type(evaluator)) or type(evaluator).__name__,
            "evaluator_fingerprint": evaluator.fingerprint(),
            "score": "relative (rank combination over the complete trials)" if state.objective else "evaluator",
            "score_name": evaluator.route(state.tags).score_name if state.tags else evaluator.score_name,
            "trials": len(state.log.results), "asked": state.num_asked, "statuses": statuses,
            "failed_trials": sum(statuses.get(s, 0) for s in FAILURES),
            "duplicates": sum("duplicate_of" in r for r in state.log.results.values()),
            "best_score": best.score if best else None, "best_trial": best.k if best else None,
            "arch_digest": best.arch.digest if best else None, "genotype": best.arch.genotype if best else None,
            "total_evaluation_seconds": total_cost(state), "wall_time_this_run_s": round(wall_s, 2),
            "sessions": len(state.log.sessions),
            # complete: the budget is spent, or the strategy's own stop fired (its reason is kept)
            "completed": len(state.log.results) >= strategy.num_trials or bool(strategy.stop_reason),
            "stop_reason": strategy.stop_reason or ("budget" if len(state.log.results) >= strategy.num_trials
                                                    else None)}


def make_evaluator(settings: DictConfig | dict) -> tuple[Evaluator, dict]:
    """(evaluator, execution settings) from an ``evaluator`` config: its ``_target_`` built from plain
    settings (not hydra's recursive instantiate: the dataset, protocol and trainer settings stay dicts that
    the evaluator instantiates where it runs, a Ray worker or a job)."""
    if not settings or not settings.get("_target_"):  # evaluator=none on a method that scores candidates
        raise ConfigError("this method scores its candidates with an evaluator, and evaluator=none leaves it without "
                          "one: drop evaluator=none (the method's own is used) or choose one, e.g. evaluator=train")
    settings = OmegaConf.to_container(settings, resolve=True) if isinstance(settings, DictConfig) else dict(settings)
    execution = {k: settings.pop(k) for k in EXECUTION_KEYS if k in settings}
    name = settings.pop("name", None)
    cls = get_class(settings.pop("_target_"))
    check_settings(cls, settings, f"evaluator={name}" if name else cls.__name__)
    return cls(**settings), execution


def check_settings(cls: type, settings: dict, which: str) -> None:
    """A start-up error naming the key when ``settings`` hold one ``cls`` does not take (a method's settings for
    another evaluator), or leave a required one null (a training evaluator without a protocol)."""
    parameters = inspect.signature(cls).parameters
    if not any(p.kind is p.VAR_KEYWORD for p in parameters.values()):
        unknown = sorted(set(settings) - set(parameters))
        if unknown:
            raise ConfigError(f"{which} takes no setting {', '.join(f'evaluator.{k}' for k in unknown)} (its settings: "
                              f"{', '.join(parameters)}); the method expects another evaluator: drop evaluator=... "
                              "to use the method's own")
    for key, parameter in parameters.items():
        if parameter.default is inspect.Parameter.empty and key in settings and settings[key] is None:
            hint = " (protocol=quick, or another of conf/protocol/)" if key == "protocol" else ""
            raise ConfigError(f"{which} needs evaluator.{key}, which is null here: set it{hint}")


def search(cfg: DictConfig, run_dir: str | Path) -> dict:
    run_configured(cfg, run_dir)
    return json.loads((Path(run_dir) / "search_summary.json").read_text())


def run_configured(cfg: DictConfig, run_dir: str | Path) -> SearchState:
    """The search the config describes (space, strategy, evaluator), in ``run_dir``; its final state, for
    methods that write more from it (a surrogate, a report)."""
    if not cfg.get("evaluator"):
        raise ConfigError(f"{cfg.method.name} is a multi-trial method and needs an evaluator "
                          "(setting: evaluator=train|train_job|proxy|synthetic)")
    space = space_from_config(cfg.space)
    strategy = instantiate(cfg.method.strategy, num_trials=cfg.method.num_trials)
    evaluator, execution = make_evaluator(cfg.evaluator)
    return run_search(cfg, Path(run_dir), space, strategy, evaluator, execution)


def run_search(cfg: DictConfig, run_dir: Path, space: SearchSpace, strategy: Strategy, evaluator: Evaluator,
               execution: dict, config: dict | None = None, title: str | None = None,
               write_arch: bool = True, scope: dict | None = None, log_trials: bool = True) -> SearchState:
    """One journaled search in ``run_dir`` (its own journal, summary, trace and arch.json): the start-up
    checks, the loop, and the outputs, also when it stops early. ``config`` is what a resume must match
    (default: the run's search settings). ``write_arch=False`` for trainings of given architectures, whose
    best is no search's answer (no arch.json, no train command). ``scope``: the tags of the trials whose best
    is the answer (a staged search's last stage); the summary, trace and logged best are theirs.
    ``log_trials=False``: no trial metrics to the run's loggers (a search after a training that owns them)."""
    strategy.check_space(space)
    evaluator.check(space)
    execution = dict(execution)
    max_retries = execution.pop("max_retries", 2)
    started = time.perf_counter()
    with Journal(run_dir) as journal:
        trial_log = open_journal(cfg, journal)
        config = search_config(cfg) if config is None else config
        check_same_search(trial_log, config)
        executor_name = execution.pop("executor", "inprocess")
        executor = make_executor(executor_name, **execution)  # after the checks: Ray is slow
        log.info("%s over the %s space on %s: %d trials, evaluator %s (%s), %s executor x%d", title or cfg.method.name,
                 space.name, data_label(cfg, evaluator), strategy.num_trials, type(evaluator).__name__,
                 evaluator.fingerprint(), executor_name, executor.workers)
        if trial_log.asks:
            log.info("resuming %s: %d trials finished, %d to send again", journal.path, len(trial_log.results),
                     len(trial_log.pending()))
        state = SearchState(trial_log, space, objective=evaluator.relative_objective())
        trial_logger = TrialLogger(cfg, state.where(**(scope or {})), run_dir) if log_trials else None
        loop = SearchLoop(journal, state, strategy, evaluator, executor, seed=cfg.seed,
                          max_failure_rate=cfg.method.max_failure_rate,
                          max_retries=max_retries, on_result=trial_logger, scope=scope)
        loop.record({"event": "session", "config": config, "time": round(time.time(), 3),
                     "num_trials": strategy.num_trials, "resumed": bool(trial_log.asks)})
        stopped_by = None
        try:
            loop.run()
        except (preemption.Interrupted, KeyboardInterrupt, SIGTERMException) as stop:
            stopped_by = getattr(stop, "signal_name", None) or preemption.requested() or type(stop).__name__
            raise
        finally:
            executor.close()
            if trial_logger is not None:
                trial_logger.close()
            title = title or f"{cfg.method.name} on {data_label(cfg, evaluator)}"
            write_outputs(cfg, run_dir, state.where(**(scope or {})), time.perf_counter() - started, evaluator,
                          strategy, title, write_arch, stopped_by)
    return state


def write_outputs(cfg: DictConfig, run_dir: Path, state: SearchState, wall_s: float, evaluator: Evaluator,
                  strategy: Strategy, title: str, write_arch: bool = True, stopped_by: str | None = None) -> None:
    """The summary and the trace, also when the search stops early (a failure rate, a stop signal, Ctrl-C). A
    search stopped by a signal (``stopped_by``) is unfinished: its summary says so, and no arch.json or train
    command is written as if it were done."""
    summary = summarize(cfg, state, wall_s, evaluator, strategy)
    if stopped_by is not None:
        summary.update(completed=False, stop_reason=f"interrupted by {stopped_by} (resume with ckpt_path=last)")
        write_arch = False
    if any(t.result is not None for t in state.trials):
        plot_search_trace(state.trials, run_dir / "search_trace.png", title=title)
    atomic_write_json(run_dir / "search_summary.json", summary)
    best = state.best()
    if not write_arch:
        return
    if best is None:
        which = " ".join(f"{k}={v}" for k, v in state.tags.items())  # a staged search's answer stage
        log.warning("no trial%s completed; no %s written (see %s)", f" ({which})" if which else "", ARCH_FILENAME,
                    run_dir / JOURNAL_FILENAME)
        return
    best.arch.save(run_dir / ARCH_FILENAME)
    print(f"best: trial {best.k} score {best.score:.4f} ({summary['trials']} trials, {summary['failed_trials']} "
          f"failed, {summary['total_evaluation_seconds']:.0f}s of evaluation)")
    if evaluator.reads_data:
        print_train_command(cfg, run_dir / ARCH_FILENAME)
    else:
        print(f"architecture written to {run_dir / ARCH_FILENAME}; it was scored by a synthetic objective, not on "
              "data: train it on a dataset of your choice with python train.py arch=<that file> dataset=<name>")
