"""A Hydra sweeper that runs a study stage's plan: a list of cells, each an override set, instead of a
product of swept values (a study's cells bundle settings: ``method=random method.num_trials=4``).

    python search.py -m hydra/sweeper=study hydra.sweeper.plan=<study dir>/plan/search.json \
        hydra.sweep.dir=<study dir>/search <common overrides>

Every job gets the command line's overrides, then its cell's (the cell's win), and its own run dir
(``hydra.sweep.subdir``, named by the cell's axes). The launcher is whatever ``hydra/launcher`` says: basic
(sequential), joblib (N at once), submitit (SLURM). Unlike Hydra's basic sweeper, a failed job does not stop
the stage: the study records it (``lsnas.analysis.runs.JobStatusRecorder``) and goes on.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from hydra.core.utils import JobStatus
from hydra.plugins.sweeper import Sweeper
from omegaconf import OmegaConf

log = logging.getLogger(__name__)


class StudySweeper(Sweeper):
    def __init__(self, plan: str, max_batch_size: int | None = None):
        self.plan_path = Path(plan)
        self.max_batch_size = max_batch_size
        self.config = self.launcher = self.hydra_context = None

    def setup(self, *, hydra_context, task_function, config) -> None:
        from hydra.core.plugins import Plugins

        self.hydra_context, self.config = hydra_context, config
        self.launcher = Plugins.instance().instantiate_launcher(hydra_context=hydra_context,
                                                                task_function=task_function, config=config)

    def sweep(self, arguments: list[str]) -> list:
        if not self.plan_path.is_file():
            raise FileNotFoundError(f"hydra.sweeper.plan={self.plan_path}: no such plan file "
                                    "(python -m lsnas.analysis writes it)")
        cells = json.loads(self.plan_path.read_text())["cells"]
        sweep_dir = Path(self.config.hydra.sweep.dir)
        sweep_dir.mkdir(parents=True, exist_ok=True)
        OmegaConf.save(self.config, sweep_dir / "multirun.yaml")
        jobs = [[*arguments, *cell["overrides"], f"hydra.sweep.subdir={cell['subdir']}"] for cell in cells]
        size = self.max_batch_size or max(len(jobs), 1)
        returns, failed = [], 0
        for start in range(0, len(jobs), size):
            batch = jobs[start:start + size]
            self.validate_batch_is_legal(batch)
            results = self.launcher.launch(batch, initial_job_idx=start)
            failed += sum(r.status == JobStatus.FAILED for r in results)
            returns.append(results)
        log.info("stage done: %d jobs, %d failed", len(jobs), failed)
        return returns
