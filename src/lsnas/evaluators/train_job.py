"""Evaluate a candidate by training it with ``train.py`` as its own job, and read its ``metrics.json``.

    launcher: local     a subprocess on this machine (its output in <trial dir>/train.log)
    launcher: submitit  a job through submitit: SLURM (cluster: slurm) with nodes and GPUs per job, so one
                        evaluation can be a multi-node Lightning DDP run; cluster: local runs it locally.

The job's run dir is ``<trial dir>/train`` and it is started with ``ckpt_path=last``: a trial re-dispatched
after the driver died resumes its training from the last epoch it saved, and a job that finished while
the driver was down is read back without running again. On SLURM the job id is kept in
``<trial dir>/job_id`` and a re-dispatched trial waits for that job while the cluster still runs it.
The score is ``metric`` from metrics.json: ``val_top1``, the validation split held out of the training
set (``top1`` is the test split, for reporting, not for choosing).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from lsnas.arch import Architecture
from lsnas.errors import ConfigError
from lsnas.evaluators.base import EVALUATORS, Evaluator, Result, TrialContext, TrialLost
from lsnas.utils import preemption
from lsnas.utils.preemption import INTERRUPTED_EXIT

TRAIN_SCRIPT = Path(__file__).resolve().parents[3] / "train.py"  # the repository's entry point


def _tail(path: Path, lines: int = 15) -> str:
    if not path.exists():
        return ""
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


@EVALUATORS.register("train_job")
class TrainJobEvaluator(Evaluator):
    def __init__(self, dataset: str, protocol: str, overrides: list[str] | None = None, epochs: int | None = None,
                 metric: str = "val_top1", launcher: str = "local", timeout_s: float | None = None,
                 script: str | None = None, submitit: dict | None = None, job_overrides: list[str] | None = None):
        if launcher not in ("local", "submitit"):
            raise ConfigError(f"evaluator.launcher must be local or submitit, got {launcher!r}")
        self.dataset, self.protocol, self.epochs, self.metric = dataset, protocol, epochs, metric
        self.overrides = [*(job_overrides or []), *(overrides or [])]  # the command line's win
        self.launcher, self.timeout_s, self.submitit = launcher, timeout_s, dict(submitit or {})
        self.script = str(script or TRAIN_SCRIPT)
        if not Path(self.script).is_file():
            raise ConfigError(f"evaluator.script: no train.py at {self.script}")

    def settings(self) -> dict:  # where and how long a job runs does not change what its score means
        return {k: v for k, v in super().settings().items() if k not in ("launcher", "timeout_s", "submitit", "script")}

    def command(self, arch_path: Path, run_dir: Path, seed: int) -> list[str]:
        epochs = [f"protocol.epochs={self.epochs}"] if self.epochs is not None else []
        return [sys.executable, self.script, f"arch={arch_path}", f"dataset={self.dataset}",
                f"protocol={self.protocol}", f"seed={seed}", "logger=csv", "ckpt_path=last",
                f"hydra.run.dir={run_dir}", *epochs, *self.overrides]

    def evaluate(self, arch: Architecture, ctx: TrialContext) -> Result:
        trial_dir = Path(ctx.trial_dir)
        run_dir = trial_dir / "train"
        metrics_path = run_dir / "metrics.json"
        trial_dir.mkdir(parents=True, exist_ok=True)
        if not metrics_path.exists():  # else: the job finished while the driver was away
            cmd = self.command(arch.save(trial_dir / "arch.json"), run_dir, ctx.seed)
            if self.launcher == "local":
                self._run_local(cmd, trial_dir / "train.log")
            else:
                self._run_submitit(cmd, trial_dir)
        if not metrics_path.exists():
            raise RuntimeError(f"train.py wrote no {metrics_path}; its log ends:\n{_tail(trial_dir / 'train.log')}")
        metrics = json.loads(metrics_path.read_text())
        if metrics.get(self.metric) is None:
            raise RuntimeError(f"{metrics_path} has no {self.metric!r} (evaluator.metric)")
        cost = {"seconds": metrics.get("wall_time_s"), "epochs": metrics.get("epochs"),
                "macs": metrics.get("macs"), "params": metrics.get("params")}
        kept = {k: v for k, v in metrics.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
        return Result(score=float(metrics[self.metric]), cost=cost, metrics=kept,
                      artifacts={"run_dir": str(run_dir)})

    def _run_local(self, cmd: list[str], log_path: Path) -> None:
        env = {**os.environ, "HYDRA_FULL_ERROR": "1"}
        with open(log_path, "ab") as log:
            proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)
            started = time.monotonic()
            try:
                while proc.poll() is None:
                    if preemption.requested():  # the driver stops: the job saves (exit 75) and resumes later
                        proc.send_signal(signal.SIGTERM)
                        proc.wait()
                        break
                    if self.timeout_s and time.monotonic() - started > self.timeout_s:
                        proc.kill()
                        proc.wait()
                        raise TimeoutError(f"train.py ran past evaluator.timeout_s={self.timeout_s}")
                    time.sleep(0.2)
            except BaseException:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()
                raise
        if proc.returncode < 0:  # killed by a signal (the OOM killer, a preemption): worth another try
            raise TrialLost(f"train.py was killed by signal {-proc.returncode}; log ends:\n{_tail(log_path)}")
        if proc.returncode == INTERRUPTED_EXIT:  # it saved and stopped on a stop signal: the retry resumes it
            raise TrialLost(f"train.py was interrupted (exit {INTERRUPTED_EXIT}); log ends:\n{_tail(log_path)}")
        if proc.returncode != 0:
            raise RuntimeError(f"train.py exited with status {proc.returncode}; log ends:\n{_tail(log_path)}")

    def _run_submitit(self, cmd: list[str], trial_dir: Path) -> None:
        try:
            import submitit
        except ImportError:
            raise ConfigError("evaluator.launcher=submitit needs submitit: pip install 'lsnas[slurm]'") from None
        settings = dict(self.submitit)
        cluster = settings.pop("cluster", "slurm")
        folder = trial_dir / "submitit"
        job_id_path = trial_dir / "job_id"
        job = None
        if cluster == "slurm" and job_id_path.exists():  # re-attach to the job a previous driver started
            job = submitit.SlurmJob(folder=folder, job_id=job_id_path.read_text().strip())
            if job.state in ("FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL", "PREEMPTED", "OUT_OF_MEMORY"):
                job = None
        if job is None:
            executor = submitit.AutoExecutor(folder=folder, cluster=cluster)
            if self.timeout_s:  # evaluator.timeout_s wins over the cluster default
                settings["timeout_min"] = max(1, int(self.timeout_s // 60))
            executor.update_parameters(**{k: v for k, v in settings.items() if v is not None})
            job = executor.submit(submitit.helpers.CommandFunction(cmd, cwd=str(Path(self.script).parent)))
            job_id_path.write_text(str(job.job_id))
        while not job.done():  # the job runs on: a stopped driver finds its metrics.json when it resumes
            if preemption.requested():
                raise TrialLost(f"the driver stopped while job {job.job_id} runs; it is waited for on resume")
            time.sleep(5)
        try:
            job.result()
        except submitit.core.utils.FailedJobError as e:
            raise RuntimeError(f"job {job.job_id} failed: {e}") from None
        except submitit.core.utils.UncompletedJobError as e:
            raise TrialLost(f"job {job.job_id} did not complete: {e}") from None
