#!/usr/bin/env bash
# The wheels lsnas needs on the device tool's GPU machines beyond what their image holds (PyTorch, Lightning, timm,
# torchmetrics, pandas, matplotlib, scipy are there; Hydra and OmegaConf are not), into .whl/ (ignored by git).
# A GPU session runs this here, then the command in docs/benchmarks.md ("Running the GPU check") there.
set -euo pipefail
cd "$(dirname "$0")/.."
grep -qx '/.whl/' .git/info/exclude 2>/dev/null || echo '/.whl/' >> .git/info/exclude
rm -rf .whl && mkdir -p .whl
python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux2014_x86_64 -d .whl hydra-core==1.3.2 omegaconf==2.3.0
python3 -m pip wheel -q --no-deps -w .whl antlr4-python3-runtime==4.9.3  # an sdist only: built as pure Python here
ls -la .whl
