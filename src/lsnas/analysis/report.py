"""The study's report, generated from the tidy table alone: ``report.md``, a self-contained ``report.html``
(figures embedded), the result tables as CSV, and the figures as PNG; optionally the table and figures logged
to one W&B run of the study (``job_type=report``; offline without credentials, ``wandb sync`` later).

    python -m lsnas.analysis report <study dir | table.csv | table.parquet> [--out DIR] [--wandb auto]

The analysis settings, the baseline and the proxies of each target come from the ``study.yaml`` next to the
table when there is one; otherwise the baseline is the method that read no data (source ``none``) and
question (i) is left unasked.
"""

from __future__ import annotations

import base64
import html
import math
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from omegaconf import OmegaConf

from lsnas.analysis import analyze, figures
from lsnas.analysis.analyze import Settings
from lsnas.analysis.findings import QUESTIONS, findings
from lsnas.analysis.study import NO_SOURCE
from lsnas.errors import ConfigError
from lsnas.utils.io import atomic_write_text


def read_table(path: str | Path) -> pd.DataFrame:
    path = Path(path)
    if path.is_dir():
        path = path / "table.parquet" if (path / "table.parquet").is_file() else path / "table.csv"
    if not path.is_file():
        raise ConfigError(f"{path}: no tidy table (python -m lsnas.analysis collect writes table.csv / .parquet)")
    return pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path)


def study_context(table_dir: Path, table: pd.DataFrame, settings=None) -> tuple[Settings, dict]:
    """(analysis settings, proxies_of) from the study.yaml beside the table, else inferred from the table."""
    definition = table_dir / "study.yaml"
    cfg = OmegaConf.load(definition) if definition.is_file() else OmegaConf.create({})
    analysis = settings if settings is not None else cfg.get("analysis")
    baseline = cfg.get("baseline")
    if baseline is None:
        free = sorted(set(table.loc[table["source"] == NO_SOURCE, "method"]))
        baseline = free[0] if len(free) == 1 else None
    proxies = OmegaConf.to_container(cfg.get("proxies_of") or OmegaConf.create({}))
    return Settings.from_config(analysis, baseline), proxies


def analyse(table: pd.DataFrame, s: Settings) -> dict[str, pd.DataFrame]:
    rows = analyze.complete(table, s.metric)
    order = list(pd.unique(table["target_protocol"]))  # the study's order, whichever runs completed
    return {"rows": rows, "summary": analyze.summary(rows, s), "rank_correlations": analyze.rank_correlations(rows, s),
            "versus_baseline": analyze.versus_baseline(rows, s), "method_pairs": analyze.method_pairs(rows, s),
            "protocol_effects": analyze.protocol_effects(rows, s, order),
            "protocol_interactions": analyze.protocol_interactions(rows, s, order),
            "architecture_correlation": analyze.architecture_correlation(rows, s)}


@dataclass
class Section:
    title: str
    text: str = ""
    table: pd.DataFrame | None = None
    figure: Path | None = None


def _fmt(table: pd.DataFrame) -> pd.DataFrame:
    def cell(v):
        if isinstance(v, float):
            return "" if math.isnan(v) else f"{v:.3g}" if abs(v) < 0.01 and v != 0 else f"{v:.2f}"
        return v
    return table.apply(lambda column: column.map(cell))


def _markdown_table(table: pd.DataFrame) -> str:
    table = _fmt(table)
    lines = ["| " + " | ".join(map(str, table.columns)) + " |", "|" + " --- |" * len(table.columns)]
    lines += ["| " + " | ".join(str(v) for v in row) + " |" for row in table.itertuples(index=False)]
    return "\n".join(lines)


def sections(table: pd.DataFrame, results: dict, answers: dict, figure_paths: dict, s: Settings) -> list[Section]:
    study = str(table["study"].iloc[0]) if len(table) else "?"
    done = (table["status"] == "complete").sum()
    out = [Section(f"Transfer study {study}",
                   f"{len(table)} rows (method x source x search protocol x seed x target x target protocol), {done} "
                   f"complete. Metric: {s.metric} (%); intervals: {s.confidence:.0%} percentile bootstrap over seeds "
                   f"and architectures ({s.resamples} resamples; none below {s.min_runs} runs a side); tests at "
                   f"alpha = {s.alpha}. Baseline: {s.baseline}.")]
    for key, question in QUESTIONS.items():
        out.append(Section(f"({key}) {question}", answers[key]))
    summary = results["summary"]
    if not summary.empty:
        shown = summary[["method", "source", "search_protocol", "target", "target_protocol", "n", "mean", "std",
                         "ci_low", "ci_high", "params", "search_wall_s", "train_wall_s"]]
        out.append(Section("Accuracy per method, source and target", table=shown, figure=figure_paths.get("bars")))
    if not results["versus_baseline"].empty:
        out.append(Section("Against the random-sampling baseline",
                           "Difference of means (points) with its bootstrap interval; Mann-Whitney U test, two-sided.",
                           results["versus_baseline"].drop(columns=["search_protocol"]), figure_paths.get("forest")))
    if not results["rank_correlations"].empty:
        rc = results["rank_correlations"]
        out.append(Section("Rank correlations of the method rankings",
                           "Kendall's tau and Spearman's rho between the rankings of the methods by mean accuracy in "
                           "two settings; intervals from resampling each method's runs. NaN: fewer than 3 methods.",
                           rc[["comparison", "a", "b", "n_methods", "kendall_tau", "kendall_tau_low",
                               "kendall_tau_high", "spearman_rho", "spearman_rho_low", "spearman_rho_high"]],
                           figure_paths.get("heatmap")))
    if not results["architecture_correlation"].empty:
        out.append(Section("Source against target, per architecture",
                           "Each architecture's top-1 on its source against on the target; pairs bootstrap.",
                           results["architecture_correlation"], figure_paths.get("scatter")))
    if not results["protocol_effects"].empty:
        out.append(Section("Training protocols", "Paired by architecture; Wilcoxon signed-rank test.",
                           results["protocol_effects"]))
    if not results["protocol_interactions"].empty:
        out.append(Section("Does the recipe matter more on the source?", "Per architecture: the recipe's effect on "
                           "the source minus its effect on the target; Wilcoxon signed-rank test.",
                           results["protocol_interactions"]))
    if not results["method_pairs"].empty:
        out.append(Section("Pairs of methods on the source and on the target", table=results["method_pairs"]))
    problems = table[table["status"] != "complete"]
    if len(problems):
        out.append(Section("Runs without results", "Listed, never dropped: each with the reason the run gave.",
                           problems[["method", "source", "seed", "target", "target_protocol", "status", "stage",
                                     "reason"]]))
    return out


def to_markdown(parts: list[Section], out_dir: Path) -> str:
    lines = []
    for i, part in enumerate(parts):
        lines.append(f"{'#' if i == 0 else '##'} {part.title}\n")
        if part.text:
            lines.append(part.text + "\n")
        if part.figure is not None:
            lines.append(f"![{part.title}]({part.figure.relative_to(out_dir)})\n")
        if part.table is not None and len(part.table):
            lines.append(_markdown_table(part.table) + "\n")
    return "\n".join(lines)


def to_html(parts: list[Section]) -> str:
    body = []
    for i, part in enumerate(parts):
        tag = "h1" if i == 0 else "h2"
        body.append(f"<{tag}>{html.escape(part.title)}</{tag}>")
        if part.text:
            body.append(f"<p>{html.escape(part.text)}</p>")
        if part.figure is not None:
            data = base64.b64encode(part.figure.read_bytes()).decode()
            body.append(f'<img alt="{html.escape(part.title)}" src="data:image/png;base64,{data}">')
        if part.table is not None and len(part.table):
            body.append(_fmt(part.table).to_html(index=False, border=0, classes="t"))
    style = ("body{font-family:sans-serif;max-width:1200px;margin:2em auto;line-height:1.45}"
             "table.t{border-collapse:collapse;font-size:12px;margin:1em 0}"
             "table.t td,table.t th{padding:2px 8px;border-bottom:1px solid #ddd;text-align:right}"
             "img{max-width:100%}")
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(parts[0].title)}</title>"
            f"<style>{style}</style></head><body>{''.join(body)}</body></html>")


def make_figures(results: dict, out_dir: Path, s: Settings) -> dict[str, Path]:
    made = {"bars": figures.grouped_bars(results["summary"], out_dir / "accuracy_bars.png",
                                        confidence=s.confidence, rows=results["rows"], column=s.metric)
            if not results["summary"].empty else None,
            "scatter": figures.source_vs_target(results["rows"], out_dir / "source_vs_target.png", s.metric),
            "heatmap": figures.correlation_heatmap(results["rows"], out_dir / "rank_correlation.png", s.metric),
            "forest": figures.baseline_forest(results["versus_baseline"], out_dir / "versus_random.png")}
    return {k: v for k, v in made.items() if v is not None}


def write_report(table: pd.DataFrame, out_dir: str | Path, wandb_mode: str | None = None, settings=None,
                 table_dir: str | Path | None = None) -> dict[str, str]:
    """Analyse ``table`` and write the report into ``out_dir``; returns the findings."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    s, proxies = study_context(Path(table_dir or out_dir), table, settings)
    results = analyse(table, s)
    answers = findings(results, proxies, s)
    figure_paths = make_figures(results, out_dir, s)
    parts = sections(table, results, answers, figure_paths, s)
    for name in ("summary", "versus_baseline", "rank_correlations", "method_pairs", "protocol_effects",
                 "protocol_interactions", "architecture_correlation"):
        atomic_write_text(out_dir / f"{name}.csv", results[name].to_csv(index=False))
    atomic_write_text(out_dir / "report.md", to_markdown(parts, out_dir))
    atomic_write_text(out_dir / "report.html", to_html(parts))
    print(f"report -> {out_dir / 'report.md'}, {out_dir / 'report.html'}")
    for key, text in answers.items():
        print(f"({key}) {text}")
    if wandb_mode not in (None, "disabled"):
        log_to_wandb(table, figure_paths, answers, out_dir, wandb_mode)
    return answers


def log_to_wandb(table: pd.DataFrame, figure_paths: dict, answers: dict, out_dir: Path, mode: str) -> str:
    """One W&B run of the study (group = the study, job_type = report) with the tidy table and the figures."""
    import wandb

    from lsnas.utils.loggers import wandb_has_credentials

    if mode == "auto":
        mode = "online" if wandb_has_credentials() else "offline"
    study = str(table["study"].iloc[0]) if len(table) else "study"
    run = wandb.init(project="lsnas", group=study, job_type="report", name=f"{study}-report", dir=str(out_dir),
                     mode=mode, config={"study": study, "rows": len(table)})
    try:
        run.log({"study/table": wandb.Table(dataframe=table.astype(object).where(table.notna(), None)),
                 **{f"study/{name}": wandb.Image(str(path)) for name, path in figure_paths.items()}})
        run.summary.update({f"findings/{k}": v for k, v in answers.items()})
        return run.id
    finally:
        run.finish()
        wandb.teardown()  # later runs of this process read their settings (WANDB_MODE, ...) afresh
