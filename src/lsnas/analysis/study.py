"""A transfer study as a plan of ordinary runs.

``conf/study/<name>.yaml`` names the axes. Stage 1 (search) is the product methods x sources x search
protocols x seeds, each cell a ``search.py`` run; a method marked ``source_free`` (the random-sampling
baseline reads no data) runs once per search protocol and seed, with source ``none``. Stage 2 (transfer) is
every architecture stage 1 found x targets x target protocols, each a ``train.py`` run; its architectures
are read from stage 1's run dirs, never listed by hand. A target whose name is also a source's is that
source: the same architectures trained on their source and on the targets (questions i and iv);
``transfer.sources_as_targets: own`` trains on such a target only the architectures searched on it.

Each cell's run dir is named by its axes (``search/<method>/<source>/<protocol>/seed<k>``,
``transfer/<...>/<target>/<target protocol>``), so a rerun of the study finds what is done, resumes what
was interrupted and skips the rest.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from lsnas.arch import ARCH_FILENAME
from lsnas.errors import ConfigError

SEARCH_AXES = ("method", "source", "search_protocol", "seed")
TRANSFER_AXES = (*SEARCH_AXES, "target", "target_protocol")
NO_SOURCE = "none"
STATUS_FILENAME = "study_status.json"  # written by JobStatusRecorder when a job of a stage ends
_NAME = re.compile(r"^[A-Za-z0-9_.+-]+$")


@dataclass(frozen=True)
class Cell:
    """One run of a study: its stage, axes, run dir (relative to the study dir) and overrides."""

    stage: str
    axes: dict
    subdir: str
    overrides: tuple[str, ...]
    arch_from: str | None = field(default=None)  # transfer: the search run dir its arch.json comes from

    def to_dict(self) -> dict:
        return {"stage": self.stage, "axes": self.axes, "subdir": self.subdir, "overrides": list(self.overrides),
                "arch_from": self.arch_from}


def _axis(node: Mapping | None, what: str) -> dict[str, list[str]]:
    """An axis: name -> overrides (a list of strings, or a single string)."""
    if not node:
        raise ConfigError(f"study.{what} is empty: name at least one (name: [overrides])")
    axis = {}
    for name, overrides in node.items():
        if not _NAME.match(str(name)) or str(name) == NO_SOURCE:
            raise ConfigError(f"study.{what}.{name}: names become run dirs and tags; use letters, digits, _ . + -"
                              f" (and not {NO_SOURCE!r})")
        overrides = [overrides] if isinstance(overrides, str) else list(overrides or [])
        axis[str(name)] = [str(o) for o in overrides]
    return axis


class Study:
    """The study config (``cfg`` is the ``study`` node of ``conf/analysis.yaml``) and its plans."""

    def __init__(self, cfg: DictConfig | Mapping):
        cfg = cfg if isinstance(cfg, DictConfig) else OmegaConf.create(dict(cfg))
        self.cfg = cfg
        self.name = str(cfg.name)
        self.dir = Path(cfg.dir).resolve()  # the stages run from the repository root: no relative paths
        s, t = cfg.search, cfg.transfer
        self.methods = _axis(s.methods, "search.methods")
        self.sources = _axis(s.sources, "search.sources")
        self.search_protocols = _axis(s.protocols, "search.protocols")
        self.targets = _axis(t.targets, "transfer.targets")
        self.target_protocols = _axis(t.protocols, "transfer.protocols")
        self.seeds = [int(k) for k in s.seeds]
        self.source_free = [str(m) for m in (s.get("source_free") or [])]
        self.baseline = cfg.get("baseline")
        self.sources_as_targets = str(t.get("sources_as_targets") or "all")
        if self.sources_as_targets not in ("all", "own"):
            raise ConfigError(f"study.transfer.sources_as_targets={self.sources_as_targets!r}: use all or own")
        self.proxies_of = {str(k): [str(v) for v in vs] for k, vs in (cfg.get("proxies_of") or {}).items()}
        for m in self.source_free:
            if m not in self.methods:
                raise ConfigError(f"study.search.source_free names {m!r}, which is not in study.search.methods")
        if self.baseline is not None and self.baseline not in self.methods:
            raise ConfigError(f"study.baseline={self.baseline!r} is not a method of the study "
                              f"({', '.join(self.methods)})")
        for target, proxies in self.proxies_of.items():
            unknown = [p for p in [target] if p not in self.targets] + [p for p in proxies if p not in self.sources]
            if unknown:
                raise ConfigError(f"study.proxies_of.{target}: {', '.join(unknown)} not among the study's targets / "
                                  "sources")
        if not self.seeds:
            raise ConfigError("study.search.seeds is empty")

    # -- stage 1 -----------------------------------------------------------------------------------
    def search_cells(self) -> list[Cell]:
        cells = []
        for method, method_overrides in self.methods.items():
            sources = {NO_SOURCE: []} if method in self.source_free else self.sources
            for source, source_overrides in sources.items():
                for protocol, protocol_overrides in self.search_protocols.items():
                    for seed in self.seeds:
                        axes = {"method": method, "source": source, "search_protocol": protocol, "seed": seed}
                        subdir = f"search/{method}/{source}/{protocol}/seed{seed}"
                        overrides = (*source_overrides, *protocol_overrides, *method_overrides,
                                     *self._common(axes, "search"))
                        cells.append(Cell("search", axes, subdir, overrides))
        return cells

    # -- stage 2 -----------------------------------------------------------------------------------
    def transfer_cells(self, searches: Iterable[Cell] | None = None) -> tuple[list[Cell], list[Cell]]:
        """(cells, searches without an architecture yet): every finished search's arch.json x targets x
        target protocols."""
        cells, waiting = [], []
        for search in self.search_cells() if searches is None else searches:
            search_dir = self.dir / search.subdir
            if run_status(search_dir, "search")["status"] != "complete":
                waiting.append(search)
                continue
            for target, target_overrides in self.targets.items():
                if not self.trains_on(search.axes["source"], target):
                    continue
                for protocol, protocol_overrides in self.target_protocols.items():
                    axes = {**search.axes, "target": target, "target_protocol": protocol}
                    subdir = f"transfer/{search.subdir.removeprefix('search/')}/{target}/{protocol}"
                    overrides = (*target_overrides, *protocol_overrides, f"arch='{search_dir / ARCH_FILENAME}'",
                                 *self._common(axes, "transfer"))
                    cells.append(Cell("transfer", axes, subdir, overrides, arch_from=search.subdir))
        return cells, waiting

    def trains_on(self, source: str, target: str) -> bool:
        """Whether architectures searched on ``source`` are trained on ``target``. With
        ``transfer.sources_as_targets: own``, a target that is also a source trains only the architectures
        searched on it and the source-free ones (question iv needs no more, and it saves a stage's worth of
        runs); ``all`` trains every architecture everywhere."""
        if target not in self.sources or self.sources_as_targets == "all":
            return True
        return source in (target, NO_SOURCE)

    def _common(self, axes: dict, job_type: str) -> list[str]:
        """Per cell: the seed, the W&B group and job type, the axes (``cell.*``: tags and flat config keys)
        and ``ckpt_path=last`` (an interrupted run resumes from its run dir; a new one starts)."""
        return [f"seed={axes['seed']}", f"group={self.name}", f"cell.job_type={job_type}",
                *(f"cell.{k}={v}" for k, v in axes.items()), "ckpt_path=last"]

    def common_overrides(self, stage: str) -> list[str]:
        """What every job of a stage gets first (before its cell's overrides)."""
        return [str(o) for o in (self.cfg[stage].get("common") or [])]

    def cells(self, stage: str) -> list[Cell]:
        return self.search_cells() if stage == "search" else self.transfer_cells()[0]


def run_status(run_dir: Path, stage: str) -> dict:
    """``{"status": complete | failed | interrupted | pending, "reason": ...}`` of one cell's run dir, from
    what the run wrote (its result, and the job's end as the sweep recorded it): complete when the result is
    there; failed when the job raised, or ended without its result; interrupted when it started and neither
    finished nor ended (a kill); pending when it never started."""
    run_dir = Path(run_dir)
    recorded = read_json(run_dir / STATUS_FILENAME) or {}
    if stage == "search":
        summary = read_json(run_dir / "search_summary.json") or {}
        if summary.get("completed", True) and summary and (run_dir / ARCH_FILENAME).is_file():
            return {"status": "complete", "reason": None}
        missing = ("the search ended early without its answer (a failure-rate stop, every trial failed, or a "
                   "preemption: see its log; --rerun-failed resumes it)")
    elif (run_dir / "metrics.json").is_file():
        return {"status": "complete", "reason": None}
    else:
        missing = "the training ended without writing metrics.json (see its log)"
    if recorded.get("status") == "failed":
        return {"status": "failed", "reason": recorded.get("error")}
    if recorded.get("status") == "complete":  # the job returned, but its result is not there
        return {"status": "failed", "reason": missing}
    if run_dir.is_dir() and any(run_dir.iterdir()):
        return {"status": "interrupted", "reason": "started, not finished (resumes from its run dir)"}
    return {"status": "pending", "reason": "not run yet"}


def read_json(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None
