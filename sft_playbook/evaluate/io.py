"""The evaluation's readers and writers: the package's shared ones (``sft_playbook.io``)."""
from ..io import read_jsonl, write_json_atomic, write_jsonl_atomic  # noqa: F401
