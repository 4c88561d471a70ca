"""One loader for a set and its test split (ladd.sets.inputs), and the command line's shared
options (issue 24: the drifts; issue 25 items 1 and 4).

The ZCA-space fixture is a DATM run folder written as DATM writes it: ZCA space is [0, 1]
pixels (ToTensor, no Normalize: DATM utils/utils_baseline.py:106-108) whitened by a ZCA fitted
on train pixels (kornia's ZCAWhitening(eps=0.1), utils_baseline.py:243-245); the synthetic
images start as real whitened images and are saved with the learned logits and lr under
Normal/ (distill/DATM.py:402-404). The whitening here is fitted on 1,000 `shapes` train images
(the offline source), not on CIFAR-10: the point is what a reader sees, not kornia's maths
(tests/data/test_zca_kornia.py checks those).
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from ladd.cli import app
from ladd.data import class_balanced_indices, fit_zca, load_source
from ladd.deploy import paper_archs
from ladd.models import check_model_options, create_model, supported_options
from ladd.sets import DistilledFileError, load_set
from ladd.sets.inputs import (
    SetReading,
    UnwhitenedSetError,
    load_input_set,
    load_training_inputs,
)

pytestmark = pytest.mark.usefixtures("one_thread")
runner = CliRunner()
K, IPC = 10, 2


def invoke(*args: object):
    return runner.invoke(app, [str(a) for a in args], catch_exceptions=False)


@pytest.fixture(scope="module")
def datm_zca_run(tmp_path_factory) -> Path:
    """A DATM run folder in ZCA space (see the module docstring): Normal/images_best.pt,
    labels_best.pt (learned logits), lr_best.pt."""
    train = load_source("shapes", "train")
    pixels01 = train.images[:1000].float() / 255  # ToTensor(), no Normalize
    zca = fit_zca(pixels01, eps=0.1)
    picks = class_balanced_indices(train.labels, IPC, K, seed=0)
    image_syn = zca.apply(train.images[picks].float() / 255)  # real whitened images, class-major
    slots = torch.tensor(np.array([np.ones(IPC, dtype=np.int_) * i for i in range(K)])).view(-1)
    logits = 4 * torch.nn.functional.one_hot(slots, K).float()
    label_syn = copy.deepcopy(logits.detach()).requires_grad_(True)
    normal = tmp_path_factory.mktemp("datm") / "logged_files" / "run" / "Normal"
    normal.mkdir(parents=True)
    torch.save(image_syn.cpu(), normal / "images_best.pt")
    torch.save(label_syn.detach().cpu(), normal / "labels_best.pt")
    torch.save(torch.tensor(0.01), normal / "lr_best.pt")
    return normal


def test_the_fixture_is_read_as_datm_and_looks_whitened(datm_zca_run):
    ds = load_set(datm_zca_run, source="shapes")
    assert ds.format == "datm" and ds.zca is None
    assert any("look ZCA-whitened" in w for w in ds.warnings)


def test_a_zca_looking_set_is_refused_without_zca_and_read_with_the_override(datm_zca_run):
    with pytest.raises(UnwhitenedSetError, match="ZCA-whitened.*--zca.*--allow-unwhitened"):
        load_input_set(datm_zca_run, SetReading(source="shapes"))
    ds = load_input_set(datm_zca_run, SetReading(source="shapes", allow_unwhitened=True))
    assert any("look ZCA-whitened" in w for w in ds.warnings)
    # describing never refuses
    assert load_input_set(datm_zca_run, describe_only=True) is not None


def test_a_plain_set_loads_with_its_test_split_and_no_warning(tmp_path):
    from ladd.distill import RandomConfig
    from ladd.pipeline import run_distill
    from ladd.store import Workspace

    res = run_distill(Workspace(tmp_path / "ws"), "shapes", "random", RandomConfig(ipc=1))
    inputs = load_training_inputs(res.path, SetReading())
    assert inputs.source == "shapes" and inputs.warnings == ()
    assert inputs.test.images.shape[-1] == inputs.dataset.images.shape[-1]
    assert len(inputs.test) == 1000


def test_cli_train_refuses_a_zca_looking_set_and_trains_with_the_override(datm_zca_run, tmp_path):
    """Issue 25 item 1: a DATM set in ZCA space read without --zca."""
    common = ["--workspace", tmp_path / "ws", "--device", "cpu", "--source", "shapes"]
    train = ["train", datm_zca_run, "--mode", "baseline", "--epochs", "1", "--seeds", "1"]
    train += ["--width", "8", "--trainer", "reference", *common]
    res = invoke(*train)
    assert res.exit_code == 1
    (line,) = res.output.strip().splitlines()
    assert line.startswith("error: ") and "--zca" in line and "--allow-unwhitened" in line
    assert not (tmp_path / "ws" / "runs").exists() or not any((tmp_path / "ws" / "runs").iterdir())

    res = invoke(*train, "--no-zca-check", "--json")  # the alias spelling
    assert res.exit_code == 0, res.output
    assert "warning: " in res.stderr and "look ZCA-whitened" in res.stderr
    out = json.loads(res.stdout.strip().splitlines()[-1])
    run = json.loads(invoke("runs", "show", out["run_id"], "--workspace", tmp_path / "ws").stdout)
    assert any("ZCA-whitened" in w for w in run["config"]["set_warnings"])
    reading = run["config"]["reading"]  # how the set was read, to read it again (reports)
    assert reading["allow_unwhitened"] is True and reading["source"] == "shapes"
    assert SetReading(**reading) == SetReading(source="shapes", allow_unwhitened=True)


def test_cli_augment_refuses_a_zca_looking_set_too(datm_zca_run, tmp_path):
    res = invoke(
        "augment", datm_zca_run, "--labeler", tmp_path / "none.safetensors", "--source",
        "shapes", "--workspace", tmp_path / "ws",
    )  # fmt: skip
    assert res.exit_code == 1 and "--allow-unwhitened" in res.output


def test_info_shows_the_warning_without_refusing(datm_zca_run):
    res = invoke("info", datm_zca_run, "--source", "shapes")
    assert res.exit_code == 0, res.output
    assert "warning: " in res.stderr and "ZCA-whitened" in res.stderr


def test_info_reads_a_bare_tensor_with_num_classes(tmp_path):
    """Issue 25 item 4: docs/formats.md's `ladd info set.pt --mean .. --std ..`."""
    g = torch.Generator().manual_seed(0)
    path = tmp_path / "set.pt"
    torch.save(torch.rand(20, 3, 16, 16, generator=g), path)
    stats = ["--mean", "0.5,0.5,0.5", "--std", "0.25,0.25,0.25"]
    res = invoke("info", path, *stats)
    assert res.exit_code == 1 and "num_classes" in res.output
    res = invoke("info", path, *stats, "--num-classes", "10", "--json")
    assert res.exit_code == 0, res.output
    d = json.loads(res.stdout.strip().splitlines()[-1])
    assert d["num_classes"] == 10 and d["count"] == 20


def test_evaluate_takes_batch_size_and_no_dsa(tmp_path):
    """Issue 24: `ladd evaluate` lacked --batch-size and --no-dsa (copied option blocks)."""
    ws = tmp_path / "ws"
    res = invoke("random-real", "--source", "shapes", "--ipc", "1", "--out", tmp_path / "rr",
                 "--workspace", ws)  # fmt: skip
    assert res.exit_code == 0, res.output
    res = invoke(
        "evaluate", tmp_path / "rr", "--archs", "convnet_d1", "--mode", "baseline", "--epochs",
        "1", "--seeds", "1", "--width", "8", "--batch-size", "7", "--no-dsa", "--trainer",
        "reference", "--workspace", ws, "--device", "cpu", "--json",
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    run_id = json.loads(res.stdout.strip().splitlines()[-1])["run_id"]
    run = json.loads(invoke("runs", "show", run_id, "--workspace", ws).stdout)
    assert run["config"]["train"]["batch_size"] == 7 and run["config"]["train"]["dsa"] is False
    result = json.loads((ws / "runs" / str(run_id) / "result_convnet_d1.json").read_text())
    assert result["config"]["batch_size"] == 7 and result["config"]["dsa"] is False


def test_train_and_evaluate_share_one_option_block():
    """The training and set-reading flags come from one definition: both commands list them."""
    import click
    import typer.main

    cmd = typer.main.get_command(app)
    ctx = click.Context(cmd)

    def flags(name: str) -> set[str]:
        return {o for p in cmd.get_command(ctx, name).params for o in p.opts}

    shared = {"--mode", "--protocol", "--epochs", "--seeds", "--loss", "--full-labels", "--lr",
              "--batch-size", "--width", "--trainer", "--precision", "--no-dsa", "--source",
              "--zca", "--mean", "--std", "--format", "--experiment", "--num-classes",
              "--allow-unwhitened", "--no-zca-check", "--data-root"}  # fmt: skip
    assert shared <= flags("train") and shared <= flags("evaluate")
    reading = {"--source", "--zca", "--format", "--num-classes", "--allow-unwhitened"}
    for name in ("info", "augment", "stats"):
        assert reading <= flags(name), name


def test_width_on_an_architecture_without_one_is_a_clear_error(tmp_path):
    """Issue 24: `ladd train --arch alexnet --width 32` was a TypeError."""
    res = invoke("train", tmp_path / "any", "--arch", "alexnet", "--width", "32",
                 "--workspace", tmp_path / "ws")  # fmt: skip
    assert res.exit_code == 1
    (line,) = res.output.strip().splitlines()
    assert "alexnet" in line and "width" in line and "convnet" in line and "TypeError" not in line
    with pytest.raises(ValueError, match="'vgg11' has no option 'width'"):
        create_model("vgg11", 10, 32, width=32)
    with pytest.raises(
        ValueError, match="'vit': unknown ViT options.*width is an option of convnet"
    ):
        check_model_options("vit", {"width": 32})
    check_model_options("convnet_d3", {"width": 32})
    check_model_options("vit", {"dropout": 0.0})
    assert supported_options("alexnet", {"width": 8}) == {}
    assert supported_options("convnet_d5", {"width": 8}) == {"width": 8}


def test_paper_archs_are_the_five_of_table_2():
    assert paper_archs(32)[0] == "convnet_d3" and paper_archs(128)[0] == "convnet_d5"
    assert paper_archs(64)[1:] == ("alexnet", "vgg11", "resnet18", "vit")


def test_a_sweep_refuses_a_zca_looking_set_and_reports_a_plain_sets_warnings(
    datm_zca_run, tmp_path
):
    """The sweep's driver reads its sets as `ladd train` does (ladd.sets.inputs)."""
    import dataclasses

    from ladd.sets import random_real
    from ladd.store import Workspace
    from ladd.sweep import plan_sweep
    from ladd.sweep.spec import SweepSpec

    ws = Workspace(tmp_path / "ws")
    spec = SweepSpec(name="z", sets=(str(datm_zca_run),), source="shapes", modes=("baseline",))
    with pytest.raises(UnwhitenedSetError, match="--zca"):
        plan_sweep(spec, ws, device="cpu")
    ds = random_real("shapes", 2, seed=0)
    uneven = dataclasses.replace(ds, images=ds.images[:19], labels=ds.labels[:19])
    path = uneven.save_mtt(tmp_path / "uneven")
    spec = SweepSpec(name="u", sets=(str(path),), source="shapes", modes=("baseline",))
    plan = plan_sweep(spec, ws, device="cpu")
    assert any(w.startswith(f"{path}: ") and "uneven classes" in w for w in plan.warnings)


@pytest.fixture(scope="module")
def dm_result_file(tmp_path_factory) -> Path:
    """A DM result file (res_DM_<...>.pt): real shapes images normalised with the source's
    statistics, not in ZCA space (DM, DC and DSA never whiten)."""
    from ladd.sets import random_real

    ds = random_real("shapes", IPC, seed=0)
    path = tmp_path_factory.mktemp("dm") / "res_DM_SHAPES_ConvNet_2ipc.pt"
    torch.save({"data": [[ds.images, ds.labels]], "accs_all_exps": {"ConvNet": [0.2]}}, path)
    return path


def test_zca_on_a_set_that_is_not_in_zca_space_is_refused(dm_result_file, datm_zca_run):
    """Issue #38: `--zca` on a DM `res_*.pt` was accepted without a word: its images were
    used as they are while the test split was whitened (100 epochs: 18.9 % with --zca, 24.6 %
    without). Its images look plainly normalised, not whitened: refused in one line naming
    the file; described with a warning; the DATM set in ZCA space still loads with --zca."""
    reading = SetReading(source="shapes", zca=True)
    with pytest.raises(DistilledFileError, match="do not look ZCA-whitened.*Drop --zca") as err:
        load_input_set(dm_result_file, reading)
    assert str(dm_result_file) in str(err.value) and "\n" not in str(err.value)
    described = load_input_set(dm_result_file, reading, describe_only=True)
    assert any("do not look ZCA-whitened" in w for w in described.warnings)
    assert load_input_set(datm_zca_run, reading).zca is not None
    res = invoke(
        "train", dm_result_file, "--zca", "--source", "shapes", "--epochs", "1", "--seeds", "1",
        "--workspace", Path(dm_result_file).parent / "ws", "--device", "cpu",
    )  # fmt: skip
    assert res.exit_code == 1 and "do not look ZCA-whitened" in res.output
