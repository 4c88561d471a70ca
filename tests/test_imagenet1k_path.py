"""The ImageNet-1K path end to end on the command line, at a reduced size (issue 27's CPU test):
a synthetic ImageNet folder of 1000 classes (two tiny images a class for train, one for val),
a labeler trained by streaming it, an RDED-written distilled folder (IPC 1, 16 px), top-k dense
labels, a short torchvision ResNet-18 training under the rded protocol, and its evaluation on
the val split. Numbers are checked where they mean something here (shapes, classes, bytes, the
recorded protocol); accuracy on noise images is chance and only bounded."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from ladd.cli import app

sys.path.insert(0, str(Path(__file__).resolve().parent))
from synthetic_imagenet import write_imagenet, write_rded_folder  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_thread")


def _ok(runner: CliRunner, *args: object) -> str:
    res = runner.invoke(app, [str(a) for a in args], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    return res.output


def test_imagenet1k_labeler_rded_set_topk_labels_resnet18_rded_protocol(tmp_path, monkeypatch):
    from ladd.codecs import DEFAULT_CODEC, parse_codec
    from ladd.labeler import list_checkpoints, read_meta
    from ladd.sets import LabelAugmentedSet, load_distilled
    from ladd.sets.augmented import file_codec
    from ladd.store import Workspace
    from ladd.training import build_training_data

    root = write_imagenet(tmp_path / "imagenet")
    rded = write_rded_folder(tmp_path / "rded", classes=1000, ipc=1, size=16)
    monkeypatch.setenv("LADD_DATA_ROOT", str(root))
    monkeypatch.setenv("LADD_CACHE_DIR", str(tmp_path / "cache"))
    ws = tmp_path / "ws"
    common = ["--workspace", ws, "--device", "cpu"]
    runner = CliRunner()

    # the labeler, streamed (the listing walked once, images decoded per batch)
    _ok(
        runner, "train-labeler", "--source", "imagenet1k", "--image-size", "16", "--epochs", "1",
        "--save-at", "1", "--arch", "convnet_d3", "--width", "8", "--workers", "0", *common,
    )  # fmt: skip
    (lab_dir,) = (ws / "labelers").iterdir()
    (ckpt,) = list_checkpoints(lab_dir)
    meta = read_meta(ckpt)
    assert (meta.source, meta.num_classes, meta.image_size) == ("imagenet1k", 1000, 16)
    assert 0.0 <= meta.test_accuracy <= 0.02  # noise images: chance is 0.1 %

    # the RDED folder is read as RDED's, with ImageNet statistics and the source's 1000 classes
    ds = load_distilled(rded, source="imagenet1k")
    assert ds.images.shape == (1000, 3, 16, 16) and ds.num_classes == 1000
    assert ds.mean == (0.485, 0.456, 0.406)

    # top-k dense labels (the default codec, top-5 uint8): 4 crops x 5 x (2-byte index + 1-byte
    # value) = 60 label bytes an image instead of 4 x 1000 x 4 = 16,000
    la = tmp_path / "la.safetensors"
    out = _ok(
        runner, "augment", rded, "--labeler", ckpt, "--source", "imagenet1k", "--n", "2",
        "--out", la, *common,
    )  # fmt: skip
    assert file_codec(la) == parse_codec(DEFAULT_CODEC).spec
    assert "(60 bytes per image)" in out
    # uint8 pixels and < 200 B of labels an image: no float [M, K] rows anywhere in the file
    assert la.stat().st_size < 1000 * (16 * 16 * 3 + 200)
    labelled = LabelAugmentedSet.load(la)
    data = build_training_data(labelled, "ladd", n=2, r=0.625)
    assert len(data) == 1000 * (1 + 4) and data.num_classes == 1000
    assert type(data.targets).__name__ == "EncodedTargets"  # rows decoded per batch

    # torchvision's ResNet-18 under the rded protocol, tested on the val split
    out = _ok(
        runner, "train", la, "--source", "imagenet1k", "--arch", "tv_resnet18",
        "--protocol", "rded", "--epochs", "1", "--batch-size", "100", "--seeds", "1",
        "--json", *common,
    )  # fmt: skip
    result = json.loads(out[out.index("{") :])
    assert result["protocol"] == "rded" and result["arch"] == "tv_resnet18"
    assert result["lr"] == 0.001  # RDED's AdamW rate for resnet18
    assert len(result["per_class"]) == 1000 and 0.0 <= result["accuracy_mean"] <= 0.02
    (run,) = [r for r in Workspace(ws).db.list_runs("train") if r.status == "done"]
    assert run.config["train"]["protocol"] == "rded"
    assert run.config["train"]["trainer"] in ("fast", "reference")


def test_sre2l_style_folders_of_1000_classes_read_in_class_order(tmp_path, monkeypatch):
    """SRe2L's recovered images, and CDA's and LPLD's, which keep its layout
    (new<class:03d>/class<class:03d>_id<i:03d>.jpg, VILA-Lab/SRe2L SRe2L/recover/data_synthesis.py): at
    1000 classes the folders' order is the class index, the classes are the source's wnids and
    the normalisation ImageNet's."""
    from PIL import Image

    from ladd.sets import load_distilled

    root = write_imagenet(tmp_path / "imagenet", per_split={"train": 1, "val": 1})
    monkeypatch.setenv("LADD_DATA_ROOT", str(root))
    monkeypatch.setenv("LADD_CACHE_DIR", str(tmp_path / "cache"))
    sre2l = tmp_path / "sre2l"
    for c in range(1000):
        folder = sre2l / f"new{c:03d}"
        folder.mkdir(parents=True)
        pixels = torch.full((16, 16, 3), c % 256, dtype=torch.uint8)
        Image.fromarray(pixels.numpy()).save(folder / f"class{c:03d}_id000.jpg")
    ds = load_distilled(sre2l, source="imagenet1k")
    assert ds.images.shape == (1000, 3, 16, 16)
    assert ds.labels.tolist() == list(range(1000))
    assert ds.class_names[:2] == ("n00000000", "n00000001") and len(ds.class_names) == 1000
    assert ds.mean == (0.485, 0.456, 0.406) and ds.std == (0.229, 0.224, 0.225)
    # the command line names the ImageNet folder with --data-root as well as LADD_DATA_ROOT
    monkeypatch.delenv("LADD_DATA_ROOT")
    out = _ok(CliRunner(), "info", sre2l, "--source", "imagenet1k", "--data-root", root, "--json")
    info = json.loads(out[out.index("{") :])
    assert info["count"] == 1000 and info["classes"][:1] == ["n00000000"]
