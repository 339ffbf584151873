"""Search an architecture.

    python search.py                                    # DARTS on the embedded digits set, small budget
    python search.py method=pcdarts dataset=imagenet_proxy dataset.root=...   # the ImageNet variant, by the dataset
    python search.py experiment=pcdarts_imagenet dataset.root=...             # a paper's setup in one word
    python search.py -m method=darts,pcdarts,gdas seed=0,1,2                   # a Hydra sweep
    python search.py ... hydra.run.dir=<run dir> ckpt_path=last               # resume

Writes arch.json (train it with ``train.py arch=<run dir>/arch.json``), cell diagrams, an alpha
heat map and search_summary.json to the run dir.
"""

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from lsnas.cli import run_cli, run_task


@hydra.main(version_base="1.3", config_path="conf", config_name="search")
def main(cfg: DictConfig) -> None:
    run_task("lsnas.methods:search", cfg, HydraConfig.get().runtime.output_dir)


if __name__ == "__main__":
    run_cli(main)
