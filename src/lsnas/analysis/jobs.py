"""How a study stage's jobs tell the study how they ended: a Hydra callback that writes
``study_status.json`` into each job's run dir (the study passes it with ``hydra.callbacks``).

A job killed outright (kill -9, a node lost) writes nothing: its run dir then reads as interrupted and the
next run of the study resumes it. A job that raised writes ``failed`` with its error, and is rerun only when
asked (``--rerun-failed``).
"""

from __future__ import annotations

import time
import traceback
from pathlib import Path

from hydra.core.utils import JobStatus
from hydra.experimental.callback import Callback

from lsnas.analysis.study import STATUS_FILENAME
from lsnas.cli import rank_suffix
from lsnas.utils.io import atomic_write_json


class JobStatusRecorder(Callback):
    def on_job_start(self, config, **kwargs) -> None:
        (Path(config.hydra.runtime.output_dir) / STATUS_FILENAME).unlink(missing_ok=True)

    def on_job_end(self, config, job_return, **kwargs) -> None:
        if rank_suffix():  # one record per run, from its first process
            return
        record = {"status": "complete" if job_return.status == JobStatus.COMPLETED else "failed",
                  "time": round(time.time(), 3)}
        if job_return.status == JobStatus.FAILED:
            error = job_return._return_value
            record["error"] = f"{type(error).__name__}: {error}"
            record["traceback"] = "".join(traceback.format_exception(error))[-4000:]
        atomic_write_json(Path(config.hydra.runtime.output_dir) / STATUS_FILENAME, record)
