"""The curation report: ``curation_report.json`` (everything), ``curation_report.md`` (the same for
people) and ``curation_funnel.png`` (rows after each stage). Nothing machine- or time-dependent goes
in (no timings, paths or engine details), so reruns are byte-identical.

Where the time went is written beside it, in the same output set: ``curation_timings.json`` and
``curation_timings.md`` (``write_timings``): per step, per pass and per stage, wall and CPU
seconds and rows/s. They change from run to run; the report names them in one fixed line."""
from __future__ import annotations

import io
from pathlib import Path
from typing import Any

from ..io import write_bytes_atomic, write_json_atomic, write_text_atomic


#: the files that say where the time went: in the output set, never byte-identical between runs
TIMINGS_FILES = ("curation_timings.json", "curation_timings.md")
#: the one (time-free) line of curation_report.md that points to them
#: (no link: the committed sample outputs do not ship the timings files, .gitignore keeps them out)
TIMINGS_LINE = ("Where the time went (per step, pass and stage): curation_timings.md and curation_timings.json, "
                "written beside this report on each run. They change from run to run, so they are not in this "
                "report and not shipped with the committed sample outputs.")


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
             f"Rows read: {r['rows_read']}; bad input lines skipped: {r['bad_lines']['skipped']}"
             + (" (" + ", ".join(f"{k}: {v}" for k, v in r["bad_lines"]["by_reason"].items()) + "; every one in the "
                "dropped rows' 00_bad_lines.jsonl when dropped_dir is set)" if r["bad_lines"].get("by_reason") else "")
             + f"; rows kept: {r['rows_kept']}.", "", TIMINGS_LINE, "",
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


def write_timings(out_dir: Path, timings: dict[str, Any]) -> None:
    """Write ``curation_timings.json`` (``timings`` as given) and ``curation_timings.md``
    (``timings_markdown``) into ``out_dir`` (atomically each).

    Raises:
        OutputError: a file cannot be written (its path named).
    """
    write_json_atomic(out_dir / TIMINGS_FILES[0], timings)
    write_text_atomic(out_dir / TIMINGS_FILES[1], timings_markdown(timings))


def _s(v: Any) -> str:
    return "-" if v is None else f"{v:.2f}"


def _ranges(numbers: list[int]) -> str:
    """Pass numbers as ranges.

    Returns:
        e.g. ``"1-3, 5"`` for ``[1, 2, 3, 5]``.
    """
    out: list[str] = []
    for n in sorted(numbers):
        if out and int(out[-1].split("-")[-1]) == n - 1:
            out[-1] = f"{out[-1].split('-')[0]}-{n}"
        else:
            out.append(str(n))
    return ", ".join(out)


def timings_markdown(t: dict[str, Any]) -> str:
    """Where the time went, for people: the steps of the run, then one row per pass, then one
    row per stage (its global fit, if it has one, on a row of its own). Stage names in full.

    Args:
        t: the timings dict (``curation_timings.json``'s content: ``total_s``, ``rows_read``,
            ``rows_per_s``, ``engine``, ``finished_utc``, ``steps_s`` {step: s}, ``passes``
            [{pass, stages, rows_in, fit_s, pass_s, rows_per_s, dropped_rows_write_s,
            checkpoint_s, total_s, stage_s [{stage, rows_in, fit_s, wall_s, cpu_s, rows_per_s}], other_s
            [{step, wall_s, cpu_s}]}]: the pass's work outside its stages - reading the shards, the next
            global stage's keys, drop counts, writing split parts; a pass done by an earlier run has
            ``resumed: true`` and no times).

    Returns:
        The Markdown text (lines joined by ``\\n``, ending with a newline).
    """
    total = max(float(t["total_s"]), 1e-9)
    resumed = t.get("resumed_passes") or []
    if resumed:
        head = (f"Finished {t.get('finished_utc', '?')} on {t.get('engine', '?')}: RESUMED - pass(es) "
                f"{_ranges(resumed)} and the read of {t['rows_read']} rows were done by an earlier run and are not "
                f"timed here; this run passed {t.get('rows_through', '?')} rows through the other passes in "
                f"{t['total_s']:.1f} s ({t['rows_per_s']:.0f} rows/s over the passes run).")
    else:
        head = (f"Finished {t.get('finished_utc', '?')} on {t.get('engine', '?')}: {t['rows_read']} rows read, "
                f"{t['total_s']:.1f} s in all ({t['rows_per_s']:.0f} rows/s overall).")
    lines = ["# Where the time went", "",
             head + " Wall seconds as the driver saw "
             "them; a stage's wall and CPU seconds are summed over its partitions (over the workers' threads), "
             "its rows/s is per worker thread.", "",
             "## Steps", "", "| step | wall s | share |", "| --- | ---: | ---: |"]
    for step, sec in t["steps_s"].items():
        lines.append(f"| {step} | {sec:.2f} | {100 * sec / total:.1f}% |")
    lines += ["", "## Passes", "",
              "fit s: before the pass, on the driver and the workers: the global fit of its first stage (module "
              "index, dedup) on the whole corpus, and the other stages' set-up (decontaminate loads the benchmark).", "",
              "| pass | stages | rows in | fit s | pass s | rows/s | dropped-row write s | checkpoint s | total s |",
              "| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for p in t["passes"]:
        names = ", ".join(p["stages"])
        if p.get("resumed"):
            lines.append(f"| {p['pass']} | {names} | - | finished in an earlier run (resume) | - | - | - | - | - |")
            continue
        lines.append(f"| {p['pass']} | {names} | {p['rows_in']} | {p['fit_s']:.2f} | {p['pass_s']:.2f} | "
                     f"{p['rows_per_s']:.0f} | {p['dropped_rows_write_s']:.2f} | {p['checkpoint_s']:.2f} | {p['total_s']:.2f} |")
    lines += ["", "## Stages", "",
              "fit s: wall seconds before the pass (`global` marks a fit over the whole corpus); wall s, CPU s: "
              "in the pass, summed over the partitions. The pass's work outside its stages has rows of its own "
              "(in parentheses): reading the shards, the keys the NEXT pass's global stage decides on (exact-dedup "
              "hashes, fuzzy-dedup MinHash signatures, module names), drop counts and examples, writing split "
              "parts; with one worker thread a pass's rows add up to its pass s.", "",
              "| pass | stage | rows in | fit s | wall s | CPU s | rows/s per thread |",
              "| ---: | --- | ---: | ---: | ---: | ---: | ---: |"]
    for p in t["passes"]:
        if p.get("resumed"):
            continue
        for s in p.get("stage_s", []):
            fit = _s(s.get("fit_s")) + (" global" if s["stage"] == p.get("global_fit") else "")
            rate = f"{s['rows_per_s']:.0f}" if s.get("rows_per_s") is not None else "-"
            lines.append(f"| {p['pass']} | {s['stage']} | {s.get('rows_in', '-')} | {fit} | {_s(s['wall_s'])} | "
                         f"{_s(s['cpu_s'])} | {rate} |")
        for o in p.get("other_s", []):
            lines.append(f"| {p['pass']} | ({o['step']}) | - | - | {_s(o['wall_s'])} | {_s(o['cpu_s'])} | - |")
    return "\n".join(lines) + "\n"
