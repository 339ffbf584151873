"""The trial journal of a multi-trial search: ``<run dir>/trials.jsonl``, the search's only state.

One compact JSON event per line: ``session`` (the search-relevant config and its hash), ``ask`` (trial
index k, canonical architecture, digest, evaluator fingerprint, tags) and ``result`` (k, status, score,
cost, metrics, error). State is rebuilt by replaying the events (``TrialLog``), never pickled.

What its users lost with other tools, and what this does about it (Optuna #5138, #913; NNI #1463):
- one writer: a lock file keeps a second driver out of the run dir (the error names the holder);
- each batch of events is one ``os.write`` followed by ``fsync``, so a crash loses at most the batch being
  written, and never glues two records on one line;
- a torn last line (a kill mid-write) is set aside into ``trials.jsonl.torn`` and cut off before the next
  append, instead of breaking every later read;
- NaN and infinities are never written (``allow_nan=False``); a NaN score is a status, not a number;
- a damaged line before the tail is an error naming it; ``python -m lsnas.methods.multitrial.journal repair
  <run dir>`` sets such lines aside into ``trials.jsonl.bad`` (with results whose ask went with them);
- a full disk is an error naming the journal (``DiskFullError``), with every earlier event intact.
"""

from __future__ import annotations

import errno
import json
import os
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from lsnas.errors import UserError, disk_full
from lsnas.utils.io import atomic_write_bytes
from lsnas.utils.lock import DirLock, DirLockedError

JOURNAL_FILENAME = "trials.jsonl"
STATUSES = ("complete", "invalid", "nan", "oom", "timeout", "failed", "lost")
REUSABLE = ("complete", "invalid", "nan")  # results a duplicate may be answered with


class JournalLockedError(DirLockedError):
    """Another search driver holds this run dir."""


class JournalLock(DirLock):
    error = JournalLockedError


def encode_event(event: dict) -> bytes:
    try:
        return (json.dumps(event, separators=(",", ":"), sort_keys=True, allow_nan=False) + "\n").encode()
    except ValueError as e:
        raise ValueError(f"journal events hold no NaN or infinity (record the status instead): {event!r}") from e


class Journal:
    """Append-only JSONL events with one writer. Use as a context manager: it holds the run dir's lock."""

    def __init__(self, run_dir: str | Path):
        self.run_dir = Path(run_dir)
        self.path = self.run_dir / JOURNAL_FILENAME
        self.lock_path = self.run_dir / f"{JOURNAL_FILENAME}.lock"
        self._lock = JournalLock(self.lock_path, "a running search",
                                 "wait for it, or choose another run dir (hydra.run.dir=...)")

    def __enter__(self) -> Journal:
        self._lock.__enter__()
        self._repair_tail()
        return self

    def __exit__(self, *exc) -> None:
        self._lock.__exit__(*exc)

    def read(self) -> list[dict]:
        """Every complete event; a torn last line is left out (and set aside at the next ``__enter__``). A line
        before it that is not an event (an edit, a damaged disk) is an error naming it and the repair."""
        if not self.path.exists():
            return []
        good, _ = _split_torn(self.path.read_bytes())
        events = []
        for number, line in enumerate(good.splitlines(), start=1):
            if not line.strip():
                continue
            event = _parse(line)
            if event is None:
                raise JournalError(f"{self.path} line {number} is not a journal event: {line[:120]!r}. Set the bad "
                                   f"lines aside with: python -m lsnas.methods.multitrial.journal repair "
                                   f"{self.run_dir} (a trial whose ask goes is forgotten; the search asks another)")
            events.append(event)
        return events

    def repair(self) -> list[int]:
        """Move every line that is not an event, and results whose ask is gone, to ``trials.jsonl.bad``; the
        line numbers moved. Trials left without a result are pending and run again on resume."""
        if not self.path.exists():
            return []
        lines = self.path.read_bytes().splitlines()
        kept, bad, asked = [], [], set()
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            event = _parse(line)
            if event is not None and event["event"] == "ask":
                asked.add(event["k"])
            orphan = event is not None and event["event"] in ("result", "retry") and event["k"] not in asked
            (bad if event is None or orphan else kept).append((number, line))
        if bad:
            with open(self.path.with_name(self.path.name + ".bad"), "ab") as f:
                f.write(b"".join(line + b"\n" for _, line in bad))
            atomic_write_bytes(self.path, b"".join(line + b"\n" for _, line in kept))
        return [number for number, _ in bad]

    def append(self, events: Iterable[dict]) -> None:
        """Write ``events`` with one write and one fsync (the driver calls this once per loop turn)."""
        if not self._lock.held:
            raise RuntimeError("Journal.append outside 'with Journal(run_dir)': only the lock holder writes")
        payload = b"".join(encode_event(e) for e in events)
        if not payload:
            return
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            written = os.write(fd, payload)
            if written != len(payload):
                raise OSError(f"short write to {self.path}: {written} of {len(payload)} bytes")
            os.fsync(fd)
        except OSError as error:
            if error.errno == errno.ENOSPC:  # a part written is a torn tail, set aside on resume
                raise disk_full(self.path, "every earlier event in it is intact; the trials of this turn run again "
                                           "on resume") from error
            raise
        finally:
            os.close(fd)

    def _repair_tail(self) -> None:
        if not self.path.exists():
            return
        data = self.path.read_bytes()
        good, torn = _split_torn(data)
        if torn:
            with open(self.path.with_name(self.path.name + ".torn"), "ab") as f:
                f.write(torn + b"\n")
            with open(self.path, "r+b") as f:
                f.truncate(len(good))
                f.flush()
                os.fsync(f.fileno())


class JournalError(UserError):
    """The journal holds a line that is not an event; the message names it and the repair."""


def _parse(line: bytes) -> dict | None:
    try:
        event = json.loads(line)
    except ValueError:
        return None
    if not isinstance(event, dict) or "event" not in event:
        return None
    return event if event["event"] == "session" or isinstance(event.get("k"), int) else None


def _split_torn(data: bytes) -> tuple[bytes, bytes]:
    """(the complete lines, a torn last line): unterminated, or terminated but not valid JSON."""
    cut = data.rfind(b"\n", 0, len(data) - 1 if data.endswith(b"\n") else len(data)) + 1
    last = data[cut:]
    if not last.strip():
        return data, b""
    if last.endswith(b"\n"):
        try:
            json.loads(last)
            return data, b""
        except ValueError:
            pass
    return data[:cut], last.rstrip(b"\n")


@dataclass
class TrialLog:
    """The search state replayed from the journal's events, indexed so that a search of 10^5 trials costs the
    same per trial as one of 10^2: asks and results in arrival order, asks by (digest, fingerprint), the next k
    and the total cost kept as events arrive."""

    sessions: list[dict] = field(default_factory=list)
    asks: dict[int, dict] = field(default_factory=dict)
    results: dict[int, dict] = field(default_factory=dict)
    retries: dict[int, int] = field(default_factory=dict)  # k -> times a lost trial was sent again
    ask_order: list[int] = field(default_factory=list)     # k of each ask, as asked (increasing)
    result_order: list[int] = field(default_factory=list)  # k of each result, as they came in
    total_seconds: float = 0.0                             # the evaluation cost of every result
    _by_key: dict[tuple[str, str], list[int]] = field(default_factory=dict, repr=False)
    _next_k: int = 0

    @classmethod
    def replay(cls, events: Iterable[dict]) -> TrialLog:
        log = cls()
        for event in events:
            log.apply(event)
        return log

    def apply(self, event: dict) -> None:
        kind = event.get("event")
        if kind == "session":
            self.sessions.append(event)
        elif kind == "ask":
            k = event["k"]
            if k not in self.asks:
                self.ask_order.append(k)
                self._by_key.setdefault((event["digest"], event["fingerprint"]), []).append(k)
                self._next_k = max(self._next_k, k + 1)
            self.asks[k] = event
        elif kind == "result":
            if event["status"] not in STATUSES:
                raise ValueError(f"unknown trial status {event['status']!r}; known: {', '.join(STATUSES)}")
            k = event["k"]
            if k not in self.results:
                self.result_order.append(k)
            else:
                self.total_seconds -= _seconds(self.results[k])
            self.results[k] = event
            self.total_seconds += _seconds(event)
        elif kind == "retry":
            self.retries[event["k"]] = self.retries.get(event["k"], 0) + 1

    @property
    def next_k(self) -> int:
        return self._next_k

    def pending(self) -> list[int]:
        """Asked but not finished: in flight when the driver stopped, so re-dispatched, never re-asked."""
        return [k for k in self.ask_order if k not in self.results]

    def finished(self, key: tuple[str, str]) -> dict | None:
        """The result of an earlier trial of the same (architecture digest, evaluator fingerprint), if it says
        something about the architecture (complete, invalid, nan); a lost, timed-out, out-of-memory or
        failed trial may go otherwise next time, so its duplicate is evaluated again."""
        for k in self._by_key.get(key, ()):
            if self.results.get(k, {}).get("status") in REUSABLE:
                return self.results[k]
        return None


def _seconds(result: dict) -> float:
    return (result.get("cost") or {}).get("seconds") or 0.0


def main(argv: list[str] | None = None) -> int:
    """``python -m lsnas.methods.multitrial.journal repair <run dir>``"""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2 or args[0] != "repair":
        print(main.__doc__, file=sys.stderr)
        return 2
    journal = Journal(args[1])
    with journal:
        moved = journal.repair()
    print(f"{journal.path}: moved line(s) {', '.join(map(str, moved))} to {journal.path.name}.bad" if moved else
          f"{journal.path}: every line is an event; nothing to repair")
    return 0


if __name__ == "__main__":
    sys.exit(main())
