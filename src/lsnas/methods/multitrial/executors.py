"""Where trials run: in the driver, in threads (for evaluators that wait on jobs), or on Ray.

Every executor takes trials with ``submit`` while ``free()`` and hands back finished ones, first
finished first, with ``wait`` (no batch barrier: a free worker gets the next trial at once).
Selected by ``evaluator.executor`` through the registry; Ray's settings are ``evaluator.workers``,
``evaluator.ray_address`` (null: a local Ray; ``auto``: the cluster this machine belongs to),
``evaluator.cpus_per_trial`` and ``evaluator.gpus_per_trial``.
"""

from __future__ import annotations

import collections
import concurrent.futures as cf
import os
from dataclasses import asdict

from lsnas.errors import ConfigError
from lsnas.evaluators.base import Evaluator, TrialContext, error_text, run_trial
from lsnas.registry import Registry
from lsnas.utils import preemption

EXECUTORS: Registry[type] = Registry("executor", setting="evaluator.executor")


class Executor:
    def __init__(self, workers: int = 1, **_):
        if workers < 1:
            raise ConfigError(f"evaluator.workers must be at least 1, got {workers}")
        self.workers = int(workers)

    def free(self) -> bool:
        return self.in_flight() < self.workers

    def in_flight(self) -> int:
        raise NotImplementedError

    def submit(self, evaluator: Evaluator, arch: dict, ctx: TrialContext) -> None:
        raise NotImplementedError

    def wait(self) -> tuple[int, dict]:
        """(k, result dict) of the first trial to finish."""
        raise NotImplementedError

    def close(self) -> None:
        pass


@EXECUTORS.register("inprocess")
class InProcessExecutor(Executor):
    """One trial at a time in the driver's process: no start-up cost, results in order."""

    def __init__(self, workers: int = 1, **_):
        if workers != 1:
            raise ConfigError(f"evaluator.workers={workers} needs a parallel executor: evaluator.executor=ray "
                              "(or threads, for evaluators that wait on jobs)")
        super().__init__(1)
        self._done: collections.deque = collections.deque()

    def in_flight(self) -> int:
        return len(self._done)

    def submit(self, evaluator, arch, ctx) -> None:
        self._done.append((ctx.k, run_trial(evaluator, arch, ctx)))

    def wait(self) -> tuple[int, dict]:
        return self._done.popleft()


@EXECUTORS.register("threads")
class ThreadExecutor(Executor):
    """``workers`` threads, for evaluators whose work happens elsewhere (train_job: subprocesses, SLURM jobs)."""

    def __init__(self, workers: int = 1, **_):
        super().__init__(workers)
        self._pool = cf.ThreadPoolExecutor(self.workers, thread_name_prefix="trial")
        self._futures: dict[cf.Future, int] = {}

    def in_flight(self) -> int:
        return len(self._futures)

    def submit(self, evaluator, arch, ctx) -> None:
        self._futures[self._pool.submit(run_trial, evaluator, arch, ctx)] = ctx.k

    def wait(self) -> tuple[int, dict]:
        done, _ = cf.wait(list(self._futures), return_when=cf.FIRST_COMPLETED)
        future = min(done, key=lambda f: self._futures[f])
        return self._futures.pop(future), future.result()

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)


@EXECUTORS.register("ray")
class RayExecutor(Executor):
    """Trials as Ray tasks with their own resources. A GPU trial gets a fresh worker process
    (``max_calls=1``), so its GPU memory is returned when it ends. A worker that dies makes the trial
    ``lost`` (the driver retries it). A stop signal is seen within ``poll_seconds``, the trials in flight left
    pending."""

    poll_seconds = 1.0

    def __init__(self, workers: int = 1, ray_address: str | None = None, cpus_per_trial: float = 1,
                 gpus_per_trial: float = 0, **_):
        super().__init__(workers)
        try:
            import ray
        except ImportError:
            raise ConfigError("evaluator.executor=ray needs Ray: pip install 'lsnas[ray]'") from None
        self._ray = ray
        if not ray.is_initialized():
            # a local Ray gets the CPUs the trials ask for (at least the machine's); GPUs it detects itself
            local = {} if ray_address else {"num_cpus": max(int(workers * cpus_per_trial), os.cpu_count() or 1)}
            ray.init(address=ray_address, include_dashboard=False, log_to_driver=False, configure_logging=False,
                     **local)
            # Ray's core installs a SIGTERM handler in the driver that aborts it (exit -6, nothing journaled):
            # lsnas's stop handling goes back on, so a preempted search still saves and exits to be resumed
            preemption.reclaim()
            self._owns_ray = True
        else:
            self._owns_ray = False
        self._task = ray.remote(num_cpus=cpus_per_trial, num_gpus=gpus_per_trial,
                                max_calls=1 if gpus_per_trial else 0, max_retries=0)(_ray_trial)
        self._refs: dict = {}

    def in_flight(self) -> int:
        return len(self._refs)

    def submit(self, evaluator, arch, ctx) -> None:
        self._refs[self._task.remote(evaluator, arch, asdict(ctx))] = ctx.k

    def wait(self) -> tuple[int, dict]:
        while True:
            ready, _ = self._ray.wait(list(self._refs), num_returns=1, timeout=self.poll_seconds)
            if ready:
                break
            # A stop signal reaches the driver, not Ray's workers: stop now rather than when the running trials end
            # (hours, past a scheduler's grace period). They have no result, so they stay pending in the journal and
            # run again on resume; close() cancels them.
            preemption.check(f"the journal ({len(self._refs)} trials in flight left pending)")
        (ref,) = ready
        k = self._refs.pop(ref)
        try:
            return k, self._ray.get(ref)
        except Exception as error:
            return k, {"status": self._status_of(error), "error": error_text(error), "cost": {}}

    def _status_of(self, error: Exception) -> str:
        """A trial's own failures are caught inside it; what reaches here is Ray's: its memory monitor killed
        the worker (oom), the task could not run (an evaluator that does not unpickle: failed), or the worker
        or its node died (lost, retried)."""
        exceptions = self._ray.exceptions
        if isinstance(error, exceptions.OutOfMemoryError):
            return "oom"
        if isinstance(error, exceptions.RayTaskError):
            return "failed"
        return "lost"

    def close(self) -> None:
        for ref in self._refs:
            self._ray.cancel(ref, force=True)
        self._refs.clear()
        if self._owns_ray:
            self._ray.shutdown()


def _ray_trial(evaluator: Evaluator, arch: dict, ctx: dict) -> dict:
    return run_trial(evaluator, arch, TrialContext(**ctx))


def make_executor(name: str, **settings) -> Executor:
    return EXECUTORS.get(name)(**settings)
