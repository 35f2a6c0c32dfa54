"""The curation report: ``curation_report.json`` (everything), ``curation_report.md`` (the same for
people) and ``curation_funnel.png`` (rows after each stage). Nothing machine- or time-dependent goes
in (no timings, paths or engine details; those are logged), so reruns are byte-identical."""
from __future__ import annotations

import io
from pathlib import Path
from typing import Any

from ..io import write_bytes_atomic, write_json_atomic, write_text_atomic


def write_report(out_dir: Path, report: dict[str, Any]) -> None:
    """Write ``curation_report.json``, ``curation_report.md`` and ``curation_funnel.png`` into ``out_dir`` (atomically each)."""
    write_json_atomic(out_dir / "curation_report.json", report)
    write_text_atomic(out_dir / "curation_report.md", markdown(report))
    write_bytes_atomic(out_dir / "curation_funnel.png", funnel_png(report))


def markdown(r: dict[str, Any]) -> str:
    """The curation report as Markdown: sources and licences, the stage table, redactions and more.

    Args:
        r: the report dict (``curation_report.json``'s content).

    Returns:
        The Markdown text (lines joined by ``\\n``, no final newline), ending with a link to
        ``curation_funnel.png``.
    """
    lines = ["# Curation report", "",
             f"Sources: {', '.join(s['name'] + ' (' + s['origin'] + ', ' + str(s['rows']) + ' rows)' for s in r['sources'])}.",
             "", "Licences of the data (the curated output carries them; see README.md, License):", "",
             *[f"- {s['name']}: {s.get('license', 'unknown')}" + (f" - {s['license_note']}" if s.get("license_note") else "")
               for s in r["sources"]], "",
             f"Rows read: {r['rows_read']}; bad input lines skipped: {r['bad_lines']['skipped']}; "
             f"rows kept: {r['rows_kept']}.", "",
             "## Stages", "", "| # | stage | rows in | rows out | dropped | reasons |", "| --- | --- | --- | --- | --- | --- |"]
    for i, st in enumerate(r["stages"], start=1):
        reasons = ", ".join(f"{k}: {v}" for k, v in st["dropped"].items()) or "-"
        lines.append(f"| {i} | {st['name']} | {st['rows_in']} | {st['rows_out']} | {st['rows_in'] - st['rows_out']} | {reasons} |")
    lines += ["", "## Redactions by kind", ""]
    red = r["redactions"]
    lines += [f"- {k}: {v}" for k, v in red.items()] if any(red.values()) else ["- none"]
    rejected = {k[len("rejected_"):]: v for st in r["stages"] if st["name"] == "pii"
                for k, v in st["counters"].items() if k.startswith("rejected_")}
    lines += ["", "Number candidates considered and not redacted (design constants, digit tables):", ""]
    lines += [f"- {k}: {v}" for k, v in sorted(rejected.items())] if any(rejected.values()) else ["- none"]
    lines += ["", "## Duplicates", ""]
    for name in ("exact_dedup", "fuzzy_dedup"):
        if name in r["duplicates"]:
            lines.append(f"- {name}: " + ", ".join(
                f"{k} {_sizes(v) if isinstance(v, dict) else v}" for k, v in r["duplicates"][name].items()))
    lines += ["", "## Decontamination", "", f"- benchmark problems checked: {r['decontamination'].get('problems_checked', 0)}"]
    lines += ["", "## Splits (rows per level)", "", "| level | train | validation | test |", "| --- | --- | --- | --- |"]
    for lvl, s in r["splits"].items():
        lines.append(f"| {lvl} | {s['train']} | {s['validation']} | {s['test']} |")
    lines += ["", "## Other counters", ""]
    for st in r["stages"]:
        c = {k: v for k, v in st["counters"].items() if not k.startswith(("pii_", "rejected_")) and v}
        if c:
            lines.append(f"- {st['name']}: " + ", ".join(f"{k} {v}" for k, v in c.items()))
    lines += ["", "## Examples of drops", ""]
    for st in r["stages"]:
        for reason, exs in st["examples"].items():
            for ex in exs:
                lines.append(f"- {st['name']} / {reason}: `{ex['id']}`" + (f" - {ex['detail']}" if ex["detail"] else ""))
    lines += ["", "![funnel](curation_funnel.png)", ""]
    return "\n".join(lines)


def _sizes(hist: dict) -> str:
    """{"2": 5, "3": 1} -> "5 x 2 rows, 1 x 3 rows" (cluster size histogram).

    Returns:
        The histogram as text, ``none`` when it is empty.
    """
    return ", ".join(f"{n} x {k} rows" for k, n in hist.items()) or "none"


def funnel_png(r: dict[str, Any]) -> bytes:
    """A horizontal bar chart of the rows left after reading and after each stage.

    Args:
        r: the report dict (``rows_read`` and each stage's ``rows_out`` are plotted).

    Returns:
        The PNG file's bytes: 800 px wide, 42 px per bar + 120 px high (100 dpi), without a
        ``Software`` metadata entry (so the same report gives the same bytes).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = ["read"] + [st["name"] for st in r["stages"]]
    rows = [r["rows_read"]] + [st["rows_out"] for st in r["stages"]]
    fig, ax = plt.subplots(figsize=(8, 0.42 * len(names) + 1.2), dpi=100)
    y = list(range(len(names)))[::-1]
    ax.barh(y, rows, color="#4c72b0")
    for yi, n, _name, prev in zip(y, rows, names, [rows[0]] + rows[:-1]):
        label = f"{n}" + (f"  (-{prev - n})" if prev - n else "")
        ax.text(n, yi, " " + label, va="center", fontsize=8)
    ax.set_yticks(y)
    ax.set_yticklabels(names, fontsize=8)
    ax.set_xlabel("rows after stage")
    ax.set_title("Curation funnel")
    ax.set_xlim(0, max(rows + [1]) * 1.2)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", metadata={"Software": None})
    plt.close(fig)
    return buf.getvalue()
