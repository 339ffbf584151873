"""BigNAS (Yu et al., ECCV 2020): one single-stage supernet over ``space=bignas_mbconv`` whose children need no
retraining (``method=bignas``)."""

from lsnas.methods.bignas.module import BigNAS

__all__ = ["BigNAS"]
