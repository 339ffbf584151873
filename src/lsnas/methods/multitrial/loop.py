"""The one ask/tell loop every multi-trial strategy runs in.

Each turn: ask the strategy while a worker is free, journal the asks together with the results that
came in (one write + fsync), hand the new trials to the executor, then wait for the first to finish.
Resuming is replaying the journal: trials asked but not finished are sent again (same k, same seed), and
the strategy, given the replayed state, goes on proposing what the uninterrupted search would have.
An architecture already evaluated with the same evaluator fingerprint is answered from the journal.

A stop signal (``lsnas.utils.preemption``) ends the loop between turns: complete results that came in are
journaled, a trial cut short by the stop is not (it stays pending and runs again on resume), nothing more is
asked, and ``Interrupted`` is raised.
"""

from __future__ import annotations

import collections
import logging
import random
import time
from collections.abc import Callable
from pathlib import Path

from lsnas.errors import UserError
from lsnas.evaluators.base import Evaluator, TrialContext
from lsnas.methods.multitrial.executors import Executor
from lsnas.methods.multitrial.journal import Journal, TrialLog
from lsnas.methods.multitrial.strategy import DONE, SearchState, Strategy, Trial
from lsnas.utils import preemption

log = logging.getLogger(__name__)
FAILURES = ("nan", "oom", "timeout", "failed", "lost")  # "invalid" is the space's business, not a failure


class SearchFailedError(UserError):
    """Too many trials failed; the message names the setting and the last error."""


def trial_rng(seed: int, k: int) -> random.Random:
    """The k-th proposal's randomness: the same in a resumed search as in an uninterrupted one."""
    return random.Random((int(seed) << 32) + int(k))


class SearchLoop:
    def __init__(self, journal: Journal, state: SearchState, strategy: Strategy, evaluator: Evaluator,
                 executor: Executor, seed: int, max_failure_rate: float = 0.5, min_trials_for_rate: int = 5,
                 max_retries: int = 2, on_result: Callable[[Trial], None] | None = None, scope: dict | None = None):
        self.journal, self.state, self.strategy = journal, state, strategy
        self.evaluator, self.executor, self.seed = evaluator, executor, seed
        self._fingerprints: dict[int, str] = {}  # id of a routed evaluator -> its fingerprint
        self.max_failure_rate, self.min_trials_for_rate = max_failure_rate, min_trials_for_rate
        self.max_retries, self.on_result = max_retries, on_result
        self.scope = dict(scope or {})  # the tags of the trials whose best the progress line shows (a stage)
        self._events: list[dict] = []
        self._submit: collections.deque[int] = collections.deque()  # journaled, not yet handed to the executor
        self._in_flight: dict[tuple[str, str], int] = {}  # (digest, fingerprint) -> the k evaluating it
        self._waiting: dict[int, list[int]] = collections.defaultdict(list)  # k -> duplicates awaiting it
        self._started = time.perf_counter()
        self._finished_here = 0  # results of this session (the failure rate is judged on them)
        self._failed_here: list[dict] = []
        self._stop_logged = False

    @property
    def log(self) -> TrialLog:
        return self.state.log

    def record(self, event: dict) -> None:
        self.log.apply(event)
        self._events.append(event)

    def flush(self) -> None:
        events, self._events = self._events, []  # never written twice, even if this write fails
        self.journal.append(events)

    # -- the loop --------------------------------------------------------------------------
    def run(self) -> SearchState:
        for k in self.log.pending():  # in flight when the last driver stopped: send again, never re-ask
            self._dispatch(k)
        try:
            while True:
                preemption.check(f"the journal ({len(self.log.results)} trials finished)")
                done = self._fill()
                self.flush()
                while self._submit and self.executor.free():  # a resume may hold more pending than workers
                    k = self._submit.popleft()
                    ask = self.log.asks[k]
                    self.executor.submit(self.evaluator.route(ask.get("tags", {})), ask["arch"], self._context(k))
                if not self.executor.in_flight():
                    if done:
                        return self.state
                    raise RuntimeError(f"{type(self.strategy).__name__} waits for results while no trial runs")
                self._finish(*self.executor.wait())
        finally:
            self.flush()

    def _fill(self) -> bool:
        """Ask while workers are free; True once the strategy has nothing more to propose."""
        if self.strategy.budget_left(self.state):
            self._check_failure_rate()  # before asking for more (a search that used its budget just ends)
        while self.executor.in_flight() + len(self._submit) < self.executor.workers:
            k = self.log.next_k
            proposal = self.strategy.ask(self.state, trial_rng(self.seed, k))
            if proposal is DONE:
                if self.strategy.stop_reason and not self._stop_logged:
                    log.info("the search stops: %s", self.strategy.stop_reason)
                    self._stop_logged = True
                return True
            if proposal is None:
                return False
            arch = proposal.arch
            self.record({"event": "ask", "k": k, "arch": arch.to_dict(), "digest": arch.digest,
                         "fingerprint": self._fingerprint(proposal.tags), "tags": proposal.tags,
                         "time": round(time.time(), 3)})
            self._dispatch(k)
        return False

    def _fingerprint(self, tags: dict) -> str:
        """The fingerprint of the evaluator that scores a trial with these tags (a staged search's stages have
        their own, so an architecture evaluated in one stage is not answered by the other's result)."""
        evaluator = self.evaluator.route(tags)
        if id(evaluator) not in self._fingerprints:
            self._fingerprints[id(evaluator)] = evaluator.fingerprint()
        return self._fingerprints[id(evaluator)]

    def _dispatch(self, k: int) -> None:
        ask = self.log.asks[k]
        key = (ask["digest"], ask["fingerprint"])
        if (earlier := self.log.finished(key)) is not None:
            self._answer_duplicate(k, earlier)
        elif key in self._in_flight:
            self._waiting[self._in_flight[key]].append(k)
        else:
            self._in_flight[key] = k
            self._submit.append(k)

    def _answer_duplicate(self, k: int, earlier: dict) -> None:
        copied = {key: v for key, v in earlier.items() if key not in ("k", "time", "duplicate_of")}
        self._result_event(k, {**copied, "cost": {"seconds": 0.0}, "duplicate_of": earlier.get("duplicate_of",
                                                                                               earlier["k"])})

    def _context(self, k: int) -> TrialContext:
        return TrialContext(k=k, seed=self.seed, trial_dir=str(Path(self.journal.run_dir) / "trials" / str(k)),
                            attempt=self.log.retries.get(k, 0))

    def _finish(self, k: int, result: dict) -> None:
        if result["status"] != "complete" and preemption.requested():  # cut short by the stop: pending, not failed
            log.info("trial %d stopped by %s: left pending, it runs again on resume", k, preemption.requested())
            return
        if result["status"] == "lost" and self.log.retries.get(k, 0) < self.max_retries:
            log.warning("trial %d lost (%s); retrying (%d of evaluator.max_retries=%d)", k,
                        (result.get("error") or "no error text").splitlines()[0], self.log.retries.get(k, 0) + 1,
                        self.max_retries)
            self.record({"event": "retry", "k": k, "error": result.get("error")})
            self._submit.append(k)
            return
        ask = self.log.asks[k]
        self._in_flight.pop((ask["digest"], ask["fingerprint"]), None)
        self._result_event(k, result)
        for dup in self._waiting.pop(k, []):
            self._answer_duplicate(dup, self.log.results[k])

    def _result_event(self, k: int, result: dict) -> None:
        self.record({"event": "result", "k": k, **result, "time": round(time.time(), 3)})
        trial = self.state.trial(k)
        self.strategy.tell(trial)
        self._finished_here += 1
        if self.log.results[k]["status"] in FAILURES:
            self._failed_here.append(self.log.results[k])
        self._progress(trial)
        if self.on_result:
            self.on_result(trial)

    # -- feedback and stopping -------------------------------------------------------------
    def _progress(self, trial: Trial) -> None:
        best = self.state.where(**self.scope).best() if self.scope else self.state.best()
        finished = len(self.log.results)
        total = max(self.strategy.num_trials, len(self.log.asks))
        elapsed = time.perf_counter() - self._started
        eta = elapsed / self._finished_here * max(total - finished, 0)
        name = self.evaluator.route(trial.tags).score_name
        score = f"{name} {trial.score:.4f}" if trial.score is not None else trial.status
        seconds = trial.result.get("cost", {}).get("seconds") or 0.0
        note = f" (= trial {trial.result['duplicate_of']})" if "duplicate_of" in trial.result else ""
        # trials are named by k everywhere (journal, trials/<k>, plots); the count is the progress
        log.info("trial %d (%d/%d) %s%s in %.1fs | best %s (trial %s) | eta %s", trial.k, finished, total, score, note,
                 seconds, f"{best.score:.4f}" if best else "-", best.k if best else "-", _duration(eta))

    def _check_failure_rate(self) -> None:
        done, failed = self._finished_here, self._failed_here  # a resumed search is not stopped by failures
        # it was resumed to get past
        if done >= self.min_trials_for_rate and len(failed) > self.max_failure_rate * done:
            last = (failed[-1].get("error") or failed[-1]["status"]).strip().splitlines()
            raise SearchFailedError(
                f"{len(failed)} of {done} trials failed, more than method.max_failure_rate="
                f"{self.max_failure_rate}; the search stops. Last failure (trial {failed[-1]['k']}, "
                f"{failed[-1]['status']}): {last[0] if last else ''}. Every error is in trials.jsonl; fix the cause "
                "and resume with ckpt_path=last, or raise method.max_failure_rate")


def _duration(seconds: float) -> str:
    seconds = int(seconds)
    if seconds >= 3600:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    return f"{seconds // 60}m{seconds % 60:02d}s"
