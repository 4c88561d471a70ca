"""Training the labeler: it learns, checkpoints describe themselves, resuming is exact."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from ladd.data import load_source
from ladd.labeler import (
    LabelerConfig,
    list_checkpoints,
    load_labeler,
    random_flip_crop,
    read_meta,
    train_labeler,
)

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def shapes_small():
    train = load_source("shapes", "train", limit_per_class=200)
    test = load_source("shapes", "test", limit_per_class=50)
    return train, test


def test_labeler_learns_shapes_well_above_chance(shapes_small, tmp_path: Path) -> None:
    train, test = shapes_small
    cfg = LabelerConfig(
        epochs=6,
        save_at=(3, 6),
        batch_size=32,
        lr=0.02,
        image_augmentation="none",
        model_options={"width": 16},
    )
    events = []
    paths = train_labeler(train, cfg, tmp_path, test_set=test, device="cpu", progress=events.append)
    assert [p.name for p in paths] == ["epoch_003.safetensors", "epoch_006.safetensors"]
    assert list_checkpoints(tmp_path) == paths
    final = read_meta(paths[-1])
    print(f"labeler test accuracy on shapes: {[read_meta(p).test_accuracy for p in paths]}")
    assert final.test_accuracy > 0.25  # chance is 0.10; measured ~0.49
    assert final.arch == "convnet_d3" and final.epoch == 6 and final.source == "shapes"
    assert final.class_names == tuple(train.info.class_names)
    assert final.mean == tuple(train.info.mean) and final.image_size == 32
    assert final.train_flops > 0 and final.config["epochs"] == 6
    assert any(e.note and "epoch_006.safetensors" in e.message for e in events)
    lab = load_labeler(tmp_path)  # a folder: epoch 10 absent, the first checkpoint
    assert lab.meta.epoch == 3 and not lab.model.training


def test_resume_continues_exactly(shapes_small, tmp_path: Path) -> None:
    train, test = shapes_small
    tiny = train.subset(torch.arange(0, len(train), 20))  # 100 images
    base = dict(batch_size=32, model_options={"width": 4}, save_at=(1, 2))
    full = train_labeler(
        tiny, LabelerConfig(epochs=2, **base), tmp_path / "a", test_set=test, device="cpu"
    )
    # "Crash" after epoch 1, then resume to epoch 2 in the same folder.
    train_labeler(
        tiny, LabelerConfig(epochs=1, **base), tmp_path / "b", test_set=test, device="cpu"
    )
    events = []
    resumed = train_labeler(
        tiny,
        LabelerConfig(epochs=2, **base),
        tmp_path / "b",
        test_set=test,
        device="cpu",
        progress=events.append,
    )
    assert "resumed" in events[0].message
    a, b = load_labeler(full[-1]), load_labeler(resumed[-1])
    for (ka, va), (_, vb) in zip(
        a.model.state_dict().items(), b.model.state_dict().items(), strict=True
    ):
        assert torch.equal(va, vb), ka  # bit for bit: README and reliability.md say "exactly"
    assert a.meta.test_accuracy == b.meta.test_accuracy


def test_global_rng_untouched(shapes_small, tmp_path: Path) -> None:
    train, test = shapes_small
    tiny = train.subset(torch.arange(0, len(train), 50))
    state = torch.random.get_rng_state()
    train_labeler(
        tiny,
        LabelerConfig(epochs=1, save_at=(1,), model_options={"width": 4}),
        tmp_path,
        test_set=test,
        device="cpu",
    )
    assert torch.equal(state, torch.random.get_rng_state())


def test_flip_crop_is_seeded_and_shape_preserving() -> None:
    x = torch.randn(6, 3, 16, 16)
    a = random_flip_crop(x, torch.Generator().manual_seed(1))
    b = random_flip_crop(x, torch.Generator().manual_seed(1))
    assert a.shape == x.shape and torch.equal(a, b)
    torch.testing.assert_close(
        random_flip_crop(x, torch.Generator(), pad=0).abs().sum(), x.abs().sum()
    )


def test_bad_checkpoint_gives_clear_error(tmp_path: Path) -> None:
    p = tmp_path / "x.safetensors"
    save_file({"w": torch.zeros(2)}, str(p))
    with pytest.raises(ValueError, match="not a LADD labeler"):
        load_labeler(p)
    (tmp_path / "junk.safetensors").write_bytes(b"junk")
    with pytest.raises(ValueError, match="not a readable"):
        load_labeler(tmp_path / "junk.safetensors")
    with pytest.raises(FileNotFoundError):
        load_labeler(tmp_path / "missing.safetensors")


def test_config_validation() -> None:
    with pytest.raises(ValueError):
        LabelerConfig(epochs=0)
    assert LabelerConfig(epochs=25).checkpoint_epochs() == (10, 20)
    assert LabelerConfig(epochs=5).checkpoint_epochs() == (5,)


def test_default_labeler_is_mtt_buffer_training_and_its_checkpoint_says_so(
    shapes_small, tmp_path: Path
) -> None:
    """MTT buffer.py (GeorgeCazenavette/mtt-distillation, lines 72-73 and 117-130): SGD with
    lr_teacher 0.01, momentum `--mom` 0, weight decay `--l2` 0, batch_train 256, DSA on every
    training batch (utils.py `epoch(aug=True)`), no lr decay (`--decay` off)."""
    cfg = LabelerConfig()
    assert (cfg.lr, cfg.momentum, cfg.weight_decay, cfg.batch_size) == (0.01, 0.0, 0.0, 256)
    assert (
        cfg.image_augmentation == "dsa" and cfg.epochs == 50 and cfg.save_at == (10, 20, 30, 40, 50)
    )
    assert cfg.recipe_name == "mtt"
    strong = LabelerConfig.recipe("strong")
    assert (strong.momentum, strong.weight_decay, strong.image_augmentation) == (
        0.9,
        5e-4,
        "flip_crop",
    )
    assert strong.recipe_name == "strong"
    assert LabelerConfig(momentum=0.5).recipe_name == "custom"
    with pytest.warns(DeprecationWarning, match="image_augmentation"):  # first-wave checkpoints
        assert LabelerConfig.from_dict({"augment": True}).image_augmentation == "flip_crop"
    train, test = shapes_small
    tiny = train.subset(torch.arange(0, len(train), 40))
    small = LabelerConfig(epochs=1, save_at=(1,), batch_size=16, model_options={"width": 4})
    (path,) = train_labeler(tiny, small, tmp_path, test_set=test, device="cpu")
    saved = read_meta(path).config
    assert (saved["momentum"], saved["weight_decay"], saved["image_augmentation"]) == (
        0.0,
        0.0,
        "dsa",
    )
    with pytest.raises(ValueError, match="unknown labeler recipe"):
        LabelerConfig.recipe("fancy")


def test_a_folder_of_another_trainings_checkpoints_is_refused_not_resumed(
    shapes_small, tmp_path: Path
) -> None:
    train, test = shapes_small
    tiny = train.subset(torch.arange(0, len(train), 40))
    cfg = LabelerConfig(epochs=1, save_at=(1,), batch_size=16, model_options={"width": 4})
    train_labeler(tiny, cfg, tmp_path, test_set=test, device="cpu")
    before = (tmp_path / "epoch_001.safetensors").read_bytes()
    other = LabelerConfig(
        epochs=1, save_at=(1,), batch_size=16, lr=0.02, model_options={"width": 4}
    )
    with pytest.raises(ValueError, match=r"another training \(lr 0.01 vs 0.02\)"):
        train_labeler(tiny, other, tmp_path, test_set=test, device="cpu")
    cifar_like = load_source("shapes", "train", limit_per_class=5, image_size=16)
    with pytest.raises(ValueError, match="another training"):
        train_labeler(cifar_like, cfg, tmp_path, test_set=test, device="cpu")
    assert (tmp_path / "epoch_001.safetensors").read_bytes() == before  # nothing overwritten


def test_image_augmentation_keeps_reading_its_old_name_augment_with_a_warning() -> None:
    """The field was `augment`: older checkpoints' metadata is still read, with a
    DeprecationWarning naming the new field; the keyword itself is gone from the class."""
    old_meta = {**LabelerConfig().to_dict(), "augment": "flip_crop"}
    old_meta.pop("image_augmentation")
    with pytest.warns(DeprecationWarning, match="image_augmentation"):
        cfg = LabelerConfig.from_dict(old_meta)
    assert cfg.image_augmentation == "flip_crop" and cfg.recipe_name == "custom"
    assert cfg.resume_key() == LabelerConfig(image_augmentation="flip_crop").resume_key()
    # the identity keeps the first name, so labeler folders named by its digest stay valid
    assert (
        cfg.resume_key()["augment"] == "flip_crop" and "image_augmentation" not in cfg.resume_key()
    )
    with pytest.warns(DeprecationWarning):
        assert LabelerConfig.from_dict({"augment": False}).image_augmentation == "none"
    with pytest.raises(TypeError):
        LabelerConfig(augment="none")  # type: ignore[call-arg]
    with pytest.raises(ValueError, match="unknown image augmentation 'blur'"):
        LabelerConfig(image_augmentation="blur")


def test_checkpoints_written_before_zca_space_was_named_still_read() -> None:
    """LabelerMeta said `zca` (a bool, where a set's `zca` is the fitted ZCA); it is now
    `zca_space`; an older checkpoint's metadata reads the same."""
    from ladd.labeler import LabelerMeta
    from ladd.sets import has_zca

    meta = LabelerMeta(
        arch="convnet_d3", spec={}, source="cifar10", epoch=10, mean=(0.0,) * 3,
        std=(1.0,) * 3, class_names=("a", "b"), seed=0, test_accuracy=0.5, image_size=32,
        zca_space=True,
    )  # fmt: skip
    old = meta.to_dict()
    old["zca"] = old.pop("zca_space")
    assert LabelerMeta.from_dict(old) == meta and has_zca(meta)
    assert not has_zca(LabelerMeta.from_dict({**old, "zca": False}))
