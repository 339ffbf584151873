"""Every ``python search.py`` / ``train.py`` / ``-m lsnas.data.shards`` / ``-m lsnas.analysis`` command in the README
and docs/ names settings that exist: its overrides compose against conf/ as the entry point composes them (nothing
runs). A renamed setting or config option then fails here, not in a user's first command. An override whose value
is left to the reader (``<run dir>``, ``...``) composes the default in its place; Hydra's own settings
(``hydra.*``, ``hydra/launcher=``) are left out; a sweep (``-m``, ``a,b``) composes its first value."""

import re
import shlex

import pytest
from hydra.errors import HydraException
from omegaconf.errors import OmegaConfBaseException

from tests.helpers.config import ROOT, compose_config

ENTRY_POINTS = {"search.py": "search", "train.py": "train", "-m lsnas.data.shards": "shards",
                "-m lsnas.analysis": "analysis"}
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def shell_lines(text: str):
    """The lines of the fenced shell blocks, continuation lines joined."""
    for block in re.findall(r"```(?:bash|sh|shell|console)?\n(.*?)```", text, flags=re.S):
        yield from block.replace("\\\n", " ").splitlines()


def commands():
    found = []
    for doc in DOCS:
        for line in shell_lines(doc.read_text()):
            line = line.split(" # ")[0].strip()
            for entry, config in ENTRY_POINTS.items():
                marker = f"python {entry}"
                if marker in line:
                    found.append(pytest.param(config, line.split(marker, 1)[1],
                                              id=f"{doc.name}:{line[:70]}"))
    return found


def composable(args: str) -> list[str]:
    """The overrides of a command line, as compose takes them."""
    words = shlex.split(args.split("|")[0].split("&&")[0])
    overrides = []
    for word in words:
        if word in ("-m", "--multirun") or word.startswith(("hydra.", "hydra/", "$", ">")):
            continue
        if "=" not in word:  # a verb (lsnas.analysis run), a flag, a path, '...' or '<run dir>'
            continue
        key, value = word.split("=", 1)
        if "..." in value or "<" in value:  # a value left to the reader (the default composes in its place)
            continue
        if "," in value and not value.startswith(("[", "'", '"')):  # a sweep: its first value
            value = value.split(",")[0]
        overrides.append(f"{key}={value}")
    return overrides


def test_the_docs_have_commands_to_check_and_a_wrong_setting_fails():
    assert len(commands()) >= 40  # the README alone has ~50: a regex that stopped matching would pass vacuously
    assert composable(" -m method=darts,pcdarts seed=0,1 hydra.run.dir=x dataset.root=... ckpt_path=last") == [
        "method=darts", "seed=0", "ckpt_path=last"]
    assert composable(" run study=<name> arch=<run dir>/arch.json --dry-run") == []
    with pytest.raises((HydraException, OmegaConfBaseException)):
        compose_config("search", *composable(" method=pcdarts method.module.no_such_setting=1"))


@pytest.mark.parametrize(("config", "args"), commands())
def test_doc_command_composes(config, args):
    overrides = composable(args)
    try:
        compose_config(config, *overrides)
    except (HydraException, OmegaConfBaseException) as e:
        pytest.fail(f"python {config}.py {' '.join(overrides)}: {type(e).__name__}: {e}")
