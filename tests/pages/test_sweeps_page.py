"""The Sweeps page under streamlit.testing.v1.AppTest, on two tiny sweeps run for it.

A workspace gets a finished sweep (ConvNet-D2 x baseline / LADD on `shapes`) and a stopped one
(one cell done, one pending); the app reads it through LADD_WORKSPACE.
"""

from __future__ import annotations

import sys
import threading
from pathlib import Path
from urllib.parse import parse_qs

import pytest

pytest.importorskip("streamlit")
from streamlit.testing.v1 import AppTest  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # the app package lives at the repository root
    sys.path.insert(0, str(ROOT))
MAIN = str(ROOT / "app" / "main.py")
TIMEOUT = 120


@pytest.fixture(scope="module")
def sweeps(tmp_path_factory, one_thread):
    from ladd.labeler import LabelerConfig, train_labeler
    from ladd.sets import random_real
    from ladd.store import Workspace
    from ladd.sweep import SweepSpec, run_sweep

    root = tmp_path_factory.mktemp("workspace")
    ws = Workspace(root)
    random_real("shapes", 2, seed=0, image_size=16).save_mtt(ws.sets_dir / "rr")
    train_labeler(
        "shapes",
        LabelerConfig(epochs=1, save_at=(1,), limit_per_class=20, image_size=16,
                      model_options={"width": 8}),
        ws.labelers_dir / "lab",
        device="cpu",
    )  # fmt: skip
    spec = SweepSpec(
        name="grid",
        sets=(str(ws.sets_dir / "rr"),),
        source="shapes",
        archs=("convnet_d2",),
        modes=("baseline", "ladd"),
        labeler=str(ws.labelers_dir / "lab"),
        nr=((3, 0.5),),
        seed_groups=((0,),),
        epochs=2,
        width=8,
        device="cpu",
    )
    full = run_sweep(spec, ws)
    stop = threading.Event()
    partial = run_sweep(
        spec.with_options(name="partial", epochs=3),
        ws,
        on_event=lambda ev: stop.set() if ev.kind == "done" else None,
        stop=stop,
    )
    mp = pytest.MonkeyPatch()
    mp.setenv("LADD_WORKSPACE", str(root))
    mp.delenv("LADD_CACHE_DIR", raising=False)
    yield {"full": full.record, "partial": partial.record}
    mp.undo()


def open_sweeps(**query) -> AppTest:
    at = AppTest.from_file(MAIN, default_timeout=TIMEOUT)
    for k, v in query.items():
        at.query_params[k] = v
    at.run()
    at.switch_page("../pages/6_sweeps.py").run()
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]
    return at


def metric(at: AppTest, label: str) -> str:
    found = [m.value for m in at.metric if m.label == label]
    assert found, f"no metric {label!r} in {[m.label for m in at.metric]}"
    return found[0]


def compare_link(at: AppTest) -> dict[str, list[str]]:
    links = [el.proto for el in at.get("page_link") if "compare" in el.proto.page]
    assert len(links) == 1, [el.proto.page for el in at.get("page_link")]
    return parse_qs(links[0].query_string)


def run_label(run_id: int) -> str:
    from app.widgets import run_label
    from ladd.store import Workspace
    from ladd.summaries import summarise

    return run_label(summarise(Workspace().db.get_run(run_id)))


def test_sweeps_page_lists_sweeps_and_their_cells(sweeps):
    at = open_sweeps()
    assert at.selectbox(key="sw_name").options == ["partial", "grid"]  # newest first
    at.selectbox(key="sw_name").set_value("grid").run()
    assert metric(at, "Status") == "done"
    assert metric(at, "Cells done") == "2 / 2"
    cells = at.dataframe[1].value
    assert list(cells["mode"]) == ["baseline", "ladd"]
    assert cells["status"].str.contains("done").all()
    expected = [round(100 * c.accuracy_mean, 2) for c in sweeps["full"].cells]
    assert list(cells["accuracy"]) == expected
    assert list(cells["run"]) == [c.run_id for c in sweeps["full"].cells]
    grid = at.dataframe[0].value  # accuracy by architecture x mode
    assert list(grid.columns) == ["baseline", "ladd"]


def test_sweeps_page_reads_the_sweep_from_the_url_and_shows_pending_cells(sweeps):
    at = open_sweeps(sw_name="partial")
    assert metric(at, "Status") == "stopped"
    assert metric(at, "Cells done") == "1 / 2"
    statuses = list(at.dataframe[-1].value["status"])
    assert sum("pending" in s for s in statuses) == 1


def test_a_ladd_cell_opens_in_compare_against_its_baseline(sweeps):
    base, ladd = sweeps["full"].cells
    at = open_sweeps(sw_name="grid")
    options = at.selectbox(key="sw_cell").options
    assert options == [f"#{base.run_id} {base.label}", f"#{ladd.run_id} {ladd.label}"]
    at.selectbox(key="sw_cell").set_value(options[1]).run()
    link = compare_link(at)
    assert link == {"cmp_b": [run_label(ladd.run_id)], "cmp_a": [run_label(base.run_id)]}
    at.selectbox(key="sw_cell").set_value(options[0]).run()
    assert compare_link(at) == {"cmp_b": [run_label(base.run_id)]}
    # opened with the link's query, Compare runs shows exactly those two runs
    at = AppTest.from_file(MAIN, default_timeout=TIMEOUT)
    for k, (v,) in link.items():
        at.query_params[k] = v
    at.run()
    at.switch_page("../pages/5_compare.py").run()
    assert not at.exception
    assert at.selectbox(key="cmp_a").value == base.run_id
    assert at.selectbox(key="cmp_b").value == ladd.run_id


def test_sweeps_page_on_a_workspace_without_sweeps(tmp_path, monkeypatch):
    monkeypatch.setenv("LADD_WORKSPACE", str(tmp_path))
    at = AppTest.from_file(MAIN, default_timeout=TIMEOUT).run()
    at.switch_page("../pages/6_sweeps.py").run()
    assert not at.exception and not at.error
    assert any("No sweeps yet" in i.value for i in at.info)
