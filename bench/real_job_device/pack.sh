#!/bin/bash
# Build the two carry folders for `bench/real_job.py device` through the device tool (no internet
# on the GPU machine, 64 MiB per call; docs/benchmarks.md, "Data size, format, epochs, with
# generations"):
#   .devcarry/real/p0: the GGUF's first half, this checkout's code (git archive HEAD), wheels the GPU
#                      image lacks (gguf, pydantic + its deps, pyyaml; cp312) and setup.sh
#   .devcarry/real/c:  the GGUF's second half, the curated data (tar), VerilogEval (tar) and go.sh
# Usage: bash bench/real_job_device/pack.sh <curated merged dir> [VerilogEval spec-to-rtl dir]
# Then, two consecutive device calls while the machine is warm (30 s idle release):
#   run carry=[".devcarry/real/p0"]: bash .devcarry/real/p0/setup.sh
#   run carry=[".devcarry/real/c"]:  bash .devcarry/real/c/go.sh spec-3ep,header-3ep 560
# and judge here: python bench/real_job.py judge --tar <files_at>/real_job.tar.gz --problems <VE> ...
# The curated MG-Verilog rows are CC-BY-NC-SA-4.0: .devcarry/ is git-ignored; never commit it.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
DATA=${1:?usage: pack.sh <curated merged dir> [VerilogEval spec-to-rtl dir]}
VE=${2:-../shared/benchmarks/verilog-eval-v2/spec-to-rtl}
PY=${PY:-.venv/bin/python}
for f in "$DATA" "$VE"; do [ -d "$f" ] || { echo "pack.sh: $f is not a folder" >&2; exit 2; }; done
git check-ignore -q .devcarry || { echo "pack.sh: .devcarry/ is not git-ignored here; refusing" >&2; exit 2; }
P0=.devcarry/real/p0 C=.devcarry/real/c
rm -rf "$P0" "$C" && mkdir -p "$P0/code" "$P0/whl" "$C"
GGUF=$("$PY" -c "from sft_playbook.sft.model import smollm2_gguf_path; print(smollm2_gguf_path())")
half=$(( ($(stat -c %s "$GGUF") + 1) / 2 ))
head -c "$half" "$GGUF" > "$P0/gguf.part00"
tail -c +"$((half + 1))" "$GGUF" > "$C/gguf.part01"
git archive HEAD | tar -x -C "$P0/code"
"$PY" -m pip download -q gguf==0.19.0 --no-deps -d "$P0/whl"
"$PY" -m pip download -q pydantic==2.14.4 pyyaml==6.0.3 --python-version 3.12 \
  --platform manylinux2014_x86_64 --platform manylinux_2_17_x86_64 --only-binary=:all: -d "$P0/whl"
cp bench/real_job_device/setup.sh "$P0/" && cp bench/real_job_device/go.sh "$C/"
tar czf "$C/realdata.tgz" -C "$DATA" --transform 's,^\./,merged/,;s,^\.$,merged,' .    # -> /tmp/d/merged
tar czf "$C/ve.tgz" -C "$VE" --transform 's,^\./,spec-to-rtl/,;s,^\.$,spec-to-rtl,' .  # -> /tmp/ve/spec-to-rtl
du -sh "$P0" "$C"
for d in "$P0" "$C"; do
  [ "$(du -sm "$d" | cut -f1)" -lt 64 ] || { echo "pack.sh: $d is over 64 MiB: it will not go in one call" >&2; exit 1; }
done
