"""What the command-line entry points (search.py, train.py) share around Hydra.

- A user error (unknown name, missing data, malformed arch.json, an impossible combination) prints its
  message and exits with status 2, without a traceback; ``HYDRA_FULL_ERROR=1`` shows the traceback.
  Hydra's own composition errors (``method=nope``, a malformed override) exit with status 2 too.
- Each log line is printed once, through Hydra's handlers (console and the run dir's log file).
- Third-party tips and deprecation noise are silenced.
- An open W&B run is finished even when the task fails.
- A stop signal (SIGTERM; SLURM's USR1/USR2) ends the task at a safe point with what it had saved, exit status
  75 ("interrupted, resume me") and the command that resumes it; no final artifacts are written.

Kept free of heavy imports so ``--help`` stays fast.
"""

from __future__ import annotations

import importlib
import logging
import os
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path

from lsnas.utils import preemption
from lsnas.utils.preemption import INTERRUPTED_EXIT

USAGE_ERROR = 2
_task_started = False

# Messages that say nothing to a user of lsnas (we choose workers, batch counts and loggers on purpose).
_NOISE = (
    r".*does not have many workers.*",
    r".*smaller than the logging interval.*",
    r".*isinstance\(treespec, LeafSpec\)` is deprecated.*",
    r".*`torch.cuda.amp.*` is deprecated.*",
    r".*Checkpoint directory .* exists and is not empty.*",
    # lsnas's samplers and MidEpochCheckpoint resume an epoch exactly without Lightning's loader state
    r".*resuming from a checkpoint that ended before the epoch ended.*",
)


def full_errors() -> bool:
    return os.environ.get("HYDRA_FULL_ERROR") == "1"


class _DropTips(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return "💡 Tip" not in record.getMessage()


def quiet_third_party() -> None:
    """One copy of each log line, and no third-party tips or deprecation noise."""
    for pattern in _NOISE:
        warnings.filterwarnings("ignore", message=pattern)
    for module in ("lightning", "lightning_fabric", "pytorch_lightning", "torch", "torchvision", "wandb", "timm"):
        warnings.filterwarnings("ignore", category=DeprecationWarning, module=module)
        warnings.filterwarnings("ignore", category=FutureWarning, module=module)
    root = logging.getLogger()
    for handler in root.handlers:
        handler.addFilter(_DropTips())
    if root.handlers:  # Hydra configured logging: let Lightning's records reach its handlers only
        for name in ("lightning", "lightning.pytorch", "lightning.fabric"):
            logger = logging.getLogger(name)
            for handler in list(logger.handlers):
                logger.removeHandler(handler)
            logger.propagate = True


def _finish_wandb(exit_code: int = 1) -> None:
    wandb = sys.modules.get("wandb")
    if wandb is not None and getattr(wandb, "run", None) is not None:
        wandb.finish(exit_code=exit_code)


def run_task(target: str, cfg, run_dir: str):
    """Call ``target`` ("module:function") with (cfg, run_dir), reporting user errors as such."""
    global _task_started
    _task_started = True
    from lsnas.errors import find_user_error

    module, name = target.split(":")
    task = getattr(importlib.import_module(module), name)
    # Lightning adds its own console handler when imported, and a task may import it only when it runs
    # (methods pick their runner from the config): import it now, then quiet it
    importlib.import_module("lightning.pytorch")
    quiet_third_party()
    from lightning.pytorch.utilities.exceptions import SIGTERMException

    from lsnas.training.trainer import close_loggers

    preemption.install((cfg.get("checkpoint") or {}).get("signals", preemption.SIGNALS))
    started = time.time()
    try:
        result = task(cfg, run_dir)
        print_written(run_dir, started)
        return result
    except (preemption.Interrupted, SIGTERMException) as stop:
        _finish_wandb(INTERRUPTED_EXIT)
        _report_interrupted(stop, run_dir)
        preemption.forward()  # a scheduler's own handler (submitit requeues the job), now that all is saved
        sys.exit(INTERRUPTED_EXIT)
    except Exception as error:
        _finish_wandb()
        user_error = find_user_error(error)
        if user_error is None or full_errors():
            raise
        print(f"error: {user_error}", file=sys.stderr)
        if _in_multirun():  # one job of a sweep failed: the sweep records it and goes on
            raise
        print("(set HYDRA_FULL_ERROR=1 for the traceback)", file=sys.stderr)
        sys.exit(USAGE_ERROR)
    finally:
        close_loggers()  # a sweep's next job in this process opens its own
        preemption.uninstall()


def resume_command(run_dir: str | Path) -> str:
    """This command again, resuming ``run_dir`` (its other overrides kept)."""
    import shlex

    kept = [a for a in sys.argv[1:] if not a.startswith(("ckpt_path=", "hydra.run.dir=", "-m", "--multirun"))]
    return shlex.join(["python", Path(sys.argv[0]).name, *kept, "ckpt_path=last", f"hydra.run.dir={run_dir}"])


def _report_interrupted(stop: BaseException, run_dir: str | Path) -> None:
    name = getattr(stop, "signal_name", None) or preemption.requested() or "SIGTERM"
    saved = getattr(stop, "saved", "")
    if saved:
        saved = f"saved {saved}"
    else:  # Lightning's own stop: outside the training loop (its sanity check, a test), where lsnas saves nothing new
        from lsnas.training.trainer import CHECKPOINT_DIR

        last = Path(run_dir) / CHECKPOINT_DIR / "last.ckpt"
        saved = (f"stopped outside the training loop; its last checkpoint is {last}" if last.exists() else
                 "stopped before its first training step, so nothing was saved and a resume starts afresh")
    print(f"interrupted by {name}: {saved}; nothing final was written. Resume with:\n  "
          f"{resume_command(run_dir)}", file=sys.stderr)


def written_since(run_dir: str | Path, since: float) -> list[str]:
    """The run dir's entries (files, and folders with anything new inside) written at or after ``since``, less
    Hydra's own and hidden ones, sorted: what a run leaves for the user to open."""
    root = Path(run_dir)
    if not root.is_dir():
        return []
    names = []
    for entry in sorted(root.iterdir()):
        if entry.name.startswith(".") or entry.suffix in (".log", ".lock"):
            continue
        paths = [entry] if entry.is_file() else [p for p in entry.rglob("*") if p.is_file()]
        if any(p.stat().st_mtime >= since - 1 for p in paths):
            names.append(entry.name + ("/" if entry.is_dir() else ""))
    return names


def print_written(run_dir: str | Path, since: float) -> None:
    """End a run by naming what it wrote (reports, plots, arch.json), once (rank 0)."""
    from lightning.pytorch.utilities import rank_zero_only

    names = written_since(run_dir, since)
    if names and rank_zero_only.rank == 0:
        print(f"wrote to {run_dir}: {', '.join(names)}")


def _in_multirun() -> bool:
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    return HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN


def run_cli(main: Callable[[], object]) -> None:
    """Run a ``@hydra.main`` function; a configuration error from Hydra exits with status 2."""
    try:
        main()
    except SystemExit as exit_:
        if exit_.code == 1 and not _task_started:  # Hydra reported a composition error and exited
            sys.exit(USAGE_ERROR)
        raise


def rank_suffix() -> str:
    """'' for the first process of a run, '_rank<r>' (or '_node<n>_rank<l>') for the others, from the
    launcher's environment (torchrun / Lightning: RANK or NODE_RANK + LOCAL_RANK; SLURM: SLURM_PROCID).
    Several processes of one multi-node run share a run dir; each writes its own log file."""
    for var in ("RANK", "SLURM_PROCID"):
        if os.environ.get(var, "0") not in ("", "0"):
            return f"_rank{os.environ[var]}"
    node, local = os.environ.get("NODE_RANK", "0"), os.environ.get("LOCAL_RANK", "0")
    return "" if (node, local) == ("0", "0") else f"_node{node}_rank{local}"


FORWARDED = ("dataset.", "protocol.", "trainer=", "trainer.", "data_dir=", "regime=")


def task_overrides() -> list[str]:
    """The run's command-line overrides that a job it starts (train.py for a trial) should get too: the
    data, protocol and trainer settings. Empty outside a Hydra run."""
    from hydra.core.hydra_config import HydraConfig

    if not HydraConfig.initialized():
        return []
    return [o for o in HydraConfig.get().overrides.task if o.lstrip("+~").startswith(FORWARDED)]


def register_resolvers() -> None:
    from omegaconf import OmegaConf

    OmegaConf.register_new_resolver("lsnas.rank_suffix", rank_suffix, replace=True)
    OmegaConf.register_new_resolver("lsnas.task_overrides", task_overrides, replace=True)
    # Only the first process writes the run dir's .hydra/ (the others' configs are the same).
    OmegaConf.register_new_resolver("lsnas.hydra_subdir", lambda: ".hydra" if not rank_suffix() else None,
                                    replace=True)


register_resolvers()
