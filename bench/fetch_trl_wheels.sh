#!/usr/bin/env bash
# Wheels for the TRL arm of bench/train_throughput.py that the GPU machine (Python 3.12, torch 2.11,
# transformers 5.17, accelerate 1.15, no internet, no trl/datasets) lacks: TRL, datasets and the two
# packages of datasets' that are not there (dill, multiprocess). All pure Python; about 2 MB in all.
# Everything else they import (accelerate, transformers, pandas, pyarrow>=24 for datasets 5.2, xxhash,
# fsspec, huggingface-hub, psutil, jinja2, pyyaml, tqdm, rich, ...) is already on that machine.
#
# Usage (here, with PyPI):   bash bench/fetch_trl_wheels.sh            -> .whl/trl/*.whl (git-ignored)
# On the GPU machine:        python3 -m pip install --no-index --no-deps .whl/trl/*.whl
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
DEST=.whl/trl
mkdir -p "$DEST"
# trl 1.16.0 needs transformers>=4.56.2, accelerate>=1.10.1, datasets>=4.7.0 (checked in its metadata);
# datasets 5.2.0 needs dill<0.4.2 and multiprocess<0.70.20.
PKGS=(trl==1.16.0 datasets==5.2.0 dill==0.4.1 multiprocess==0.70.19)
python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  --platform manylinux_2_28_x86_64 --platform manylinux2014_x86_64 --platform any \
  -d "$DEST" "${PKGS[@]}"
ls -la "$DEST"
du -sh "$DEST"
