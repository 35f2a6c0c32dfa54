#!/usr/bin/env bash
# Wheels for the peer arms and levers of bench/train_throughput.py that the GPU machine (Python 3.12,
# torch 2.11, transformers 5.17, accelerate 1.15, no internet) lacks; about 10 MB, all pure Python
# except torchao (whose C++ extensions are built for another torch: it skips them and keeps its
# pure-Python / Triton float8 training, the part used here).
#   TRL arm:        trl 1.16.0, datasets 5.2.0, dill, multiprocess (datasets' two missing needs)
#   Liger kernels:  liger-kernel 0.8.5 (TRL's use_liger_kernel, our optional Liger lever)
#   torchtune arm:  torchtune 0.6.1 (its wheel ships recipes/), torchdata 0.11.0, omegaconf 2.4.0,
#                   torchao 0.15.0 (torchtune 0.6.1 imports torchao.dtypes.nf4tensor, gone in 0.18)
#   float8 lever:   the same torchao
# Everything else they import (accelerate, transformers, pandas, pyarrow, xxhash, fsspec,
# huggingface-hub, psutil, jinja2, pyyaml, tqdm, rich, sentencepiece, tiktoken, requests, urllib3,
# triton, ...) is already on that machine (the device README's package list).
#
# Usage (here, with PyPI):   bash bench/fetch_trl_wheels.sh            -> .whl/trl/*.whl (git-ignored)
# On the GPU machine:        python3 -m pip install --no-index --no-deps --target /tmp/site .whl/trl/*.whl
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
DEST=.whl/trl
mkdir -p "$DEST"
# trl 1.16.0 needs transformers>=4.56.2, accelerate>=1.10.1, datasets>=4.7.0 (checked in its metadata);
# datasets 5.2.0 needs dill<0.4.2 and multiprocess<0.70.20; torchtune 0.6.1 needs torchdata==0.11.0.
PKGS=(trl==1.16.0 datasets==5.2.0 dill==0.4.1 multiprocess==0.70.19 liger-kernel==0.8.5
      torchtune==0.6.1 torchdata==0.11.0 omegaconf==2.4.0 torchao==0.15.0)
python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_24_x86_64 --platform manylinux2014_x86_64 \
  --platform any -d "$DEST" "${PKGS[@]}"
ls -la "$DEST"
du -sh "$DEST"
