"""The search state's kept-up-to-date answers equal their definitions over the whole log, whatever the order in
which results arrive, for the whole search and for a stage's view."""

import random

from lsnas.methods.multitrial.journal import TrialLog
from lsnas.methods.multitrial.strategy import SearchState


def naive(log: TrialLog, tags: dict):
    ks = [k for k in sorted(log.asks) if all(log.asks[k].get("tags", {}).get(t) == v for t, v in tags.items())]
    complete = [k for k in ks if log.results.get(k, {}).get("status") == "complete"]
    best = max(complete, key=lambda k: (log.results[k]["score"], -k), default=None)
    return {"asked": ks, "seen": {log.asks[k]["digest"] for k in ks}, "complete": complete, "best": best,
            "pending": sum(k not in log.results for k in ks)}


def answers(state: SearchState):
    best = state.best()
    return {"asked": [t.k for t in state.trials], "seen": set(state.seen()),
            "complete": [t.k for t in state.completed()], "best": best.k if best else None,
            "pending": state.num_pending}


def test_kept_answers_equal_the_definitions_as_events_arrive_out_of_order():
    rng = random.Random(0)
    log = TrialLog()
    state = SearchState(log, space=None)
    stage = state.where(stage="a")
    in_flight: list[int] = []
    for k in range(300):
        digest = f"d{rng.randrange(120)}"  # duplicates among the asks
        log.apply({"event": "ask", "k": k, "digest": digest, "fingerprint": "f",
                   "tags": {"stage": rng.choice("ab")}, "arch": {}})
        in_flight.append(k)
        while in_flight and rng.random() < 0.6:  # results come back in any order, some failed, scores tie
            done = in_flight.pop(rng.randrange(len(in_flight)))
            status = rng.choice(["complete", "complete", "complete", "failed", "nan"])
            log.apply({"event": "result", "k": done, "status": status,
                       **({"score": rng.randrange(20) / 20, "cost": {"seconds": 0.5}} if status == "complete" else {})})
        if k % 7 == 0:  # asked between events, as strategies do
            assert answers(state) == naive(log, {})
            assert answers(stage) == naive(log, {"stage": "a"})
            assert state.completed(last=5) == state.completed()[-5:]
            assert state.first(3) == state.trials[:3]
    assert answers(state) == naive(log, {}) and answers(stage) == naive(log, {"stage": "a"})
    assert state.where(stage="a") is stage
    assert log.total_seconds == sum(r.get("cost", {}).get("seconds", 0) for r in log.results.values())
    assert log.next_k == 300 and log.pending() == sorted(set(range(300)) - set(log.results))
    for ask in log.asks.values():  # duplicates by (digest, fingerprint) through the index
        earlier = log.finished((ask["digest"], "f"))
        reusable = [j for j in sorted(log.asks) if log.asks[j]["digest"] == ask["digest"]
                    and log.results.get(j, {}).get("status") in ("complete", "invalid", "nan")]
        assert (earlier["k"] if earlier else None) == (reusable[0] if reusable else None)
