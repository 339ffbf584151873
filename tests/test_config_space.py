"""Every combination of search.py's config groups starts, or fails at start-up with a message naming the setting.

Hypothesis draws combinations of method x space x dataset x evaluator x proxy x protocol x trainer x budget and
common overrides. Each is composed as search.py composes it and run up to the point where work would begin (the
first Trainer.fit, or the first ask of a multi-trial loop). It must either get there, or stop with Hydra's
composition error or a UserError (both exit status 2 on the command line, no traceback) whose message names
a setting; any other exception is a bug. ``LSNAS_CONFIG_EXAMPLES`` sets how many combinations are drawn.
"""

import collections
import os
import re
import tempfile
import traceback

import lightning.pytorch as pl
import pytest
from hydra.errors import HydraException
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from omegaconf.errors import OmegaConfBaseException

from lsnas.errors import find_user_error
from lsnas.methods import search
from lsnas.methods.multitrial.loop import SearchLoop
from tests.helpers.config import compose_config, options

DATASETS = {  # the embedded set, and file-based ones whose data is absent here (refused, naming the root)
    "digits": ["dataset=digits", "dataset.resolution=16"],
    "cifar10": ["dataset=cifar10", "dataset.download=false", "dataset.root=/nonexistent/cifar10"],
    "tiny_imagenet": ["dataset=tiny_imagenet", "dataset.root=/nonexistent/tiny-imagenet-200"],
    "imagenet_proxy": ["dataset=imagenet_proxy", "dataset.root=/nonexistent/imagenet"],
}
COMMON = {  # overrides users pass, good and bad values alike
    "seed": ["0", "3"],
    "trainer.precision": ["32-true", "bf16-mixed", "16-mixed"],
    "checkpoint.every_n_steps": ["null", "0", "5"],
    "checkpoint.every_minutes": ["null", "-1", "30"],
    "method.epochs": ["1", "0"],
    "method.num_trials": ["2", "0"],
    "method.batch_size": ["8", "0"],
    "stop_after_epochs": ["null", "1"],
}


def group(name: str) -> st.SearchStrategy:
    """An option of a config group, or none (the group's default)."""
    return st.one_of(st.none(), st.sampled_from([o for o in options(name) if not o.startswith("_")]))


COMBINATIONS = st.fixed_dictionaries({
    "method": st.sampled_from(options("method")), "space": group("space"), "dataset": st.sampled_from(sorted(DATASETS)),
    "evaluator": group("evaluator"), "proxy": group("proxy"), "protocol": group("protocol"),
    "trainer": st.sampled_from(["default", "cpu", "ddp"]), "budget": st.sampled_from(["small", "full"]),
    "common": st.dictionaries(st.sampled_from(sorted(COMMON)), st.none(), max_size=3).flatmap(
        lambda keys: st.fixed_dictionaries({k: st.sampled_from(COMMON[k]) for k in keys})),
})


def overrides_of(combo: dict) -> list[str]:
    out = [f"method={combo['method']}", *DATASETS[combo["dataset"]], f"trainer={combo['trainer']}",
           f"budget={combo['budget']}", "logger=none"]
    out += [f"{name}={combo[name]}" for name in ("space", "evaluator", "proxy", "protocol") if combo[name]]
    return out + [f"{k}={v}" for k, v in combo["common"].items()]


class Started(BaseException):
    """The run got to where work begins (a BaseException: nothing on the way may take it for a failure)."""


def started(*args, **kwargs):
    raise Started


def first_ask(loop: SearchLoop):
    loop._fill()  # the strategy proposes, given the space, the evaluator and the journal
    raise Started


def names_a_setting(message: str, cfg) -> bool:
    """Whether ``message`` names a key of the run's config: ``group=...`` or ``group.key``."""
    groups = "|".join(re.escape(str(key)) for key in cfg.keys())
    return bool(re.search(rf"\b({groups})(=|\.\w)", message))


def test_every_combination_of_config_groups_starts_or_fails_at_start_up_naming_the_setting(monkeypatch):
    monkeypatch.setattr(pl.Trainer, "fit", started)
    monkeypatch.setattr(SearchLoop, "run", first_ask)
    tally: collections.Counter = collections.Counter()
    bugs: list[str] = []
    seen_bugs: set[str] = set()

    @settings(max_examples=int(os.environ.get("LSNAS_CONFIG_EXAMPLES", 60)), deadline=None, derandomize=True,
              suppress_health_check=list(HealthCheck), database=None)
    @given(COMBINATIONS)
    def explore(combo):
        overrides = overrides_of(combo)
        try:
            cfg = compose_config("search", *overrides)
        except (HydraException, OmegaConfBaseException) as error:  # search.py: exit 2, Hydra's message
            tally["composition refused"] += 1
            assert str(error), overrides
            return
        with tempfile.TemporaryDirectory() as run_dir:
            try:
                search(cfg, run_dir)
                tally["finished (no work to do)"] += 1
            except Started:
                tally["started"] += 1
            except Exception as error:
                key, user_error = " ".join(overrides), find_user_error(error)
                if user_error is not None and names_a_setting(str(user_error), cfg):
                    tally["refused at start-up"] += 1
                elif key not in seen_bugs:  # (hypothesis replays a failing example)
                    seen_bugs.add(key)
                    detail = ("refused without naming a setting: " + str(user_error) if user_error is not None
                              else "".join(traceback.format_exception(error))[-1500:])
                    bugs.append(f"{key}\n{detail}")

    explore()
    print(f"\nconfig combinations: {sum(tally.values()) + len(bugs)} tried, {dict(tally)}, {len(bugs)} bugs")
    if bugs:
        pytest.fail(f"{len(bugs)} combination(s) crashed instead of starting or failing cleanly:\n\n" +
                    "\n\n".join(bugs[:int(os.environ.get("LSNAS_CONFIG_BUGS_SHOWN", 5))]))
