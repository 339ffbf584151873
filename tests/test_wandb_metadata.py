"""Every W&B run carries its study (group), its kind (job_type), tags a sweep can be split by, and the flat
run config, so the W&B UI can group and compare a sweep without editing. Offline: no key, no prompt."""

import pytest

from lsnas.training.trainer import make_loggers
from tests.helpers.config import compose_config


@pytest.fixture
def offline(tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_API_KEY", "")
    monkeypatch.setenv("NETRC", str(tmp_path / "no-netrc"))
    monkeypatch.setenv("WANDB_MODE", "offline")
    return tmp_path


@pytest.mark.parametrize("name, overrides, tags", [
    ("search", ["method=pcdarts", "dataset=imagenet_proxy", "seed=2"],
     ["search", "method=pcdarts", "dataset=imagenet_proxy", "space=darts", "regime=imagenet", "seed=2"]),
    ("train", ["protocol=darts_cifar", "dataset=cifar10"],
     ["train", "dataset=cifar10", "protocol=darts_cifar", "regime=cifar", "seed=0"]),
])
def test_offline_wandb_run_metadata(offline, name, overrides, tags):
    import wandb

    cfg = compose_config(name, *overrides, "group=transfer-v1", f"logger.wandb.save_dir={offline}")
    (logger,) = make_loggers(cfg)
    run = logger.experiment
    try:
        assert run.offline and run.group == "transfer-v1" and run.job_type == name
        assert sorted(run.tags) == sorted(tags)
        config = dict(run.config)
        assert config["dataset.name"] == cfg.dataset.name and config["seed"] == cfg.seed
        if name == "search":
            assert config["method.module.partial_channels"] == 2 and config["space.network"] == "imagenet"
        else:
            assert config["protocol.model.layers"] == 20 and config["protocol.epochs"] == 600
        assert not any(isinstance(v, dict) for v in config.values())  # flat: dotted keys only
    finally:
        wandb.finish()
    assert list(offline.glob("wandb/offline-run-*/run-*.wandb"))  # syncable later with `wandb sync`
