"""ladd.labeler.import_labeler and `ladd import-labeler`: a user's own trained torchvision
network as the labeler (issue 27: "or a user's own checkpoint of a torchvision model (a local
file, weights_only), so a user with a trained network does not retrain")."""

from __future__ import annotations

import math

import pytest
import torch
from typer.testing import CliRunner

from ladd.cli import app
from ladd.data import source_info
from ladd.dense import generate_dense_labels
from ladd.labeler import import_labeler, load_labeler, read_meta
from ladd.models import create_model
from ladd.subsample import sub_sample


def _their_checkpoint(path, classes: int, size: int = 32) -> torch.nn.Module:
    """What a torchvision training script saves: {"model": DDP's state_dict, "epoch": ...}."""
    model = create_model("tv_resnet18", classes, size, seed=3).eval()
    sd = {f"module.{k}": v for k, v in model.state_dict().items()}
    torch.save({"model": sd, "epoch": torch.tensor(89)}, path)
    return model


def test_an_imported_network_labels_exactly_as_it_computes(tmp_path):
    info = source_info("shapes", 32)
    theirs = _their_checkpoint(tmp_path / "r18.pth", info.num_classes)
    path = import_labeler("tv_resnet18", tmp_path / "r18.pth", info, tmp_path / "lab.safetensors")
    meta = read_meta(path)
    assert (meta.arch, meta.source, meta.epoch, meta.image_size) == ("tv_resnet18", "shapes", 0, 32)
    assert meta.class_names == tuple(info.class_names) and meta.mean == tuple(info.mean)
    assert math.isnan(meta.test_accuracy)  # not measured: it was not trained here
    lab = load_labeler(path)
    x = torch.randn(3, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        torch.testing.assert_close(lab.model(x), theirs(x), rtol=0, atol=0)
        dense = generate_dense_labels(x, lab.model, 3, 0.625)
        crops = sub_sample(x, 3, 0.625).flatten(0, 1)
        want = torch.softmax(theirs(crops), dim=1).view(3, 9, -1)
    assert dense.shape == (3, 9, info.num_classes)
    torch.testing.assert_close(dense.float(), want, rtol=1e-5, atol=1e-6)


def test_a_checkpoint_of_other_classes_is_refused_in_one_line(tmp_path):
    info = source_info("shapes", 32)
    _their_checkpoint(tmp_path / "r18.pth", info.num_classes + 1)
    with pytest.raises(ValueError, match="classifier \\(fc\\) has"):
        import_labeler("tv_resnet18", tmp_path / "r18.pth", info, tmp_path / "lab.safetensors")
    assert not (tmp_path / "lab.safetensors").exists()


def test_the_command_writes_a_labeler_and_refuses_clearly(tmp_path):
    runner = CliRunner()
    info = source_info("shapes", 32)
    _their_checkpoint(tmp_path / "r18.pth", info.num_classes)
    out = tmp_path / "lab.safetensors"
    args = ["import-labeler", str(tmp_path / "r18.pth"), "--arch", "tv_resnet18"]
    args += ["--source", "shapes", "--out", str(out), "--workspace", str(tmp_path / "ws")]
    res = runner.invoke(app, args, catch_exceptions=False)
    assert res.exit_code == 0, res.output
    assert "ladd augment SET --labeler" in res.output and read_meta(out).arch == "tv_resnet18"
    bad = runner.invoke(
        app, [*args[:3], "resnet18", *args[4:]], catch_exceptions=False
    )  # the field's ResNet-18 is not torchvision's
    assert bad.exit_code != 0 and "is not a torchvision model" in bad.output
    missing = runner.invoke(app, ["import-labeler", str(tmp_path / "nope.pth"), *args[2:]])
    assert missing.exit_code != 0 and "no such file" in missing.output
