"""A slow stage moves the pass's progress within a partition: the task reports rows done
(``RowReporter``, events on the scheduler) and ``Engine.gather_each`` shows them while it runs
(review 15c #9: with the compile check at ~7 rows/s a thread, a 10,000-row partition gave no
progress for ~20 minutes)."""
from __future__ import annotations

import logging

from sft_playbook.curate.engine import Engine, ProgressLine, RowReporter


def slow_rows(n: int, pause_s: float) -> dict:
    """A task on a worker: n rows, one every pause_s seconds, reported as they go."""
    import time

    from sft_playbook.curate import engine as eng

    eng.REPORT_EVERY_S = 0.2                  # in the worker process
    rep = RowReporter()
    assert rep.worker is not None and rep.key is not None
    for _ in range(n):
        time.sleep(pause_s)
        rep.update(1)
    return {"rows": n}


def test_running_tasks_report_their_rows_before_they_finish():
    with Engine(engine="dask", n_workers=2, threads_per_worker=1) as eng:
        futs = [eng.client.submit(slow_rows, 40, 0.1, pure=False), eng.client.submit(slow_rows, 40, 0.1, pure=False)]
        reports = [eng.client.submit(lambda r: r, f) for f in futs]
        finished, seen = [], []
        values = eng.gather_each(reports, lambda v: finished.append(v["rows"]), seen.append, [f.key for f in futs])
    assert values == [{"rows": 40}, {"rows": 40}] and finished == [40, 40]
    before = [r for r in seen if r > 0]
    assert before, f"no progress while the tasks ran: {seen}"
    assert max(before) <= 80 and any(0 < r < 40 for r in seen), seen


def test_outside_a_worker_the_reporter_does_nothing():
    rep = RowReporter()
    rep.update(5)
    assert (rep.worker, rep.key, rep.done) == (None, None, 5)


def test_the_plain_line_shows_the_running_rows_without_adding_them(caplog):
    now = [0.0]
    p = ProgressLine("pass 2/4 (compiles)", 1000, 30, clock=lambda: now[0])
    with caplog.at_level(logging.INFO, logger="sft_playbook.curate"):
        now[0] = 31
        p.update(0, running=120)           # two partitions running, 120 rows done in them
        now[0] = 62
        p.update(500, running=0)           # one finished (its 500 rows), the other just started
    lines = [r.getMessage() for r in caplog.records]
    assert lines[0].startswith("pass 2/4 (compiles): 120 / 1000 rows (12%)"), lines
    assert lines[1].startswith("pass 2/4 (compiles): 500 / 1000 rows (50%)"), lines


def test_the_compile_check_reports_per_row(monkeypatch):
    """The compile stage's loop feeds a RowReporter once per row (here, outside a worker, it only counts)."""
    import pandas as pd

    from sft_playbook.curate import engine as eng_mod
    from sft_playbook.curate.filters import Compiles

    counted = []
    real = eng_mod.RowReporter.update
    monkeypatch.setattr(eng_mod.RowReporter, "update", lambda self, n: (counted.append(n), real(self, n)))
    stage = Compiles()
    df = pd.DataFrame({"id": ["a", "b", "c"], "_order": [0, 1, 2],
                       "code": ["module a(input x, output y); assign y = x; endmodule",
                                "module b(input x, output y); assign y = ~x; endmodule", "module c(; endmodule"]})
    out = stage(df)
    assert counted == [1, 1, 1] and len(out) == 3


def test_the_shown_rows_never_go_back_when_a_partition_finishes():
    """finished + running, as the pass's bar shows it, only grows (review 15d #11: it dropped the
    running partitions' rows each time one finished) and ends at the total."""
    with Engine(engine="dask", n_workers=2, threads_per_worker=1) as eng:
        sizes = [15, 40, 25, 30]
        futs = [eng.client.submit(slow_rows, n, 0.05, pure=False) for n in sizes]
        reports = [eng.client.submit(lambda r: r, f) for f in futs]
        finished, shown, calls = [0], [], []

        def done(v):
            finished[0] += v["rows"]
            calls.append("done")

        def running(rows):
            shown.append(finished[0] + rows)
            calls.append("running")

        eng.gather_each(reports, done, running, [f.key for f in futs])
    assert shown == sorted(shown), shown
    # every finish is followed by a running call (the display gets the new split of finished/running)
    assert all(calls[i + 1] == "running" for i, c in enumerate(calls) if c == "done" and
               (i + 1 == len(calls) or calls[i + 1] != "done")) and calls[-1] == "running", calls
    assert shown[-1] == sum(sizes) and any(0 < s < sum(sizes) for s in shown), shown


def test_engine_local_reports_after_each_partition():
    with Engine(engine="local") as eng:
        calls = []
        eng.gather_each([{"rows": 3}, {"rows": 4}], lambda v: calls.append(("done", v["rows"])),
                        lambda rows: calls.append(("running", rows)), [None, None])
    assert calls == [("done", 3), ("running", 0), ("done", 4), ("running", 0)]
