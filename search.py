"""Search an architecture with a one-shot method.

    python search.py                                    # DARTS on the embedded digits set, small budget
    python search.py method=pcdarts dataset=cifar10 dataset.root=...
    python search.py method=darts method.module.order=2 budget=full
    python search.py -m method=darts,pcdarts,gdas seed=0,1,2
    python search.py ... hydra.run.dir=<run dir> ckpt_path=last   # resume

Writes arch.json (train it with ``train.py arch=<run dir>/arch.json``), cell diagrams, an alpha
heat map and search_summary.json to the run dir.
"""

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig


@hydra.main(version_base="1.3", config_path="conf", config_name="search")
def main(cfg: DictConfig) -> None:
    from lsnas.methods.runner import search  # imported here so --help stays fast

    search(cfg, HydraConfig.get().runtime.output_dir)


if __name__ == "__main__":
    main()
