from lsnas.methods.oneshot.base import OneShotMethod
from lsnas.methods.oneshot.bilevel import BilevelMethod
from lsnas.methods.oneshot.darts import DARTS
from lsnas.methods.oneshot.gdas import GDAS
from lsnas.methods.oneshot.pcdarts import PCDARTS

__all__ = ["DARTS", "GDAS", "PCDARTS", "BilevelMethod", "OneShotMethod"]
