"""Source registry, image folders and archives, the decoded cache, normalisation and ZCA."""

import shutil
import tarfile
import zipfile
from pathlib import Path

import pytest
import torch
from PIL import Image

from ladd.data import (
    ImageSet,
    SourceError,
    SourceNotFoundError,
    default_cache_dir,
    denormalise,
    fit_zca,
    list_sources,
    load_source,
    normalise,
    source_info,
    to_uint8,
)
from ladd.data.cache import entry_paths

CLASSES = ("cat", "dog", "frog")


def colour(k: int) -> tuple[int, int, int]:
    return (40 + 80 * k, 200 - 60 * k, 30 + 20 * k)


def write_image_folder(root: Path, splits=("train", "test"), size: int = 12) -> Path:
    """Tiny PNGs, one flat colour per class: train 4 a class, test 2 a class."""
    for split in splits:
        for k, name in enumerate(CLASSES):
            folder = root / split / name if split else root / name
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(4 if split in ("train", "") else 2):
                Image.new("RGB", (size, size), colour(k)).save(folder / f"{i:04d}.png")
    return root


def archive(folder: Path, kind: str) -> Path:
    if kind == "zip":
        target = folder.with_suffix(".zip")
        with zipfile.ZipFile(target, "w") as zf:
            for path in sorted(folder.rglob("*.png")):
                zf.write(path, path.relative_to(folder.parent).as_posix())  # wrapped in a folder
        return target
    target = folder.with_name(folder.name + ".tar.gz")
    with tarfile.open(target, "w:gz") as tf:
        tf.add(folder, arcname=".")
    return target


# ------------------------------------------------------------------ registry and info


def test_registry_lists_every_named_source():
    names = list_sources()
    for name in ("cifar10", "cifar100", "imagenette", "imagewoof", "imagefruit", "shapes"):
        assert name in names
    assert {"imagemeow", "imagesquawk", "imageyellow"} <= set(names)


def test_source_info_needs_no_data():
    cifar10 = source_info("cifar10")
    assert cifar10.class_names[:3] == ("airplane", "automobile", "bird")
    assert cifar10.mean == (0.4914, 0.4822, 0.4465) and cifar10.image_size == 32
    cifar100 = source_info("cifar100")
    assert cifar100.num_classes == 100 and len(set(cifar100.class_names)) == 100
    nette = source_info("imagenette")
    assert nette.image_size == 128 and nette.num_classes == 10
    assert nette.class_names[0] == "tench" and nette.std == (0.229, 0.224, 0.225)


def test_unknown_source_names_the_choices():
    with pytest.raises(SourceError, match="cifar10"):
        source_info("cifar11")


def test_imagenet_subset_without_folders_says_what_is_missing(tmp_path):
    with pytest.raises(SourceNotFoundError, match="train"):
        load_source("imagenette", data_root=tmp_path, cache_dir=tmp_path / "cache")


def test_imagenet_subset_with_too_few_wnid_folders_is_refused(tmp_path):
    (tmp_path / "train" / "n01440764").mkdir(parents=True)
    with pytest.raises(SourceNotFoundError, match="1000"):
        load_source("imagewoof", data_root=tmp_path, cache_dir=tmp_path / "cache")


def test_imagenet_subset_reads_subset_classes_in_label_order(tmp_path):
    nette = [0, 217, 482, 491, 497, 566, 569, 571, 574, 701]
    for split in ("train", "val"):
        for index in range(1000):
            (tmp_path / split / f"n{index:08d}").mkdir(parents=True)
        for label, index in enumerate(nette):  # 60x40 photos, the class's label in red
            for i in range(2 if split == "train" else 1):
                picture = Image.new("RGB", (60, 40), (20 * label, 90, 90))
                picture.save(tmp_path / split / f"n{index:08d}" / f"img{i}.JPEG", quality=95)
    cache = tmp_path / "cache"
    train = load_source("imagenette", data_root=tmp_path, cache_dir=cache, image_size=16)
    test = load_source("imagenette", "test", data_root=tmp_path, cache_dir=cache, image_size=16)
    assert train.images.shape == (20, 3, 16, 16) and test.class_counts() == [1] * 10
    red = train.images[:, 0, 8, 8].float()
    assert torch.allclose(red, train.labels.float() * 20, atol=4)
    assert train.info.class_names[1] == "English springer"


def test_cifar100_absent_without_download_is_a_clear_error(tmp_path):
    with pytest.raises(SourceNotFoundError, match="download"):
        load_source("cifar100", data_root=tmp_path, download=False)


def test_default_cache_dir_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("LADD_CACHE_DIR", str(tmp_path))
    assert default_cache_dir() == tmp_path
    monkeypatch.delenv("LADD_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert default_cache_dir() == tmp_path / "xdg" / "ladd"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert default_cache_dir() == tmp_path / "home" / ".cache" / "ladd"  # never cwd-relative


# ------------------------------------------------------------------ normalisation


def test_normalise_denormalise_and_to_uint8_round_trip():
    pixels = torch.randint(0, 256, (5, 3, 6, 6), dtype=torch.uint8)
    mean, std = (0.4914, 0.4822, 0.4465), (0.2023, 0.1994, 0.2010)
    x = normalise(pixels, mean, std)
    assert x.dtype == torch.float32
    assert torch.allclose(x[0, 1], (pixels[0, 1] / 255 - mean[1]) / std[1])
    assert torch.allclose(denormalise(x, mean, std), pixels / 255, atol=1e-6)
    assert torch.equal(to_uint8(x, mean, std), pixels)
    assert denormalise(x * 10, mean, std).max() <= 1.0


def test_imageset_subset_and_normalised():
    imageset = load_source("shapes", limit_per_class=3)
    part = imageset.subset(torch.tensor([0, 5, 29]))
    assert len(part) == 3 and part.labels.tolist() == [0, 1, 9]
    assert part.normalised(dtype=torch.float64).dtype == torch.float64


# ------------------------------------------------------------------ image folders


@pytest.mark.parametrize("kind", ["dir", "tar.gz", "zip"])
def test_imagefolder_reads_train_and_test_splits(tmp_path, kind):
    folder = write_image_folder(tmp_path / "pets")
    path = folder if kind == "dir" else archive(folder, kind)
    name = f"imagefolder:{path}"
    cache = tmp_path / "cache"
    train = load_source(name, "train", cache_dir=cache)
    test = load_source(name, "test", cache_dir=cache)
    assert train.images.shape == (12, 3, 12, 12) and test.images.shape == (6, 3, 12, 12)
    assert train.info.class_names == CLASSES
    assert train.class_counts() == [4, 4, 4] and test.class_counts() == [2, 2, 2]
    for k in range(3):  # each label carries its class's colour
        assert train.images[train.labels == k][:, :, 0, 0].unique(dim=0).tolist() == [
            list(colour(k))
        ]
    expected_mean = tuple(round(sum(colour(k)[c] for k in range(3)) / 3 / 255, 4) for c in range(3))
    assert train.info.mean == pytest.approx(expected_mean, abs=1e-3)
    assert test.info == train.info  # test is normalised with the train statistics


def test_imagefolder_without_splits_is_all_train(tmp_path):
    folder = write_image_folder(tmp_path / "flat", splits=("",))
    name = f"imagefolder:{folder}"
    train = load_source(name, cache_dir=tmp_path / "cache")
    assert train.class_counts() == [4, 4, 4]
    with pytest.raises(SourceError, match="no test split"):
        load_source(name, "test", cache_dir=tmp_path / "cache")


def test_imagefolder_resizes_to_the_size_asked_for(tmp_path):
    folder = write_image_folder(tmp_path / "pets", size=20)
    loaded = load_source(f"imagefolder:{folder}", image_size=8, cache_dir=tmp_path / "cache")
    assert loaded.images.shape[-2:] == (8, 8) and loaded.info.image_size == 8
    native = load_source(f"imagefolder:{folder}", cache_dir=tmp_path / "cache")
    assert native.info.image_size == 20


def test_second_load_comes_from_the_cache_even_without_the_folder(tmp_path):
    folder = write_image_folder(tmp_path / "pets")
    name, cache = f"imagefolder:{folder}", tmp_path / "cache"
    first = load_source(name, cache_dir=cache)
    assert any(p.suffix == ".safetensors" for p in cache.iterdir())
    assert any(p.suffix == ".json" for p in cache.iterdir())
    shutil.rmtree(folder)
    second = load_source(name, cache_dir=cache)
    assert torch.equal(first.images, second.images) and torch.equal(first.labels, second.labels)
    assert second.info == first.info
    assert source_info(name, cache_dir=cache) == first.info


def test_cache_is_refreshed_when_the_folder_changes(tmp_path):
    folder = write_image_folder(tmp_path / "pets")
    name, cache = f"imagefolder:{folder}", tmp_path / "cache"
    assert len(load_source(name, cache_dir=cache)) == 12
    Image.new("RGB", (12, 12), colour(0)).save(folder / "train" / "cat" / "0099.png")
    assert len(load_source(name, cache_dir=cache)) == 13


def test_cache_entry_is_written_atomically(tmp_path):
    folder = write_image_folder(tmp_path / "pets")
    cache = tmp_path / "cache"
    load_source(f"imagefolder:{folder}", cache_dir=cache)
    assert not list(cache.glob(".*tmp"))  # no temporary files left behind
    tensor_file, meta_file = entry_paths(cache, "x")
    assert tensor_file.name == "x.safetensors" and meta_file.name == "x.json"


# ------------------------------------------------------------------ class-balanced limits


def test_limit_per_class_is_balanced_and_seeded(tmp_path):
    folder = write_image_folder(tmp_path / "pets")
    name, cache = f"imagefolder:{folder}", tmp_path / "cache"
    a = load_source(name, limit_per_class=2, seed=0, cache_dir=cache)
    b = load_source(name, limit_per_class=2, seed=0, cache_dir=cache)
    assert a.class_counts() == [2, 2, 2]
    assert torch.equal(a.images, b.images)
    state = torch.get_rng_state()
    load_source(name, limit_per_class=2, seed=5, cache_dir=cache)
    assert torch.equal(state, torch.get_rng_state())  # the global RNG is left alone


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_device_cuda_puts_the_whole_set_on_the_gpu():
    shapes = load_source("shapes", limit_per_class=2, device="cuda")
    assert shapes.images.is_cuda and shapes.labels.is_cuda
    assert shapes.normalised().is_cuda


# ------------------------------------------------------------------ ZCA


def correlated_images(n: int = 4000) -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    mixing = torch.randn(48, 48, generator=g) / 4
    return (torch.randn(n, 48, generator=g) @ mixing + 0.3).reshape(n, 3, 4, 4)


def test_zca_invert_undoes_apply():
    x = correlated_images()
    zca = fit_zca(x, eps=0.1)
    assert torch.allclose(zca.invert(zca.apply(x)), x, atol=1e-4)


def test_zca_with_small_eps_whitens_to_identity_covariance():
    x = correlated_images()
    white = fit_zca(x, eps=1e-6).apply(x).flatten(1)  # (N, 48)
    cov = torch.cov(white.T)
    assert torch.allclose(cov, torch.eye(48), atol=0.02)
    assert white.mean(dim=0).abs().max() < 1e-4


def test_zca_matches_the_kornia_formula():
    x = correlated_images(500)
    flat = x.flatten(1).double()
    centred = flat - flat.mean(dim=0, keepdim=True)
    cov = centred.T @ centred / (flat.shape[0] - 1)
    u, s, _ = torch.linalg.svd(cov)
    transform = u @ torch.diag((s + 0.1).rsqrt()) @ u.T
    zca = fit_zca(x, eps=0.1)
    assert torch.allclose(zca.transform.double(), transform, atol=1e-4)
    expected = (centred @ transform).reshape(x.shape)
    assert torch.allclose(zca.apply(x).double(), expected, atol=1e-4)


def test_zca_save_and_load_round_trip(tmp_path):
    zca = fit_zca(correlated_images(300))
    loaded = type(zca).load(zca.save(tmp_path / "zca.safetensors"))
    assert torch.equal(loaded.transform, zca.transform) and loaded.eps == zca.eps


def test_imageset_is_a_plain_dataclass():
    info = source_info("shapes")
    empty = ImageSet(
        torch.zeros(0, 3, 32, 32, dtype=torch.uint8),
        torch.zeros(0, dtype=torch.long),
        info,
        "train",
    )
    assert len(empty) == 0 and empty.class_counts() == [0] * 10
