"""Careless and hostile set files: non-finite values refused at load time by every reader and
for label-augmented files (issue 14 item 2), one-line messages for truncated, empty and
1-channel files (item 8)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from ladd.data import source_info
from ladd.sets import (
    DistilledFileError,
    LabelAugmentedFileError,
    LabelAugmentedSet,
    load_distilled,
    load_set,
)

SHAPES = source_info("shapes")
K = 10
SET_ERRORS = (DistilledFileError, LabelAugmentedFileError)


def labels() -> torch.Tensor:
    return torch.arange(K).repeat_interleave(2)


def images(size: int = 8) -> torch.Tensor:
    return torch.randn(2 * K, 3, size, size, generator=torch.Generator().manual_seed(0))


def poison(t: torch.Tensor, value: float) -> torch.Tensor:
    t = t.clone()
    t.view(-1)[t.numel() // 2] = value
    return t


# ------------------------------------------------------------------ distilled-set readers


def mtt(folder: Path, x, y, lr=None) -> Path:
    folder.mkdir()
    torch.save(x, folder / "images_best.pt")
    torch.save(y, folder / "labels_best.pt")
    if lr is not None:
        torch.save(lr, folder / "lr_best.pt")
    return folder


def ddranking(folder: Path, x, y=None, lr=None) -> Path:
    folder.mkdir()
    torch.save(x, folder / "images.pt")
    if y is not None:
        torch.save(y, folder / "labels.pt")
    if lr is not None:
        torch.save(lr, folder / "lr.pt")
    return folder


def dc(path: Path, x, y) -> Path:
    torch.save({"data": [[x, y]], "accs_all_exps": {}}, path)
    return path


def safetensors(path: Path, x, y) -> Path:
    save_file({"images": x.contiguous(), "labels": y}, str(path))
    return path


BAD_SETS = {
    "mtt images NaN": lambda d, v: mtt(d / "r", poison(images(), v), labels()),
    "datm logits": lambda d, v: mtt(d / "r", images(), poison(torch.randn(20, K), v)),
    "datm lr": lambda d, v: mtt(d / "r", images(), labels(), torch.tensor(v)),
    "ddranking images": lambda d, v: ddranking(d / "r", poison(images(), v)),
    "ddranking labels": lambda d, v: ddranking(d / "r", images(), poison(torch.randn(20, K), v)),
    "ddranking lr": lambda d, v: ddranking(d / "r", images(), None, torch.tensor(v)),
    "dc images": lambda d, v: dc(d / "res.pt", poison(images(), v), labels()),
    "tensor file": lambda d, v: (torch.save(poison(images(), v), d / "x.pt"), d / "x.pt")[1],
    "dict soft labels": lambda d, v: (
        torch.save({"images": images(), "soft_labels": poison(torch.rand(20, K), v)}, d / "x"),
        d / "x",
    )[1],
    "safetensors images": lambda d, v: safetensors(d / "x.st", poison(images(), v), labels()),
}


@pytest.mark.parametrize("value", [float("nan"), float("inf")])
@pytest.mark.parametrize("case", sorted(BAD_SETS))
def test_every_reader_refuses_non_finite_values(tmp_path, case, value):
    path = BAD_SETS[case](tmp_path, value)
    with pytest.raises(DistilledFileError, match=r"NaN|Inf|nan|inf") as caught:
        load_set(path, source="shapes")
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize("what", ["mean", "std"])
@pytest.mark.parametrize("value", [float("nan"), float("inf"), 0.0])
def test_given_statistics_must_be_finite_and_positive(tmp_path, what, value):
    run = mtt(tmp_path / "r", images(), labels())
    stats = {"mean": [0.5] * 3, "std": [0.25] * 3}
    stats[what] = [value, 0.5, 0.5]
    if what == "mean" and value == 0.0:
        assert load_distilled(run, num_classes=K, **stats).mean[0] == 0.0
        return
    with pytest.raises(DistilledFileError, match=what):
        load_distilled(run, num_classes=K, **stats)


def test_a_truncated_safetensors_file_says_truncated(tmp_path):
    path = safetensors(tmp_path / "set.safetensors", images(), labels())
    data = path.read_bytes()
    path.write_bytes(data[: len(data) - 100])
    with pytest.raises(DistilledFileError, match="truncated safetensors file"):
        load_set(path, source="shapes")
    path.write_bytes(data[:20])  # cut inside the header itself
    with pytest.raises(DistilledFileError, match="truncated safetensors file"):
        load_set(path, source="shapes")


def test_a_labeler_checkpoint_is_named_as_such(tmp_path):
    path = tmp_path / "epoch_010.safetensors"
    save_file({"w": torch.zeros(2)}, str(path), metadata={"ladd_labeler": "{}"})
    with pytest.raises(DistilledFileError, match="labeler checkpoint"):
        load_set(path)


# ------------------------------------------------------------------ label-augmented files


def la_file(path: Path, *, meta: dict | None = None, **tensors: torch.Tensor) -> Path:
    """A label-augmented file written directly (LabelAugmentedSet.save would refuse it)."""
    m = 20
    base = {
        "images": images(),
        "labels": labels(),
        "dense": torch.full((m, 4, K), 1.0 / K),
    }
    base.update(tensors)
    info = {
        "format": "ladd.label_augmented/1",
        "n": 2,
        "r": 0.75,
        "class_names": list(SHAPES.class_names),
        "mean": list(SHAPES.mean),
        "std": list(SHAPES.std),
        "source": "shapes",
        "zca": None,
        "lr": None,
    }
    info.update(meta or {})
    save_file(
        {k: v.contiguous() for k, v in base.items()},
        str(path),
        metadata={"ladd_set": json.dumps(info), "format": "ladd.label_augmented/1"},
    )
    return path


def test_a_sound_label_augmented_file_loads(tmp_path):
    la = load_set(la_file(tmp_path / "ok.ladd"))
    assert isinstance(la, LabelAugmentedSet) and len(la) == 20


LA_BAD = {
    "images NaN": ({"images": poison(images(), float("nan"))}, {}, "images contain NaN"),
    "dense Inf": (
        {"dense": poison(torch.full((20, 4, K), 0.1), float("inf"))},
        {},
        "dense labels contain NaN",
    ),
    "soft NaN": ({"soft_labels": poison(torch.rand(20, K), float("nan"))}, {}, "soft_labels"),
    "full_soft Inf": ({"full_soft": poison(torch.rand(20, K), float("inf"))}, {}, "full_soft"),
    "mean NaN": ({}, {"mean": [float("nan"), 0.1, 0.1]}, "mean is nan"),
    "std zero": ({}, {"std": [0.0, 0.1, 0.1]}, "must be positive"),
    "lr Inf": ({}, {"lr": float("inf")}, "lr is inf"),
    "no images": (
        {
            "images": torch.zeros(0, 3, 8, 8),
            "labels": torch.zeros(0, dtype=torch.long),
            "dense": torch.zeros(0, 4, K),
        },
        {},
        "holds no images",
    ),
    "one channel": ({"images": images()[:, :1]}, {"mean": [0.5], "std": [0.2]}, "1 channel"),
    "class_names a number": ({}, {"class_names": 7}, "class_names is not a list"),
    "n a string": ({}, {"n": "five"}, "n is not a number"),
    "zca from an old version": ({}, {"zca": {"source": "shapes", "eps": 0.1}}, "older LADD"),
}


@pytest.mark.parametrize("case", sorted(LA_BAD))
def test_bad_label_augmented_files_give_one_line(tmp_path, case):
    tensors, meta, match = LA_BAD[case]
    path = la_file(tmp_path / "bad.safetensors", meta=meta, **tensors)
    with pytest.raises(LabelAugmentedFileError, match=match) as caught:
        load_set(path)
    message = str(caught.value)
    assert message.startswith(f"{path}: ") and "\n" not in message
    with pytest.raises(LabelAugmentedFileError):
        LabelAugmentedSet.load(path)


def test_a_truncated_label_augmented_file_says_truncated(tmp_path):
    path = la_file(tmp_path / "set.ladd")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(LabelAugmentedFileError, match="truncated"):
        load_set(path)
    with pytest.raises(LabelAugmentedFileError, match="truncated"):
        LabelAugmentedSet.load(path)


def test_describe_only_leaves_a_zca_set_unfitted_and_untrainable(tmp_path):
    la = load_set(
        la_file(
            tmp_path / "z.ladd",
            meta={
                "zca": {"source": "nowhere", "eps": 0.1, "space": "pixels01"},
                "mean": [0.0] * 3,
                "std": [1.0] * 3,
            },
        ),
        describe_only=True,
    )
    assert la.zca is None and la.zca_source == "nowhere" and not la.trainable
    assert la.describe()["normalisation"]["zca"] is True
    assert not la.to_distilled().trainable
    with pytest.raises(LabelAugmentedFileError, match="ZCA could not be fitted on nowhere"):
        load_set(tmp_path / "z.ladd")
