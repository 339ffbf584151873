"""BigNAS's elastic MBConv space: weight-slicing layers, the supernet / child network, the space."""

from lsnas.spaces.bignas.network import ElasticMBConvNet, recalibrate_bn
from lsnas.spaces.bignas.space import BigNASSpace

__all__ = ["BigNASSpace", "ElasticMBConvNet", "recalibrate_bn"]
