#!/usr/bin/env bash
# Wheels for bench/curate_gpu_proof.py on the GPU machine (CPython 3.12, x86_64, no internet there):
# dask, distributed, ftfy, pandas and their dependencies into .whl/curate (git-ignored, ~33 MB).
# On the GPU machine:
#   python3 -m pip install --no-index --find-links .whl/curate dask==2026.8.0 distributed==2026.8.0 ftfy==6.3.1 pandas tqdm pyyaml
#   python3 bench/curate_gpu_proof.py --out "$OUT"
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
plat=(); for t in manylinux_2_28 manylinux_2_27 manylinux_2_17 manylinux2014 manylinux_2_24 manylinux_2_26 manylinux_2_31 manylinux_2_34 manylinux_2_35; do plat+=(--platform "${t}_x86_64"); done
python3 -m pip download -q --only-binary=:all: --python-version 3.12 --implementation cp "${plat[@]}" --platform any \
  -d .whl/curate dask==2026.8.0 distributed==2026.8.0 ftfy==6.3.1 pandas==3.1.1 tqdm pyyaml
ls .whl/curate | wc -l
