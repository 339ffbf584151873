from lsnas.spaces.darts.genotype import canonical_genotype, derive_genotype
from lsnas.spaces.darts.networks import DartsNetworkCIFAR, DartsNetworkImageNet
from lsnas.spaces.darts.ops import OPS, PRIMITIVES, make_op
from lsnas.spaces.darts.space import DartsSpace

__all__ = ["OPS", "PRIMITIVES", "DartsNetworkCIFAR", "DartsNetworkImageNet", "DartsSpace",
           "canonical_genotype", "derive_genotype", "make_op"]
