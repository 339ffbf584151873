"""What the configs resolve to: the headline commands get the papers' settings for their data, every
config composes, and user overrides still win."""

import pytest
import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf

from tests.helpers.config import compose_config, options

IMAGENET_REGIME = {"image_folder", "imagenet1k", "imagenet22k", "imagenet_proxy", "imagenet_proxy_fewer_classes",
                   "imagenet_proxy_fewer_images", "webdataset"}


def search_settings(*overrides):
    cfg = compose_config("search", *overrides)
    m = cfg.method.module
    return cfg, {"network": cfg.space.network, "K": m.get("partial_channels"), "batch": cfg.method.batch_size,
                 "epochs": cfg.method.epochs, "w_lr": m.w_optimizer.lr, "a_lr": m.a_optimizer.lr,
                 "arch_from_epoch": round(m.warmup_fraction * cfg.method.epochs),
                 "arch_grad_clip": m.get("arch_grad_clip"),
                 "scheduler": m.w_scheduler._target_.rsplit(".", 1)[-1]}


def test_headline_pcdarts_imagenet_proxy_is_the_papers_imagenet_search():
    cfg, got = search_settings("method=pcdarts", "dataset=imagenet_proxy", "budget=full")
    assert got == {"network": "imagenet", "K": 2, "batch": 1024, "epochs": 50, "w_lr": 0.5, "a_lr": 6e-3,
                   "arch_from_epoch": 35, "arch_grad_clip": 5.0, "scheduler": "warmup_cosine"}
    sched = cfg.method.module.w_scheduler
    assert (sched.warmup_epochs, sched.batch_size, sched.warmup_above_batch, sched.eta_min) == (5, 1024, 256, 0.0)
    assert (cfg.space.init_channels, cfg.space.layers) == (16, 8)
    assert (cfg.dataset.train_per_class, cfg.dataset.val_per_class, cfg.dataset.resolution) == (0.1, 0.025, 224)


def test_pcdarts_cifar10_keeps_the_cifar_settings():
    _, got = search_settings("method=pcdarts", "dataset=cifar10", "budget=full")
    assert got == {"network": "cifar", "K": 4, "batch": 256, "epochs": 50, "w_lr": 0.1, "a_lr": 6e-4,
                   "arch_from_epoch": 15, "arch_grad_clip": None, "scheduler": "CosineAnnealingLR"}


def test_small_budget_scales_the_imagenet_search_down_without_warm_up():
    cfg, got = search_settings("method=pcdarts", "dataset=imagenet_proxy")
    assert (got["network"], got["K"], got["batch"], got["epochs"]) == ("imagenet", 2, 32, 6)
    optimizer = instantiate(cfg.method.module.w_optimizer)([torch.nn.Parameter(torch.ones(1))])
    instantiate(cfg.method.module.w_scheduler)(optimizer)  # sets epoch 0's lr
    assert optimizer.param_groups[0]["lr"] == 0.5  # batch 32 <= 256: no warm-up, as in the official script


@pytest.mark.parametrize("override, network, k", [("space.network=cifar", "cifar", 2), ("regime=cifar", "cifar", 4)])
def test_user_overrides_win_over_the_dataset_regime(override, network, k):
    _, got = search_settings("method=pcdarts", "dataset=imagenet_proxy", override)
    assert (got["network"], got["K"]) == (network, k)


def test_methods_without_an_imagenet_search_get_the_imagenet_network():
    for method in ("darts", "gdas"):
        _, got = search_settings(f"method={method}", "dataset=imagenet1k")
        assert got["network"] == "imagenet"


@pytest.mark.parametrize("dataset, network, resolution", [
    ("imagenet_proxy", "imagenet", 112), ("imagenet1k", "imagenet", 112), ("cifar10", "cifar", 32),
    ("tiny_imagenet", "cifar", 64), ("digits", "cifar", 16)])
def test_quick_protocol_follows_the_regime_at_a_demo_resolution(dataset, network, resolution):
    cfg = compose_config("train", f"dataset={dataset}", "protocol=quick")
    assert (cfg.protocol.model.network, cfg.dataset.resolution) == (network, resolution)
    cfg = compose_config("train", f"dataset={dataset}", "protocol=quick", "dataset.resolution=224")
    assert cfg.dataset.resolution == 224


@pytest.mark.parametrize("dataset", options("dataset"))
def test_every_dataset_composes_for_search_and_train_with_its_regime(dataset):
    regime = "imagenet" if dataset in IMAGENET_REGIME else "cifar"
    for name in ("search", "train"):
        cfg = compose_config(name, f"dataset={dataset}")
        assert cfg.regime.name == regime
        OmegaConf.to_container(cfg.dataset, resolve=True)
    assert compose_config("search", f"dataset={dataset}").space.network == regime


@pytest.mark.parametrize("experiment", options("experiment"))
def test_every_experiment_composes_and_names_a_real_protocol(experiment):
    cfg = compose_config("search", f"experiment={experiment}")
    assert "limit_train_batches" not in cfg.trainer  # budget=full
    if "epochs" in cfg.method:  # one-shot: the papers' search budgets
        assert cfg.method.epochs >= 50
    assert cfg.then_train.protocol in options("protocol")
    assert cfg.then_train.dataset in options("dataset")
    if experiment == "pcdarts_imagenet":
        assert (cfg.space.network, cfg.method.module.partial_channels, cfg.method.batch_size) == ("imagenet", 2, 1024)
    if experiment == "darts_cifar10":
        assert cfg.method.module.order == 2 and cfg.space.network == "cifar"
    if experiment.startswith("pspline_in22k"):  # each point a 4-node job on half of ImageNet-22K's training set
        assert cfg.evaluator.launcher == "submitit" and cfg.evaluator.submitit.nodes == 4
        assert "dataset.val_fraction=0.5" in cfg.evaluator.job_overrides and cfg.protocol.name == "spline_in22k"
        assert cfg.space._target_.endswith("BLResNeXtSpace" if "blresnext" in experiment else "ResNetSpace")
    if experiment == "nastransfer_low_res":
        assert cfg.dataset.resolution == 32 and cfg.space.network == "cifar"


@pytest.mark.parametrize("name", ["search", "train"])
def test_wandb_logger_metadata_in_the_config(name):
    cfg = compose_config(name, "group=transfer-v1", "seed=3")
    wandb = cfg.logger.wandb
    assert wandb.group == "transfer-v1" and wandb.job_type == name
    tags = [t for t in OmegaConf.to_container(wandb.tags, resolve=True)]
    assert name in tags and "dataset=digits" in tags and "seed=3" in tags and "regime=cifar" in tags
    assert ("method=darts" in tags) == (name == "search") and ("protocol=quick" in tags) == (name == "train")


def test_slurm_launcher_settings():
    pytest.importorskip("hydra_plugins.hydra_submitit_launcher")
    cfg = compose_config("search", "hydra/launcher=slurm", "trainer=ddp", "trainer.devices=4", "trainer.num_nodes=2",
                         "hydra.launcher.partition=gpu", hydra=True)
    launcher = cfg.hydra.launcher
    assert launcher._target_.endswith("SlurmLauncher")
    assert (launcher.nodes, launcher.tasks_per_node, launcher.gpus_per_node) == (2, 4, 4)
    assert launcher.partition == "gpu" and launcher.timeout_min > 0 and launcher.max_num_timeout > 0


@pytest.mark.parametrize("experiment, overrides, expected", [
    (None, ["dataset=imagenet_proxy", "dataset.source=tiny_imagenet", "dataset.root=/d/tiny imagenet", "seed=1",
            "trainer.devices=2"],
     "python train.py arch=/r/arch.json dataset=imagenet_proxy dataset.source=tiny_imagenet "
     "'dataset.root=/d/tiny imagenet'"),
    ("pcdarts_imagenet", ["dataset.root=/d/imagenet", "data_dir=/d"],
     "python train.py arch=/r/arch.json dataset=imagenet1k dataset.root=/d/imagenet data_dir=/d "
     "protocol=darts_imagenet"),
    ("nastransfer_low_res", ["dataset.root=/d/in1k", "dataset.resolution=16"],  # the proxy's resolution stays
     "python train.py arch=/r/arch.json dataset=imagenet1k dataset.root=/d/in1k protocol=darts_imagenet"),
])
def test_the_printed_train_command_carries_the_search_data_settings(experiment, overrides, expected):
    from lsnas.methods import train_command

    cfg = compose_config("search", *overrides, *([f"experiment={experiment}"] if experiment else []))
    assert train_command(cfg, "/r/arch.json", overrides=overrides) == expected
