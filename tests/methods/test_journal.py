import json

import pytest

from lsnas.methods.multitrial.journal import Journal, JournalLockedError, TrialLog


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
