"""ladd.sweep.events: a sweep's live progress as events and text lines."""

from __future__ import annotations

import io
from dataclasses import replace

from ladd.sweep import SweepEvent, TextProgress, render_event


def test_render_event_shows_counts_eta_and_the_cell():
    ev = SweepEvent("done", "g", 8, 3, 2, 1, 1, 75.0, eta=250.0, cell="rr convnet_d3/ladd",
                    run_id=12, accuracy=0.5423)  # fmt: skip
    line = render_event(ev)
    for part in ("[g]", "3/8 done", "(1 skipped)", "2 running", "1 failed", "elapsed 1m15s",
                 "ETA 4m10s", "done rr convnet_d3/ladd: 54.23% (run 12)"):  # fmt: skip
        assert part in line, (part, line)
    assert ev.pending == 2
    end = render_event(replace(ev, kind="end", eta=0.0, cell=None, run_id=None, accuracy=None))
    assert "ETA" not in end and "finished" in end


def test_text_progress_throttles_per_epoch_lines():
    buf = io.StringIO()
    show = TextProgress(buf, every=3600)
    ev = SweepEvent("progress", "g", 2, 0, 1, 0, 0, 1.0, message="train 1/9")
    show(ev)
    show(replace(ev, message="train 2/9"))
    show(replace(ev, kind="done"))
    lines = buf.getvalue().splitlines()
    assert len(lines) == 2 and "train 1/9" in lines[0] and "done" in lines[1]
