"""Architecture search entry point.

Not implemented yet: one-shot search (DARTS, PC-DARTS, GDAS) arrives with the one-shot issue,
multi-trial methods after it. This script refuses to run rather than pretend to search.
Until then, train published architectures with train.py (``arch=darts_v2``, ``arch=pc_darts_cifar``, ...).
"""

import sys

if __name__ == "__main__":
    sys.exit("search.py: no search method is implemented yet (one-shot DARTS/PC-DARTS/GDAS is the next "
             "milestone). Train a published architecture instead: python train.py arch=darts_v2")
