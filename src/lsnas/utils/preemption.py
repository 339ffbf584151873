"""Preemption: a scheduler's stop signal ends a run as "interrupted, resume me", never as a finished run.

On SIGTERM, or the warning signal a cluster sends before a time limit or a preemption (SLURM's ``--signal``:
USR1 for Lightning's convention, USR2 for submitit's), the handler only records the request. The running
work stops at its next safe point: a training or search saves a checkpoint after the current batch, a
multi-trial driver journals what finished and leaves the running trial pending. The task then raises
``Interrupted`` and the command exits with ``INTERRUPTED_EXIT`` (75, EX_TEMPFAIL: "try again") without
writing final artifacts or next-step commands. A second signal while saving is only logged: nothing is
cut short mid-write.

A handler that was installed before ours (submitit's requeue on USR2) is called once the run has saved, so
a SLURM job requeues itself and resumes from its run dir (``ckpt_path=last``).
"""

from __future__ import annotations

import logging
import signal
from collections.abc import Iterable

log = logging.getLogger("lsnas")

INTERRUPTED_EXIT = 75  # sysexits.h EX_TEMPFAIL: a temporary failure, run it again
SIGNALS = ("SIGTERM", "SIGUSR1", "SIGUSR2")

_requested: str | None = None
_previous: dict[int, object] = {}
_installed: set[int] = set()


class Interrupted(BaseException):
    """The run stopped at a safe point because a stop signal arrived; what it had is saved. A BaseException,
    so the code that turns a trial's exceptions into failed results lets it through."""

    def __init__(self, signal_name: str, saved: str = ""):
        super().__init__(signal_name, saved)
        self.signal_name, self.saved = signal_name, saved


def _on_signal(signum: int, frame) -> None:
    global _requested
    name = signal.Signals(signum).name
    if _requested is None:
        _requested = name
        log.warning("received %s: stopping at the next safe point (saving first); resume with ckpt_path=last", name)
    else:
        log.warning("received %s while stopping on %s: still saving, not cut short", name, _requested)


def install(names: Iterable[str] = SIGNALS) -> None:
    """Record the stop signals ``names`` instead of dying on them (main thread only; elsewhere a no-op)."""
    global _requested
    _requested = None
    for name in names:
        signum = getattr(signal, name, None)
        if signum is None:  # a platform without it (Windows has no USR1)
            continue
        try:
            previous = signal.signal(signum, _on_signal)
        except ValueError:  # not the main thread: the process's owner decides
            return
        if previous is not _on_signal:
            _previous[signum] = previous
        _installed.add(signum)


def reclaim() -> None:
    """Put lsnas's handler back on the signals ``install`` took, over handlers a library set since: Lightning's
    Trainer sets its own SIGTERM handler on every fit (calling lsnas's too), and under DDP it broadcasts its flag at
    each batch's start and stops there, before any callback could save. The handlers that were there before lsnas's
    are still called once the run has saved (``forward``)."""
    for signum in _installed:
        try:
            signal.signal(signum, _on_signal)
        except ValueError:  # not the main thread
            return


def uninstall() -> None:
    """Put back the handlers ``install`` replaced, and forget a request (the next task starts afresh)."""
    global _requested
    _requested = None
    for signum, handler in _previous.items():
        signal.signal(signum, handler if handler is not None else signal.SIG_DFL)
    _previous.clear()
    _installed.clear()


def requested() -> str | None:
    """The name of the stop signal received, or None."""
    return _requested


def request(name: str = "SIGTERM") -> None:
    """Ask the run to stop as if ``name`` had arrived (what the handler does; for code that learns of a stop
    another way, such as Lightning's SIGTERM flag)."""
    global _requested
    _requested = _requested or name


def check(saved: str = "") -> None:
    """Raise ``Interrupted`` if a stop signal arrived; call it where stopping loses nothing."""
    if _requested is not None:
        raise Interrupted(_requested, saved)


def forward() -> None:
    """Hand the signal to the handler that was there before ours (submitit's checkpoint-and-requeue), now that
    the run has saved. It may exit the process itself."""
    if _requested is None:
        return
    signum = getattr(signal, _requested)
    handler = _previous.get(signum)
    if callable(handler):
        log.info("passing %s on to the handler installed before lsnas's (%s)", _requested,
                 getattr(handler, "__qualname__", handler))
        handler(signum, None)
