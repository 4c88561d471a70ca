"""Reading distilled sets in every supported format, refusing bad files, random-real baselines."""

import json
import os
import pickle
from pathlib import Path

import pytest
import torch
from PIL import Image

from ladd.data import load_source, source_info, to_uint8
from ladd.sets import (
    GLAD_MEAN,
    DistilledFileError,
    DistilledSet,
    load_distilled,
    random_real,
)

SHAPES = source_info("shapes")


def class_major(k: int = 10, ipc: int = 2, size: int = 8, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    images = torch.randn(k * ipc, 3, size, size, generator=g)  # (k*ipc, 3, size, size)
    return images, torch.arange(k).repeat_interleave(ipc)


def write_run(folder: Path, images, labels, lr=None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    torch.save(images, folder / "images_best.pt")
    torch.save(labels, folder / "labels_best.pt")
    if lr is not None:
        torch.save(torch.tensor(lr), folder / "lr_best.pt")
    return folder


# ------------------------------------------------------------------ formats


def test_mtt_run_folder(tmp_path):
    images, labels = class_major()
    ds = load_distilled(write_run(tmp_path / "mtt", images, labels), source="shapes")
    assert ds.format == "mtt" and ds.soft_labels is None and ds.lr is None
    assert torch.equal(ds.images, images) and torch.equal(ds.labels, labels)
    assert ds.mean == SHAPES.mean and ds.class_names == SHAPES.class_names
    assert ds.ipc == 2 and ds.ipc_per_class() == [2] * 10 and ds.image_size == 8


def test_mtt_without_normalisation_asks_for_source_or_mean(tmp_path):
    images, labels = class_major()
    with pytest.raises(DistilledFileError, match="--source"):
        load_distilled(write_run(tmp_path / "mtt", images, labels))
    ds = load_distilled(tmp_path / "mtt", mean=(0.5,) * 3, std=(0.25,) * 3)
    assert ds.mean == (0.5, 0.5, 0.5) and ds.class_names[3] == "class 3"


def test_glad_folder_defaults_to_glad_mean_on_imagenet_subsets(tmp_path):
    images, labels = class_major(size=16)
    folder = write_run(tmp_path / "glad", images, labels)
    ds = load_distilled(folder, source="imagenette", format="glad")
    assert ds.format == "glad" and ds.mean == GLAD_MEAN and ds.std == (0.229, 0.224, 0.225)


def test_datm_folder_has_soft_labels_and_lr(tmp_path):
    images, labels = class_major()
    logits = torch.randn(20, 10) + 5 * torch.nn.functional.one_hot(labels, 10)
    logits[5, 0] = 50.0  # a row of class 2 whose argmax drifted to class 0
    ds = load_distilled(write_run(tmp_path / "datm", images, logits, lr=0.0123), source="shapes")
    assert ds.format == "datm"
    assert torch.equal(ds.soft_labels, logits) and torch.equal(ds.labels, labels)  # DATM's slots
    assert ds.ipc_per_class() == [2] * 10 and any("1 of 20" in n for n in ds.notes)
    assert ds.lr == pytest.approx(0.0123)
    assert ds.describe()["label_kind"] == "soft"


def test_pointing_at_images_best_reads_the_run_folder(tmp_path):
    images, labels = class_major()
    folder = write_run(tmp_path / "mtt", images, labels)
    assert load_distilled(folder / "images_best.pt", source="shapes").format == "mtt"


def test_single_tensor_file_infers_class_major_labels(tmp_path):
    images, labels = class_major(k=5, ipc=3)
    torch.save(images, tmp_path / "set.pt")
    ds = load_distilled(tmp_path / "set.pt", num_classes=5, mean=(0,) * 3, std=(1,) * 3)
    assert ds.format == "tensor" and torch.equal(ds.labels, labels)
    with pytest.raises(DistilledFileError, match="set.pt"):
        load_distilled(tmp_path / "set.pt", mean=(0,) * 3, std=(1,) * 3)  # class count unknown
    with pytest.raises(DistilledFileError, match="evenly"):
        load_distilled(tmp_path / "set.pt", num_classes=4, mean=(0,) * 3, std=(1,) * 3)


@pytest.mark.parametrize("layout", ["dict", "data_targets", "tuple"])
def test_tensor_file_with_images_and_labels(tmp_path, layout):
    images, labels = class_major()
    obj = {
        "dict": {"images": images, "labels": labels, "lr": torch.tensor(0.01)},
        "data_targets": {"data": images, "targets": labels},
        "tuple": (images, labels),
    }[layout]
    torch.save(obj, tmp_path / "set.pt")
    ds = load_distilled(tmp_path / "set.pt", source="shapes")
    assert torch.equal(ds.images, images) and torch.equal(ds.labels, labels)
    assert ds.lr == (pytest.approx(0.01) if layout == "dict" else None)


def write_class_folders(root: Path, names, per_class: int, size: int = 8, ext: str = "png"):
    pixels = {}
    for k, name in enumerate(names):
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            array = torch.randint(0, 256, (size, size, 3), dtype=torch.uint8)
            file = root / name / f"class{k:03d}_id{i:03d}.{ext}"
            Image.fromarray(array.numpy()).save(file)
            pixels[(k, i)] = array.permute(2, 0, 1)
    return pixels


def test_sre2l_style_folders_decode_and_normalise(tmp_path):
    pixels = write_class_folders(tmp_path / "sre2l", [f"new{k:03d}" for k in range(10)], 2)
    ds = load_distilled(tmp_path / "sre2l", source="shapes")
    assert ds.format == "imagefolder" and ds.images.dtype == torch.float32
    assert ds.labels.tolist() == [k for k in range(10) for _ in range(2)]
    assert ds.class_names == SHAPES.class_names and ds.mean == SHAPES.mean
    assert torch.equal(to_uint8(ds.images[2], ds.mean, ds.std), pixels[(1, 0)])


def test_rded_style_jpeg_folders_with_missing_classes_use_folder_indices(tmp_path):
    write_class_folders(tmp_path / "rded", ["00000", "00003"], 2, ext="jpg")
    with pytest.warns(UserWarning, match="uneven"):
        ds = load_distilled(tmp_path / "rded", source="shapes")
    assert ds.labels.tolist() == [0, 0, 3, 3] and ds.ipc == 0
    assert ds.ipc_per_class()[3] == 2


def test_named_class_folders_become_class_names(tmp_path):
    write_class_folders(tmp_path / "named", ["cat", "dog"], 3, size=10)
    ds = load_distilled(tmp_path / "named", image_size=6)
    assert ds.class_names == ("cat", "dog") and ds.images.shape == (6, 3, 6, 6)
    assert any("ImageNet" in w for w in ds.warnings)  # no source: ImageNet statistics


def test_save_mtt_then_load_gives_the_same_set(tmp_path):
    images, labels = class_major()
    soft = torch.randn(20, 10)
    original = DistilledSet(
        images, labels, soft, 0.05, SHAPES.mean, SHAPES.std, SHAPES.class_names, "datm", "shapes"
    )
    folder = original.save_mtt(tmp_path / "saved")
    assert (folder / "ladd_meta.json").is_file() and (folder / "lr_best.pt").is_file()
    back = load_distilled(folder)
    assert back.format == "datm" and back.source == "shapes"
    assert torch.equal(back.images, images) and torch.equal(back.labels, labels)
    assert torch.equal(back.soft_labels, soft) and back.lr == pytest.approx(0.05)
    assert back.mean == original.mean and back.class_names == original.class_names


def test_save_mtt_hard_labels_round_trip(tmp_path):
    images, labels = class_major(k=3, ipc=2)
    original = DistilledSet(
        images, labels, None, None, (0.1,) * 3, (0.2,) * 3, ("a", "b", "c"), "mtt"
    )
    back = load_distilled(original.save_mtt(tmp_path / "saved"))
    assert back.soft_labels is None and back.lr is None and back.class_names == ("a", "b", "c")
    assert back.describe()["count"] == 6 and back.describe()["ipc_per_class"] == [2, 2, 2]


# ------------------------------------------------------------------ bad files


def assert_refused(path: Path, match: str, **kwargs) -> DistilledFileError:
    with pytest.raises(DistilledFileError, match=match) as caught:
        load_distilled(path, **{"source": "shapes", **kwargs})
    message = str(caught.value)
    assert path.name in message and "\n" not in message
    return caught.value


def test_truncated_file_is_refused(tmp_path):
    images, _ = class_major()
    torch.save(images, tmp_path / "cut.pt")
    data = (tmp_path / "cut.pt").read_bytes()
    (tmp_path / "cut.pt").write_bytes(data[: len(data) // 2])
    assert_refused(tmp_path / "cut.pt", "truncated or corrupt")


def test_text_file_is_reported_as_not_a_tensor_file(tmp_path):
    (tmp_path / "notes.pt").write_text("garbage, not a tensor file\n")
    err = assert_refused(tmp_path / "notes.pt", "not a recognised distilled set.*not a torch file")
    assert "it refers to" not in str(err)


def test_nan_images_are_refused(tmp_path):
    images, labels = class_major()
    images[3, 1, 2, 2] = float("nan")
    write_run(tmp_path / "run", images, labels)
    assert_refused(tmp_path / "run", "NaN")


def test_out_of_range_labels_are_refused(tmp_path):
    images, labels = class_major()
    labels[-1] = 10
    write_run(tmp_path / "run", images, labels)
    err = assert_refused(tmp_path / "run", r"outside \[0, 10\)")
    assert err.path.name == "labels_best.pt"


def test_image_label_count_mismatch_is_refused(tmp_path):
    images, labels = class_major()
    torch.save({"images": images, "labels": labels[:-1]}, tmp_path / "set.pt")
    assert_refused(tmp_path / "set.pt", "20 images but 19 labels")


def test_wrong_rank_is_refused(tmp_path):
    torch.save(torch.randn(10, 3, 8), tmp_path / "flat.pt")
    assert_refused(tmp_path / "flat.pt", "dimensions")


def test_integer_images_are_refused(tmp_path):
    torch.save(torch.zeros(10, 3, 8, 8, dtype=torch.uint8), tmp_path / "ints.pt")
    assert_refused(tmp_path / "ints.pt", "dtype")


def test_empty_set_is_refused(tmp_path):
    torch.save(torch.zeros(0, 3, 8, 8), tmp_path / "empty.pt")
    assert_refused(tmp_path / "empty.pt", "empty")


class RunsCode:
    """Unpickling this would run a shell command that creates a marker file."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@pytest.mark.parametrize("writer", ["torch_zip", "torch_legacy", "plain_pickle"])
def test_pickle_with_code_is_refused_and_never_run(tmp_path, writer):
    marker = tmp_path / "marker"
    path = tmp_path / "evil.pt"
    payload = {"images": RunsCode(marker), "labels": torch.zeros(1)}
    if writer == "torch_zip":
        torch.save(payload, path)
    elif writer == "torch_legacy":
        torch.save(payload, path, _use_new_zipfile_serialization=False)
    else:
        path.write_bytes(pickle.dumps(payload))
    assert_refused(path, "refused")
    assert not marker.exists()


def test_uneven_classes_warn_and_report_ipc_per_class(tmp_path):
    images, labels = class_major(k=3, ipc=3)
    torch.save({"images": images[:-1], "labels": labels[:-1]}, tmp_path / "uneven.pt")
    with pytest.warns(UserWarning, match="uneven"):
        ds = load_distilled(tmp_path / "uneven.pt", num_classes=3, mean=(0,) * 3, std=(1,) * 3)
    assert ds.ipc_per_class() == [3, 3, 2] and ds.ipc == 2
    assert ds.warnings and ds.describe()["even"] is False


def test_missing_path_and_unknown_format(tmp_path):
    with pytest.raises(DistilledFileError, match="no such"):
        load_distilled(tmp_path / "nothing")
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(DistilledFileError, match="notes.txt"):
        load_distilled(tmp_path / "notes.txt")


# ------------------------------------------------------------------ ZCA and random real


def test_zca_source_fits_whitening_and_survives_save(tmp_path):
    train = load_source("shapes", image_size=8, limit_per_class=30)
    images, labels = class_major(size=8)
    write_run(tmp_path / "run", images, labels)
    ds = load_distilled(tmp_path / "run", source="shapes", zca_source=train)
    assert ds.zca is not None and ds.describe()["zca"] is True
    assert ds.mean == (0.0, 0.0, 0.0) and ds.std == (1.0, 1.0, 1.0)  # whitened [0, 1] pixels
    pixel_space = ds.pixel_images()
    assert torch.allclose(ds.zca.apply(pixel_space), ds.images, atol=1e-3)
    back = load_distilled(ds.save_mtt(tmp_path / "saved"), zca_source=train)
    assert back.zca is not None and torch.equal(back.images, ds.images) and back.mean == ds.mean


def test_a_zca_set_saved_by_an_older_ladd_is_refused(tmp_path):
    """Version 1 whitened normalised images: its ZCA cannot be rebuilt as MTT's."""
    images, labels = class_major()
    folder = write_run(tmp_path / "old", images, labels)
    meta = {
        "ladd_meta_version": 1,
        "format": "mtt",
        "source": "shapes",
        "mean": list(SHAPES.mean),
        "std": list(SHAPES.std),
        "class_names": list(SHAPES.class_names),
        "zca": {"source": "shapes", "eps": 0.1},
    }
    (folder / "ladd_meta.json").write_text(json.dumps(meta))
    with pytest.raises(DistilledFileError, match="older LADD"):
        load_distilled(folder)


def test_random_real_is_balanced_reproducible_and_leaves_global_rng(tmp_path):
    state = torch.get_rng_state()
    a = random_real("shapes", ipc=3, seed=1, limit_per_class=20)
    b = random_real("shapes", ipc=3, seed=1, limit_per_class=20)
    c = random_real("shapes", ipc=3, seed=2, limit_per_class=20)
    assert torch.equal(state, torch.get_rng_state())
    assert a.format == "random_real" and a.source == "shapes"
    assert a.ipc_per_class() == [3] * 10 and a.labels.tolist() == sorted(a.labels.tolist())
    assert torch.equal(a.images, b.images) and not torch.equal(a.images, c.images)
    assert a.images.dtype == torch.float32 and a.images.shape == (30, 3, 32, 32)


def test_random_real_refuses_more_images_than_a_class_has():
    with pytest.raises(ValueError, match="fewer"):
        random_real("shapes", ipc=5, limit_per_class=3)


def test_random_real_round_trips_through_save_mtt(tmp_path):
    real = random_real(load_source("shapes", limit_per_class=4), ipc=2)
    back = load_distilled(real.save_mtt(tmp_path / "rr"))
    assert back.format == "random_real" and torch.equal(back.images, real.images)
