import errno
import json
import os

import pytest

from lsnas.errors import DiskFullError
from lsnas.methods.multitrial.journal import Journal, JournalError, JournalLockedError, TrialLog, main


def ask(k, digest="a", fp="f"):
    return {"event": "ask", "k": k, "digest": digest, "fingerprint": fp, "arch": {"space": "darts"}}


def result(k, status="complete", score=0.5):
    return {"event": "result", "k": k, "status": status, "score": score}


def test_events_round_trip_one_line_each(tmp_path):
    with Journal(tmp_path) as j:
        j.append([{"event": "session", "config_hash": "h"}, ask(0)])
        j.append([result(0)])
    lines = (tmp_path / "trials.jsonl").read_text().splitlines()
    assert [json.loads(line)["event"] for line in lines] == ["session", "ask", "result"]
    assert Journal(tmp_path).read() == [json.loads(line) for line in lines]


def test_a_torn_last_line_is_set_aside_and_cut_before_the_next_append(tmp_path):
    with Journal(tmp_path) as j:
        j.append([ask(0), result(0)])
    with open(tmp_path / "trials.jsonl", "ab") as f:
        f.write(b'{"event":"ask","k":1,"dig')  # a kill in the middle of a write
    assert len(Journal(tmp_path).read()) == 2  # readers skip it
    with Journal(tmp_path) as j:
        j.append([ask(1)])
    events = Journal(tmp_path).read()
    assert [e["event"] for e in events] == ["ask", "result", "ask"] and events[-1]["k"] == 1
    assert (tmp_path / "trials.jsonl.torn").read_bytes() == b'{"event":"ask","k":1,"dig\n'


def test_a_damaged_line_inside_the_journal_is_an_error_naming_it_and_repair_sets_it_aside(tmp_path, capsys):
    with Journal(tmp_path) as j:
        j.append([{"event": "session", "config_hash": "h"}, ask(0), result(0), ask(1), result(1), ask(2)])
    lines = (tmp_path / "trials.jsonl").read_bytes().splitlines()
    lines[3] = b'{"event":"ask","k":1,"di\x00\x00'  # an edit, a bad sector: trial 1's ask is unreadable
    (tmp_path / "trials.jsonl").write_bytes(b"".join(line + b"\n" for line in lines))
    with pytest.raises(JournalError, match=r"trials.jsonl line 4 is not a journal event.*journal repair"):
        Journal(tmp_path).read()
    assert main(["repair", str(tmp_path)]) == 0
    assert "moved line(s) 4, 5" in capsys.readouterr().out  # the bad line, and the result whose ask it was
    log = TrialLog.replay(Journal(tmp_path).read())
    assert sorted(log.results) == [0] and log.pending() == [2]  # trial 1 is forgotten; the budget asks another
    assert len((tmp_path / "trials.jsonl.bad").read_bytes().splitlines()) == 2


def test_a_full_disk_while_journaling_is_an_error_naming_the_journal_and_keeps_what_was_written(tmp_path,
                                                                                                monkeypatch):
    with Journal(tmp_path) as j:
        j.append([ask(0), result(0)])

        def no_space(fd, data):
            raise OSError(errno.ENOSPC, "No space left on device")

        monkeypatch.setattr(os, "write", no_space)
        with pytest.raises(DiskFullError, match=r"trials.jsonl; every earlier event in it is intact"):
            j.append([ask(1)])
    assert [e["k"] for e in Journal(tmp_path).read()] == [0, 0]


def test_nan_is_never_written(tmp_path):
    with Journal(tmp_path) as j, pytest.raises(ValueError, match="no NaN"):
        j.append([result(0, score=float("nan"))])
    assert not (tmp_path / "trials.jsonl").exists() or Journal(tmp_path).read() == []


def test_a_second_driver_is_kept_out(tmp_path):
    with Journal(tmp_path):
        with pytest.raises(JournalLockedError, match="in use by a running search"):
            Journal(tmp_path).__enter__()
    with Journal(tmp_path):  # released on exit
        pass


def test_writing_needs_the_lock(tmp_path):
    with pytest.raises(RuntimeError, match="only the lock holder writes"):
        Journal(tmp_path).append([ask(0)])


def test_replay_finds_pending_trials_and_answers_duplicates():
    log = TrialLog.replay([ask(0, "a"), result(0, score=0.7), ask(1, "b"), ask(2, "c"), result(2, "failed", None)])
    assert log.next_k == 3 and log.pending() == [1]
    assert log.finished(("a", "f"))["score"] == 0.7 and log.finished(("b", "f")) is None
    assert log.finished(("a", "other evaluator")) is None
    with pytest.raises(ValueError, match="unknown trial status 'weird'"):
        TrialLog.replay([ask(0), result(0, "weird")])


def test_sigkill_mid_search_leaves_a_readable_journal_and_a_free_lock(tmp_path):
    import signal
    import subprocess
    import sys
    import time

    writer = ("import sys; from lsnas.methods.multitrial.journal import Journal\n"
              "with Journal(sys.argv[1]) as j:\n"
              "    k = 0\n"
              "    while True:\n"
              "        j.append([{'event': 'ask', 'k': k, 'digest': 'x' * 500, 'fingerprint': 'f'}]); k += 1\n")
    proc = subprocess.Popen([sys.executable, "-c", writer, str(tmp_path)])
    deadline = time.time() + 30
    while time.time() < deadline and len(Journal(tmp_path).read()) < 50:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    with Journal(tmp_path) as j:  # the dead driver's lock is gone with it; a torn tail is repaired
        events = j.read()
        assert len(events) >= 50 and [e["k"] for e in events] == list(range(len(events)))
        j.append([{"event": "result", "k": 0, "status": "lost", "score": None}])
    assert Journal(tmp_path).read()[-1]["status"] == "lost"
