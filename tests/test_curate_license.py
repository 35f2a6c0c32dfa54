"""Every source states its data's licence; the curation logs it and writes it into the report."""
from __future__ import annotations

import json
import logging
import re
from pathlib import Path

import pytest

from sft_playbook.curate.report import markdown
from sft_playbook.curate.sources import SourceError, licence_of, read_source_specs

REPO = Path(__file__).resolve().parents[1]


def test_shipped_source_states_mg_verilog_licence():
    (spec,) = read_source_specs(REPO / "sources" / "huggingface_urls.jsonl")
    assert spec["repo_id"] == "GaTech-EIC/MG-Verilog" and spec["license"] == "CC-BY-NC-SA-4.0"
    assert "commercial" in spec["license_note"]


def test_readme_example_source_line_parses_and_is_permissive(tmp_path):
    text = (REPO / "README.md").read_text(encoding="utf-8")
    lines = re.findall(r"```json\n(\{.*?\})\n```", text)
    assert lines, "README shows no example source line"
    p = tmp_path / "sources.jsonl"
    p.write_text("\n".join(lines) + "\n", encoding="utf-8")
    specs = read_source_specs(p)
    assert all(s["license"] in ("Apache-2.0", "MIT") for s in specs)


def test_missing_licence_warns_and_is_reported_unknown(tmp_path, caplog):
    p = tmp_path / "s.jsonl"
    p.write_text(json.dumps({"name": "x", "path": "a.jsonl", "levels": {"high_level": "h"}}) + "\n")
    with caplog.at_level(logging.WARNING):
        (spec,) = read_source_specs(p)
    assert spec["license"] == "unknown" and "states no licence" in caplog.text
    p.write_text(json.dumps({"name": "x", "path": "a.jsonl", "levels": {"high_level": "h"}, "license": ""}) + "\n")
    with pytest.raises(SourceError, match=r"s.jsonl:1: 'license'"):
        read_source_specs(p)


def test_report_lists_each_sources_licence():
    origins = [{"name": "mg-verilog", "origin": "hub", "rows": 10,
                **licence_of({"license": "CC-BY-NC-SA-4.0", "license_note": "non-commercial"})},
               {"name": "own", "origin": "local", "rows": 5, **licence_of({})}]
    r = {"sources": origins, "rows_read": 15, "bad_lines": {"skipped": 0}, "rows_kept": 15, "stages": [],
         "redactions": {}, "duplicates": {}, "decontamination": {}, "splits": {}}
    md = markdown(r)
    assert "- mg-verilog: CC-BY-NC-SA-4.0 - non-commercial" in md and "- own: unknown" in md
