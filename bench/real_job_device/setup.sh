#!/bin/bash
# call 1: first GGUF half to /tmp/g, code to /tmp/code, missing wheels to /tmp/site, import check
set -e
H=$(cd "$(dirname "$0")" && pwd)
mkdir -p /tmp/g && cp "$H/gguf.part00" /tmp/g/
rm -rf /tmp/code && cp -r "$H/code" /tmp/code
W="$H/whl"
python3 -V
pip install -q --no-index --find-links "$W" --target /tmp/site --no-deps gguf 2>&1 | tail -2
python3 -c "import pydantic; print('image pydantic', pydantic.VERSION)" || pip install -q --no-index --find-links "$W" --target /tmp/site pydantic 2>&1 | tail -2
python3 -c "import yaml; print('image yaml', yaml.__version__)" || pip install -q --no-index --find-links "$W" --target /tmp/site pyyaml 2>&1 | tail -2
cd /tmp/code && PYTHONPATH=/tmp/site:/tmp/code python3 -c "
import pydantic, yaml, gguf
import sft_playbook.config, sft_playbook.sft.model, sft_playbook.sft.predict, sft_playbook.sft.data, sft_playbook.sft.recipe, sft_playbook.sft.fast, sft_playbook.evaluate.verilogeval
print('imports ok: pydantic', pydantic.VERSION, 'yaml', yaml.__version__)"
PYTHONPATH=/tmp/site:/tmp/code python3 /tmp/code/run_sft.py --help | head -2
PYTHONPATH=/tmp/site:/tmp/code python3 /tmp/code/bench/real_job.py device --help | grep -c plan
nvidia-smi --query-gpu=name,memory.used --format=csv,noheader
