"""ladd.demo: the one-click demo builds every artifact with the pipeline, and reuses them."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from ladd.demo import DEMO_SIZES, build_demo, cam_inputs, list_demos, load_demo


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    root = tmp_path_factory.mktemp("demo")
    events = []
    t0 = time.perf_counter()
    arts = build_demo(root, size="small", progress=events.append, device="cpu")
    return root, arts, events, time.perf_counter() - t0


def test_small_demo_builds_every_artifact(built):
    from ladd.labeler import read_meta
    from ladd.sets import LabelAugmentedSet, load_distilled
    from ladd.store import Workspace

    root, arts, _, seconds = built
    spec = DEMO_SIZES["small"]
    assert [read_meta(p).epoch for p in arts.checkpoints] == list(spec.save_at)
    distilled = load_distilled(arts.distilled_dir)
    assert distilled.ipc == spec.ipc and distilled.num_classes == 10
    la = LabelAugmentedSet.load(arts.set_path)
    assert la.dense.shape == (10 * spec.ipc, spec.n * spec.n, 10)
    db = Workspace(root).db
    for run_id, mode in ((arts.baseline_run, "baseline"), (arts.ladd_run, "ladd")):
        run = db.get_run(run_id)
        assert run.status == "done" and run.config["train"]["mode"] == mode
        assert run.config["source"] == "shapes"
        assert all(
            Path(p).is_file() for k, p in run.artifacts.items() if k.startswith("model_seed")
        )
        assert (db.runs_dir / str(run_id) / "result.json").is_file()
    assert arts.cam_inputs.is_file()
    assert load_demo(root, "shapes", "small")["ladd_run"] == arts.ladd_run
    print(f"small demo: {seconds:.1f} s")


def test_progress_is_reported_and_ends_at_100(built):
    _, _, events, _ = built
    assert events and events[-1].step == 100 and events[-1].total == 100
    steps = [e.step for e in events]
    assert steps == sorted(steps)  # overall progress never goes back
    assert any(e.loss is not None for e in events)


def test_second_build_reuses_everything(built):
    root, arts, _, _ = built
    again = build_demo(root, size="small", device="cpu")
    assert set(again.skipped) >= {
        "labeler",
        "distilled",
        "dense",
        "run:baseline",
        "run:ladd",
        "cam",
    }
    assert (again.baseline_run, again.ladd_run) == (arts.baseline_run, arts.ladd_run)
    assert again.seconds < 20
    assert len(list_demos(root)) == 1


def test_cam_inputs_are_real_test_images_of_every_class(built):
    root, _, _, _ = built
    images = cam_inputs(root, "shapes")
    assert images.images.dtype.is_floating_point is False
    assert sorted(set(images.labels.tolist())) == list(range(10))
    assert images.info.class_names[0] == "circle"


def test_a_stop_request_interrupts_the_build(tmp_path):
    stop = threading.Event()
    stop.set()
    with pytest.raises((InterruptedError, RuntimeError)):
        build_demo(tmp_path, size="small", stop=stop)


def test_unknown_size_is_refused(tmp_path):
    with pytest.raises(ValueError, match="unknown demo size"):
        build_demo(tmp_path, size="huge")


def test_the_same_demo_runs_on_real_cifar10_when_available(tmp_path, monkeypatch):
    import os

    from ladd.sets import LabelAugmentedSet
    from ladd.store import Workspace

    shared = os.environ.get("LADD_SHARED_DATA")
    if not shared or not (Path(shared) / "cifar10-jpg.tar.xz").exists():
        pytest.skip("LADD_SHARED_DATA does not point at cifar10-jpg.tar.xz")
    arts = build_demo(tmp_path, source="cifar10", size="small", device="cpu")
    la = LabelAugmentedSet.load(arts.set_path)
    assert la.source == "cifar10" and la.class_names[0] == "airplane"
    run = Workspace(tmp_path).db.get_run(arts.ladd_run)
    assert run.status == "done" and run.config["source"] == "cifar10"
