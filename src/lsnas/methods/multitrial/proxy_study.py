"""The proxy-quality study (``method=proxy_study``): a random search whose evaluator measures every proxy
and trains each candidate (``evaluator=proxy_study``), then the report of how well each proxy ranked them
(``lsnas.proxies.quality``: Kendall's tau and Spearman's rho with bootstrap intervals, a table and scatter
plots). Journaled like any multi-trial search, so it resumes and runs its trials on Ray
(``evaluator.executor=ray evaluator.workers=N``); the report can be remade from the run dir alone:
``python -m lsnas.proxies.quality <run dir>``.
"""

from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig

from lsnas.methods.multitrial import runner
from lsnas.proxies.quality import write_report


def search(cfg: DictConfig, run_dir: str | Path) -> dict:
    summary = runner.search(cfg, run_dir)
    boot = cfg.method.bootstrap
    write_report(run_dir, resamples=boot.resamples, confidence=boot.confidence, seed=boot.seed)
    return summary
