"""The transfer study from the command line.

    python -m lsnas.analysis run study=<name> [overrides]       # stage 1, stage 2, collect, report
    python -m lsnas.analysis plan study=<name>                  # dry run: runs per stage, what is done, the cost
                                                                #   (also: run|search|transfer --dry-run)
    python -m lsnas.analysis search study=<name>                # stage 1 only (every search, a Hydra multirun)
    python -m lsnas.analysis transfer study=<name>              # stage 2 only (every found arch x target x protocol)
    python -m lsnas.analysis collect study=<name> | <study dir> # the tidy table (table.csv, table.parquet)
    python -m lsnas.analysis report <study dir | table.csv | table.parquet>   # the report, from the table alone

Rerunning a command skips finished runs and resumes interrupted ones; ``--rerun-failed`` reruns failed ones.
Exit status: 0 done (failed runs are listed, not fatal), 2 a mistake in the command or the study, 3 interrupted
(a stage stopped before its runs finished: rerun the same command to resume).
Overrides reach into the study definition (``study.search.seeds=[0]``, ``study.launcher=joblib``).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from lsnas.errors import UserError

INTERRUPTED = 3  # a stage stopped before its runs finished: rerun the same command to resume
COMMANDS = ("run", "plan", "search", "transfer", "collect", "report")


def _study(args):
    from lsnas.analysis.runner import load_study, study_from_dir

    if args.path is not None:
        return study_from_dir(args.path)
    return load_study(args.overrides)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lsnas.analysis", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    parser.add_argument("command", choices=COMMANDS)
    parser.add_argument("args", nargs="*", help="study=<name> and overrides, or a study dir / table (collect, report)")
    parser.add_argument("--rerun-failed", action="store_true", help="rerun the runs that failed (default: skip them)")
    parser.add_argument("--dry-run", action="store_true", help="run / search / transfer: print the plan, run nothing")
    parser.add_argument("--out", help="report: where to write it (default: next to the table)")
    parser.add_argument("--wandb", choices=("auto", "online", "offline", "disabled"), default=None,
                        help="report: also log the table and figures to one W&B run of the study")
    args = parser.parse_intermixed_args(argv)
    overrides = [a for a in args.args if "=" in a or (a.startswith("~") and not a.startswith("~/"))]  # ~key deletes
    paths = [a for a in args.args if a not in overrides]
    args.overrides = overrides
    args.path = Path(paths[0]) if paths else None
    from lsnas.analysis.runner import StageInterrupted

    try:
        return _dispatch(args)
    except StageInterrupted as error:
        print(f"interrupted: {error}", file=sys.stderr)
        return INTERRUPTED
    except UserError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2


def _dispatch(args) -> int:
    from lsnas.analysis import report, runner
    from lsnas.analysis.collect import collect, write_table
    from lsnas.utils.lock import DirLock

    path = args.path
    if args.command == "report" and path is not None and not (path / "study.yaml").is_file():
        # a table (or a folder holding one) alone: a cluster's results analysed on a laptop
        table_dir = path if path.is_dir() else path.parent
        report.write_report(report.read_table(path), Path(args.out or table_dir), wandb_mode=args.wandb,
                            table_dir=table_dir)
        return 0
    study = _study(args)
    if args.command == "plan":
        print(runner.describe_plan(study))
        return 0
    if args.command in ("run", "search", "transfer"):
        runner.check_composes(study)
        if args.dry_run:
            print(runner.describe_plan(study))
            return 0
        with DirLock(study.dir / ".study.lock", "a running study driver",
                     "wait for it (its runs resume where they are), or give the study another name (study.name=...)"):
            runner.save_definition(study)
            print(runner.describe_plan(study), flush=True)
            for stage in runner.STAGES:
                if args.command in ("run", stage):
                    runner.run_stage(study, stage, rerun_failed=args.rerun_failed)
        if args.command != "run":
            return 0
    table = collect(study)
    write_table(table, study.dir)
    if args.command in ("run", "report"):
        report.write_report(table, Path(args.out or study.dir), wandb_mode=args.wandb,
                            settings=study.cfg.get("analysis"), table_dir=study.dir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
