"""EAT-NAS (Fang et al., 2019): evolution on a source dataset, then elastic transfer of the population to a
target dataset, over the MobileNetV2 block space (``method=eatnas``, ``space=mbv2_blocks``)."""

from lsnas.methods.eatnas.strategy import ElasticTransfer, OffspringGenerator, SourceEvolution, TargetEvolution

__all__ = ["ElasticTransfer", "OffspringGenerator", "SourceEvolution", "TargetEvolution"]
