"""Pictures a person reads: cell diagrams whose labels sit on their edges and never cover a node, and short
genotype log lines."""

import random

import matplotlib.pyplot as plt
import pytest

from lsnas.arch import from_zoo
from lsnas.spaces import get_space
from lsnas.training.callbacks import short_genotype
from lsnas.viz import _overlap, draw_cell

GENOTYPES = [from_zoo("darts_v2").genotype, from_zoo("darts_v1").genotype,
             *(get_space("darts").sample(random.Random(seed)).genotype for seed in range(12))]


@pytest.mark.parametrize("kind", ["normal", "reduce"])
def test_cell_labels_cover_no_node_and_no_other_label(kind):
    for genotype in GENOTYPES:
        fig, ax = plt.subplots(figsize=(11, 4.2))
        labels, nodes = draw_cell(ax, genotype, kind)
        plt.close(fig)
        assert len(labels) == 8 and len(nodes) == 7
        assert all(_overlap(label, node) == 0 for label in labels for node in nodes), genotype[kind]
        assert all(_overlap(a, b) == 0 for i, a in enumerate(labels) for b in labels[i + 1:]), genotype[kind]


def test_genotype_log_lines_are_short_and_count_changes():
    genotype = from_zoo("darts_v2").genotype
    line = short_genotype(genotype)
    assert line == ("normal: sep_conv_3x3 x5, skip_connect x2, dil_conv_3x3 x1 | "
                    "reduce: max_pool_3x3 x5, skip_connect x3")
    moved = {**genotype, "normal": [["skip_connect", 0], *genotype["normal"][1:]]}
    assert short_genotype(moved, genotype).endswith("(1 edge changed)")
    assert len(short_genotype({"blocks": list(range(200))})) == 160
