"""ladd.pipeline: one recorded step, whoever runs it.

The command line, a dashboard background task and the demo all record a step through the same
function, so the same kind of run lands in the runs database with the same config and metrics
schema (they had drifted: checkpoints as dicts vs path strings, `random_real_...` vs
`random_...` folders). Every file the pipeline writes gets the umask's mode.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ladd.cli import app
from ladd.pipeline import slug
from ladd.store import Workspace
from ladd.summaries import RunSummary, summarise

pytestmark = pytest.mark.usefixtures("one_thread")


def _schema(value):
    """The shape of a JSON value: dict keys and the types of leaves, list items by their first."""
    if isinstance(value, dict):
        return {k: _schema(v) for k, v in sorted(value.items()) if k != "run_id"}
    if isinstance(value, list):
        return [_schema(value[0])] if value else []
    if isinstance(value, bool) or value is None:
        return type(value).__name__
    if isinstance(value, (int, float)):
        return "number"
    return type(value).__name__


def _cli(ws: Path, *args: str) -> None:
    res = CliRunner().invoke(app, [*map(str, args), "--workspace", str(ws)], catch_exceptions=False)
    assert res.exit_code == 0, res.output


def _wait(job) -> None:
    from app.jobs import registry

    done = registry().wait(job.id, timeout=600)
    assert done is not None and done.status == "done", (done.status, done.error)


def test_slug_makes_one_file_name_from_any_source_name():
    assert slug("imagefolder:/data/my set") == "imagefolder_data_my_set"
    assert slug("cifar10") == "cifar10"
    assert slug("::") == "unnamed"


@pytest.mark.slow
def test_cli_dashboard_task_and_demo_record_the_same_schema(tmp_path, monkeypatch, small_demo):
    pytest.importorskip("streamlit")
    from app import tasks
    from ladd.training import TrainConfig

    monkeypatch.delenv("LADD_CACHE_DIR", raising=False)
    demo_ws, cli_ws, app_ws = small_demo.root, tmp_path / "cli", tmp_path / "app"
    arts = small_demo.arts  # the one small demo of this test run (tests/conftest.py)
    lab_args = ("--epochs", "1", "--save-at", "1", "--limit-per-class", "10", "--width", "8")
    _cli(cli_ws, "train-labeler", "--source", "shapes", *lab_args, "--device", "cpu")
    _cli(cli_ws, "random-real", "--source", "shapes", "--ipc", "1")
    _wait(tasks.submit_labeler(str(app_ws), "shapes", 1, 1, 8, 10))
    _wait(tasks.submit_random_real(str(app_ws), "shapes", 1, 0))

    cli_set = next((cli_ws / "sets").iterdir())
    app_set = next((app_ws / "sets").iterdir())
    assert cli_set.name == app_set.name == "random_real_shapes_ipc1_seed0"  # one naming rule
    train = ("--mode", "baseline", "--epochs", "1", "--seeds", "1", "--width", "8")
    _cli(cli_ws, "train", cli_set, "--source", "shapes", *train, "--device", "cpu")
    cfg = TrainConfig(mode="baseline", epochs=1, seeds=(0,), model_options={"width": 8})
    planned = tasks.plan_training_job(str(app_ws), str(app_set), cfg, device="cpu")
    _wait(tasks.submit_training(planned, "from the dashboard"))

    def runs(root: Path, kind: str):
        found = [r for r in Workspace(root).db.list_runs(kind) if r.status == "done"]
        assert found, (root, kind)
        return found[0]

    for kind in ("labeler", "distill", "train"):
        recs = [runs(root, kind) for root in (demo_ws, cli_ws, app_ws)]
        schemas = [_schema(r.metrics) for r in recs]
        assert schemas[0] == schemas[1] == schemas[2], kind
        keys = [set(r.config) - {"demo", "label"} for r in recs]
        assert keys[0] == keys[1] == keys[2], kind
    # Labeler checkpoints are records (epoch, accuracy, path, ...), never bare path strings.
    ckpts = runs(cli_ws, "labeler").metrics["checkpoints"]
    assert isinstance(ckpts[0], dict) and Path(ckpts[0]["path"]).is_file()
    demo_train = summarise(Workspace(demo_ws).db.get_run(arts.ladd_run))
    assert isinstance(demo_train, RunSummary) and demo_train.mode == "ladd"
    assert demo_train.train.model_options == {"width": 8} and demo_train.model_files


@pytest.mark.parametrize("mask", [0o002, 0o022])
def test_every_file_the_pipeline_writes_has_the_umask_mode(tmp_path, monkeypatch, mask):
    from ladd.data import load_source
    from ladd.distill import RandomConfig
    from ladd.labeler import LabelerConfig
    from ladd.pipeline import run_distill, run_label_augment, run_labeler, run_train
    from ladd.plan import plan_training
    from ladd.training import TrainConfig

    monkeypatch.delenv("LADD_CACHE_DIR", raising=False)
    old = os.umask(mask)
    try:
        ws = Workspace(tmp_path / "ws")
        lab = run_labeler(
            ws,
            "shapes",
            LabelerConfig(epochs=1, save_at=(1,), limit_per_class=5, model_options={"width": 4}),
            device="cpu",
        )
        ds = run_distill(ws, "shapes", "random", RandomConfig(ipc=1))
        la = run_label_augment(ws, ds.dataset, lab.checkpoints[0].path, n=2, device="cpu")
        test = load_source("shapes", "test", limit_per_class=2, cache_dir=ws.cache_dir)
        cfg = TrainConfig(mode="ladd", epochs=1, seeds=(0,), model_options={"width": 4})
        run_train(ws, plan_training(la.dataset, cfg, "cpu"), la.dataset, test)
        ws.db.export_csv(tmp_path / "ws" / "runs.csv")
    finally:
        os.umask(old)
    want = 0o666 & ~mask
    files = [p for p in (tmp_path / "ws").rglob("*") if p.is_file()]
    skip = {"runs.sqlite", "runs.sqlite-wal", "runs.sqlite-shm"}  # SQLite creates its own
    checked = [p for p in files if p.name not in skip]
    assert len(checked) > 10
    wrong = {str(p.relative_to(tmp_path)): oct(stat.S_IMODE(p.stat().st_mode)) for p in checked}
    wrong = {k: v for k, v in wrong.items() if v != oct(want)}
    assert not wrong, wrong


def test_steps_never_overwrite_an_input_or_an_existing_artifact_without_force(tmp_path):
    from ladd.distill import RandomConfig
    from ladd.labeler import LabelerConfig
    from ladd.pipeline import run_distill, run_label_augment, run_labeler

    ws = Workspace(tmp_path / "ws")
    cfg = LabelerConfig(epochs=1, save_at=(1,), limit_per_class=5, model_options={"width": 4})
    lab = run_labeler(ws, "shapes", cfg, device="cpu")
    ckpt = Path(lab.checkpoints[0].path)
    ds = run_distill(ws, "shapes", "random", RandomConfig(ipc=1))
    with pytest.raises(FileExistsError, match="--force"):
        run_distill(ws, "shapes", "random", RandomConfig(ipc=1))
    before = ckpt.read_bytes()
    with pytest.raises(FileExistsError, match="input of this step"):
        run_label_augment(ws, ds.dataset, ckpt, n=2, out=ckpt, device="cpu")
    with pytest.raises(FileExistsError, match="input of this step"):
        run_label_augment(ws, ds.dataset, ckpt, n=2, distilled_path=ds.path, out=ds.path)
    assert ckpt.read_bytes() == before
    out = tmp_path / "la.safetensors"
    run_label_augment(ws, ds.dataset, ckpt, n=2, out=out, device="cpu")
    with pytest.raises(FileExistsError, match="--force"):
        run_label_augment(ws, ds.dataset, ckpt, n=2, out=out, device="cpu")
    run_label_augment(ws, ds.dataset, ckpt, n=3, out=out, device="cpu", force=True)
    failed = [r for r in ws.db.list_runs() if r.status == "failed"]
    assert not failed  # refusals happen before a run is opened: no failed rows left behind


def test_a_run_whose_loss_becomes_nan_is_recorded_failed_with_the_epoch(tmp_path):
    from ladd.data import load_source
    from ladd.pipeline import run_train
    from ladd.plan import plan_training
    from ladd.sets import random_real
    from ladd.training import NonFiniteLoss, TrainConfig

    ws = Workspace(tmp_path / "ws")
    ds = random_real("shapes", 2, seed=0, limit_per_class=5)
    test = load_source("shapes", "test", limit_per_class=2)
    cfg = TrainConfig(mode="baseline", epochs=3, seeds=(0,), lr=1e30, model_options={"width": 4})
    with pytest.raises(NonFiniteLoss, match=r"seed 0 became (nan|inf) in epoch \d"):
        run_train(ws, plan_training(ds, cfg, "cpu"), ds, test)
    (rec,) = ws.db.list_runs("train")
    assert rec.status == "failed" and "NonFiniteLoss" in rec.error and "epoch" in rec.error
    assert not [k for k in rec.artifacts if k.startswith("model_seed")]  # no NaN weights saved


# -- what a train run records ------------------------------------------------------------------


@pytest.fixture(scope="module")
def labelled_file(tmp_path_factory):
    """A label-augmented file made with non-default choices: N 3, R 0.5, the top-2 uint8 codec,
    on 16 px `shapes` images (20 images, 10 classes)."""
    from ladd.dense import augment
    from ladd.sets import random_real
    from tests.test_dense import make_labeler

    ds = random_real("shapes", 2, seed=0, limit_per_class=4, image_size=16)
    la = augment(ds, make_labeler(ds), 3, 0.5, device="cpu", codec="topk:2,uint8")
    return la.save(tmp_path_factory.mktemp("recorded") / "la_n3_r0.5.safetensors")


def _recorded(ws: Path, run_id: int) -> tuple[dict, dict]:
    import json

    folder = ws / "runs" / str(run_id)
    config = json.loads((folder / "config.json").read_text())["config"]
    return config, json.loads((folder / "result.json").read_text())


def _check_used(config: dict, result: dict, file: Path) -> None:
    """What every train run's record of `file` must say: the file's grid and codec, the set's
    facts as the plan read them, the model the run saved, the samples it trained on."""
    from ladd.models import create_from_spec
    from ladd.plan import set_digest
    from ladd.sets import load_set

    train, plan = config["train"], config["plan"]
    assert (train["n"], train["r"]) == (3, 0.5)  # the file's grid, not the defaults 5 / 0.625
    facts = plan["set"]
    assert (facts["n"], facts["r"], facts["codec"]) == (3, 0.5, "topk:2,uint8,uniform")
    assert facts["label_augmented"] and (facts["images"], facts["num_classes"]) == (20, 10)
    assert (facts["image_size"], facts["channels"]) == (16, 3)
    assert facts["digest"] == set_digest(load_set(file))
    assert result["num_samples"] == 20 * (1 + 3 * 3)  # trained on the 3 x 3 crops
    assert result["config"] == train and result["plan"] == plan and result["lr"] == train["lr"]
    assert plan["model"]["name"] == train["arch"] and plan["model"]["options"] == {"width": 8}
    assert plan["model"]["num_classes"] == 10 and plan["model"]["image_size"] == 16
    create_from_spec(plan["model"])  # the recorded spec builds the model that was trained


def test_a_train_run_records_what_it_used_from_the_command_line(tmp_path, labelled_file):
    """`ladd train` on a file of N 3, R 0.5 in the top-2 codec under the rded protocol: the
    record (runs/<id>/config.json) holds the file's grid (the command line's N/R defaults are
    never recorded), RDED's AdamW rate from the registry and its augmentation, no SGD fields
    (momentum, weight decay) and no DSA strategy, and the plan's facts of the set."""
    import json

    from ladd.models import adamw_lr
    from ladd.store import load_model

    ws = tmp_path / "ws"
    args = [
        "train", str(labelled_file), "--source", "shapes", "--protocol", "rded",
        "--epochs", "1", "--seeds", "1", "--width", "8", "--device", "cpu", "--json",
    ]  # fmt: skip
    res = CliRunner().invoke(app, [*args, "--workspace", str(ws)], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    run_id = json.loads(res.stdout.strip().splitlines()[-1])["run_id"]
    config, result = _recorded(ws, run_id)
    train = config["train"]
    assert (train["protocol"], train["mode"], train["epochs"], train["seeds"]) == (
        "rded", "ladd", 1, [0],
    )  # fmt: skip
    assert train["lr"] == adamw_lr("convnet_d3") and train["optimizer"].startswith("adamw")
    assert train["augmentation"] == "rded" and train["precision"] == "fp32"
    assert not {"momentum", "weight_decay", "dsa_strategy"} & set(train)
    assert config["plan"]["engine"] == "sequential"  # the fast trainer on a CPU
    assert config["set"] == str(labelled_file) and config["source"] == "shapes"
    _check_used(config, result, labelled_file)
    rec = Workspace(ws).db.get_run(run_id)
    assert rec.status == "done" and rec.metrics["lr"] == train["lr"]
    model = load_model(rec.artifacts["model_seed0"])
    assert model.spec.to_dict() == config["plan"]["model"]


def test_a_train_run_records_what_it_used_from_the_dashboard(tmp_path, labelled_file):
    """The dashboard's click on the same file under glad: the plan made at the click is what
    the job records, field for field (SGD with its momentum and weight decay, DSA, the
    architecture's rate: GLaD gives every model its own)."""
    pytest.importorskip("streamlit")
    from app import tasks
    from app.jobs import registry
    from ladd.models import default_lr
    from ladd.training import TrainConfig

    ws = tmp_path / "ws"
    cfg = TrainConfig(
        mode="ladd", protocol="glad", epochs=1, seeds=(0,), model_options={"width": 8}
    )
    planned = tasks.plan_training_job(str(ws), str(labelled_file), cfg, device="cpu")
    done = registry().wait(tasks.submit_training(planned, "recorded").id, timeout=600)
    assert done.status == "done", done.error
    (run,) = Workspace(ws).db.list_runs("train")
    config, result = _recorded(ws, run.id)
    assert config["train"] == planned.plan.train_record()
    assert config["plan"] == planned.plan.record()
    train = config["train"]
    assert train["protocol"] == "glad" and train["lr"] == default_lr("convnet_d3", 16)
    assert (train["momentum"], train["weight_decay"]) == (cfg.momentum, cfg.weight_decay)
    assert train["dsa_strategy"] == cfg.dsa_strategy and train["augmentation"] == "dsa"
    assert config["label"] == "recorded"
    _check_used(config, result, labelled_file)
