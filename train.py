"""Train an architecture on a dataset under a named protocol.

    python train.py                                         # DARTS_V2, quick protocol, embedded digits
    python train.py arch=pc_darts_cifar dataset=cifar10 protocol=darts_cifar
    python train.py arch=<run dir>/arch.json dataset=imagenet1k protocol=darts_imagenet trainer=ddp
    python train.py arch=darts_v2 dataset=cifar10 dry_run=true   # params and MACs only, no data
    python train.py ... hydra.run.dir=<run dir> ckpt_path=last    # resume
"""

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from lsnas.cli import run_cli, run_task


@hydra.main(version_base="1.3", config_path="conf", config_name="train")
def main(cfg: DictConfig) -> float | None:
    result = run_task("lsnas.training.runner:train", cfg, HydraConfig.get().runtime.output_dir)
    return result.get("top1")  # the objective for Hydra sweepers


if __name__ == "__main__":
    run_cli(main)
