"""ZCA space end to end (MTT/DATM sets on CIFAR live there): labeler, dense labels, deployment.

ZCA space is MTT's (mtt-distillation utils.py:58-59 and :147-149): [0, 1] pixels with no
Normalize, whitened by kornia's ZCAWhitening(eps=0.1) fitted on the whole train split; so a
ZCA-space set and a ZCA labeler both record mean 0 / std 1. tests/data/test_zca_kornia.py checks
the whitening itself against kornia on real CIFAR-10.
"""

from __future__ import annotations

import pytest
import torch
from plans import train_and_test

from ladd.data import load_source
from ladd.dense import augment
from ladd.deploy import eval_inputs
from ladd.labeler import LabelerConfig, load_labeler, train_labeler
from ladd.sets import LabelAugmentedSet, fit_zca_for, random_real
from ladd.training import TrainConfig


@pytest.fixture(scope="module")
def zca_labeler(tmp_path_factory):
    root = tmp_path_factory.mktemp("zca")
    cfg = LabelerConfig(
        arch="convnet_d3",
        epochs=2,
        save_at=(2,),
        limit_per_class=30,
        zca=True,
        model_options={"width": 8},
    )
    paths = train_labeler("shapes", cfg, root / "lab", device="cpu", cache_dir=root / "cache")
    return root, paths[-1]


def test_zca_labeler_labels_a_zca_set_and_refuses_a_plain_one(zca_labeler, tmp_path):
    root, ckpt = zca_labeler
    lab = load_labeler(ckpt)
    assert (
        lab.meta.zca_space and lab.meta.mean == (0.0, 0.0, 0.0) and lab.meta.std == (1.0, 1.0, 1.0)
    )
    zca = fit_zca_for("shapes", cache_dir=root / "cache")
    whitened = random_real("shapes", 2, seed=0, zca=zca)
    la = augment(whitened, lab, n=2, r=0.75, device="cpu", codec=None)
    assert la.dense.shape == (20, 4, 10)
    torch.testing.assert_close(la.dense.sum(-1), torch.ones(20, 4))
    la.save(tmp_path / "la.safetensors")
    back = LabelAugmentedSet.load(tmp_path / "la.safetensors", cache_dir=root / "cache")
    assert back.zca is not None
    with pytest.raises(ValueError, match="ZCA"):
        augment(random_real("shapes", 2, seed=0), lab, n=2, r=0.75, device="cpu", codec=None)


def test_the_test_split_is_whitened_like_the_set(zca_labeler):
    root, ckpt = zca_labeler
    zca = fit_zca_for("shapes", cache_dir=root / "cache")
    la = augment(random_real("shapes", 2, seed=0, zca=zca), load_labeler(ckpt), 2, 0.75, codec=None)
    test = load_source("shapes", "test", limit_per_class=5)
    x = eval_inputs(la, test, torch.device("cpu"))
    assert la.mean == (0.0, 0.0, 0.0) and la.std == (1.0, 1.0, 1.0)
    want = zca.apply(test.images.float() / 255)  # MTT: ToTensor() then the ZCA
    torch.testing.assert_close(x, want)
    cfg = TrainConfig(epochs=2, seeds=(0,), model_options={"width": 8}, mode="ladd")
    res = train_and_test(la, test, cfg)
    assert 0.0 <= res.accuracy_mean <= 1.0 and len(res.loss_curves[0]) == 3  # MTT: E + 1 passes


def test_cli_reads_a_foreign_zca_set_with_zca_flag(zca_labeler, tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from ladd.cli import app

    root, _ = zca_labeler
    monkeypatch.setenv("LADD_CACHE_DIR", str(root / "cache"))
    zca = fit_zca_for("shapes", cache_dir=root / "cache")
    ds = random_real("shapes", 1, seed=0, zca=zca)
    run = tmp_path / "mtt_run"  # what MTT writes: tensors only, no metadata
    run.mkdir()
    torch.save(ds.images.clone(), run / "images_best.pt")
    torch.save(ds.labels.clone(), run / "labels_best.pt")
    runner = CliRunner()
    res = runner.invoke(app, ["info", str(run), "--source", "shapes", "--zca"])
    assert res.exit_code == 0, res.output
    assert any(line.split()[:2] == ["zca", "True"] for line in res.output.splitlines())
    res = runner.invoke(app, ["info", str(run), "--zca"])
    assert res.exit_code == 1 and "--zca needs --source" in res.output
