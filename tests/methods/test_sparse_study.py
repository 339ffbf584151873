"""The sparse-search study (method=sparse_random) and its report."""

import csv
import json
import random

import pytest
from scipy import stats

from lsnas.arch import Architecture
from lsnas.errors import ConfigError
from lsnas.methods import search
from lsnas.methods.multitrial.journal import Journal, TrialLog
from lsnas.methods.sparse.report import write_report
from lsnas.spaces.sparse import SparseSpace
from tests.helpers.config import compose_config

SPACE = SparseSpace({"kind": "mlp", "widths": [8, 8]}, sparsity=0.5)


def write_trainings(run_dir, entries, train_loss=None):
    """A final-training journal by hand: (arch, tags, test top-1, validation curve) per trial; ``train_loss``:
    a function of the entry's index giving its last training loss (10 classes), or None."""
    with Journal(run_dir) as journal:
        for k, (arch, tags, test, curve) in enumerate(entries):
            metrics = {"curve": curve, "test/top1": test}
            if train_loss is not None:
                metrics.update({"train/loss_epoch": train_loss(k), "num_classes": 10})
            journal.append([
                {"event": "ask", "k": k, "arch": arch.to_dict(), "digest": arch.digest, "fingerprint": "f",
                 "tags": tags},
                {"event": "result", "k": k, "status": "complete", "score": curve[-1],
                 "metrics": metrics, "cost": {"params": 100, "epochs": len(curve)}}])


def test_the_report_from_a_generated_run_dir(tmp_path):
    rng = random.Random(0)
    searched = SPACE.sample(rng)
    randoms = [SPACE.sample(rng) for _ in range(3)]
    searched_test = {0: 0.80, 1: 0.82, 2: 0.81}
    for seed in range(3):
        write_trainings(tmp_path / "dense" / f"seed_{seed}", [(SPACE.dense(), {"role": "dense"}, 0.9, [0.5, 0.8, 0.9])])
        write_trainings(tmp_path / "sparsity_0.5" / f"seed_{seed}", [
            (searched, {"role": "searched", "sparsity": 0.5}, searched_test[seed], [0.3, 0.86, 0.88]),
            *((arch, {"role": "random", "sparsity": 0.5, "index": i}, 0.7 + 0.01 * i + 0.001 * seed, [0.2, 0.5, 0.7])
              for i, arch in enumerate(randoms))])
    result = write_report(tmp_path, alpha=0.05)

    # the target: 0.95 of the dense parent's mean last validation top-1
    assert result["target"] == pytest.approx(0.95 * 0.9) and result["metric"] == "test top-1"
    rows = {(r["sparsity"], r["role"]): r for r in result["summary"]}
    assert rows[(0.0, "dense")]["n"] == 3 and rows[(0.0, "dense")]["final_mean"] == pytest.approx(0.9)
    s = rows[(0.5, "searched")]
    assert s["final_mean"] == pytest.approx(0.81) and s["final_std"] == pytest.approx(0.01)
    assert s["epochs_to_target_mean"] == 2 and s["reached"] == "3/3"
    assert rows[(0.5, "random")]["n"] == 9 and rows[(0.5, "random")]["reached"] == "0/9"
    random_tests = [0.7 + 0.01 * i + 0.001 * seed for seed in range(3) for i in range(3)]
    expected = stats.mannwhitneyu(list(searched_test.values()), random_tests, alternative="two-sided").pvalue
    assert s["p_final"] == pytest.approx(expected) and s["p_final"] < 0.05
    # every training is a CSV row, with its curve and epochs to target
    with open(tmp_path / "sparse_study.csv") as f:
        trainings = list(csv.DictReader(f))
    assert len(trainings) == 3 + 3 * 4
    dense = next(r for r in trainings if r["role"] == "dense")
    assert json.loads(dense["curve"]) == [0.5, 0.8, 0.9] and dense["epochs_to_target"] == "3"
    table = (tmp_path / "sparse_study.md").read_text()
    assert "| 0.5 | searched | 3 |" in table and "differ (n = 3 vs 9)" in table
    for name in ("accuracy_vs_sparsity.png", "convergence.png", "sparse_summary.csv"):
        assert (tmp_path / name).stat().st_size > 0


def test_without_searched_vs_random_differences_the_report_says_so(tmp_path):
    arch = SPACE.sample(random.Random(0))
    for seed in range(2):
        write_trainings(tmp_path / "dense" / f"seed_{seed}", [(SPACE.dense(), {"role": "dense"}, 0.9, [0.9])])
        write_trainings(tmp_path / "sparsity_0.5" / f"seed_{seed}", [
            (arch, {"role": "searched", "sparsity": 0.5}, 0.8 + 0.01 * seed, [0.8]),
            (SPACE.sample(random.Random(1)), {"role": "random", "sparsity": 0.5}, 0.805 + 0.01 * seed, [0.8])])
    write_report(tmp_path)
    # 2 against 2 cannot reach p < 0.05 in a Mann-Whitney test: the report says so, and what would
    assert ("could not be significant: the smallest p at these sizes is 0.333; 8 searched trainings against 2 would "
            "allow it (n = 2 vs 2)") in (tmp_path / "sparse_study.md").read_text()


def run_study(tmp_path, *overrides):
    cfg = compose_config("search", "method=sparse_random", "logger=none", "space.parent.widths=[32,32]",
                         "method.sparsities=[0.75]", "method.num_trials=2", "method.num_random=2",
                         "method.seeds=[0,1]", "protocol.epochs=2", "trainer.limit_train_batches=4",
                         "trainer.limit_val_batches=2", *overrides)
    return search(cfg, tmp_path)


def test_a_study_trains_the_searched_random_and_dense_networks_with_every_seed_and_resumes(tmp_path):
    summary = run_study(tmp_path)
    searched = Architecture.load(tmp_path / "sparsity_0.75" / "search")  # the search's best mask
    finals = {}
    for seed in (0, 1):
        log = TrialLog.replay(Journal(tmp_path / "sparsity_0.75" / f"seed_{seed}").read())
        finals[seed] = [(log.asks[k]["tags"]["role"], log.asks[k]["digest"], r) for k, r in sorted(log.results.items())]
        assert not (tmp_path / "sparsity_0.75" / f"seed_{seed}" / "arch.json").exists()  # no search's answer
    roles = [(role, digest) for role, digest, _ in finals[0]]
    assert roles == [(role, digest) for role, digest, _ in finals[1]]  # the same masks under every seed
    assert roles[0] == ("searched", searched.digest) and [r for r, _ in roles] == ["searched", "random", "random"]
    assert len({d for _, d in roles}) == 3
    for _, _, result in finals[0]:
        assert result["status"] == "complete" and len(result["metrics"]["curve"]) == 2
        assert 0 <= result["metrics"]["test/top1"] <= 1
    # the training seed reaches the data order: the same network trains differently under another seed
    assert finals[0][0][2]["metrics"]["train/loss_epoch"] != finals[1][0][2]["metrics"]["train/loss_epoch"]
    kept = [len(k) for k in searched.genotype["kept"]]
    assert kept == [8, 8]
    assert summary["trainings"] == 2 + 2 * 3 and (tmp_path / "sparse_study.md").exists()
    # resumed: nothing is trained again
    journal = (tmp_path / "sparsity_0.75" / "seed_1" / "trials.jsonl").read_text()
    run_study(tmp_path, "ckpt_path=last")
    resumed = (tmp_path / "sparsity_0.75" / "seed_1" / "trials.jsonl").read_text()
    assert resumed.count('"event":"result"') == journal.count('"event":"result"') == 3


def test_the_study_refuses_a_space_without_masks(tmp_path):
    cfg = compose_config("search", "method=sparse_random", "logger=none", "space=resnet")
    with pytest.raises(ConfigError, match="space=sparse"):
        search(cfg, tmp_path)


def test_trainings_that_never_left_chance_are_flagged_and_the_groups_are_explained(tmp_path):
    rng = random.Random(1)
    searched, stuck = SPACE.sample(rng), SPACE.sample(rng)
    for seed in range(2):
        write_trainings(tmp_path / "dense" / f"seed_{seed}", [(SPACE.dense(), {"role": "dense"}, 0.9, [0.9])],
                        train_loss=lambda k: 0.3)
        write_trainings(tmp_path / "sparsity_0.5" / f"seed_{seed}", [
            (searched, {"role": "searched", "sparsity": 0.5}, 0.8, [0.8]),
            (stuck, {"role": "random", "sparsity": 0.5, "index": 0}, 0.1, [0.1])],
            train_loss=lambda k: 2.29 if k == 1 else 0.4)  # ln(10) = 2.303: a uniform guess
    result = write_report(tmp_path)
    rows = {(r["sparsity"], r["role"]): r for r in result["summary"]}
    assert rows[(0.5, "random")]["at_chance"] == 2 and rows[(0.5, "searched")]["at_chance"] == 0
    table = (tmp_path / "sparse_study.md").read_text()
    assert "**2 training(s) never left chance**" in table and f"mask {stuck.digest[:10]}, seed 1" in table
    assert "not the search procedure" in table  # what the searched group is
    with open(tmp_path / "sparse_study.csv") as f:
        flags = {(r["role"], r["seed"]): r["at_chance"] for r in csv.DictReader(f)}
    assert flags[("random", "0")] == "True" and flags[("searched", "0")] == "False"


def test_the_printed_train_command_names_the_studys_protocol(tmp_path):
    from lsnas.methods import train_command

    cfg = compose_config("search", "method=sparse_random")
    assert train_command(cfg, tmp_path / "arch.json", overrides=[]).endswith("protocol=sparse")
