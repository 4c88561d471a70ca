"""ladd.sets.view: a set described whole and read a few images at a time. An image folder's view
decodes one image to open and then only the images asked for, a label-augmented file of pixels
reads the rows asked for, and every image either gives is the one load_set gives (bit for bit);
its description is load_set's. Other formats are viewed as loaded."""

from __future__ import annotations

import sys
import zipfile
from pathlib import Path

import pytest
import torch
from PIL import Image

from ladd.sets import DistilledFileError, load_set, random_real
from ladd.sets import readers as readers_module
from ladd.sets.view import NOT_READ, open_view

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from synthetic_imagenet import write_image, write_rded_folder  # noqa: E402


@pytest.fixture
def decoded(monkeypatch):
    """How many files each decode call of the image-folder reader decodes, call by call."""
    calls: list[int] = []
    real = readers_module.decode_images

    def counting(items, *args, **kwargs):
        calls.append(len(items))
        return real(items, *args, **kwargs)

    monkeypatch.setattr(readers_module, "decode_images", counting)
    return calls


def assert_same_description(view, ds) -> None:
    """Everything a page reads of a set, the view's and load_set's, the value range aside."""
    assert view.lazy and len(view) == len(ds)
    assert torch.equal(view.labels, ds.labels)
    for name in ("class_names", "mean", "std", "test_mean", "test_std", "format", "source"):
        assert getattr(view, name) == getattr(ds, name), name
    for name in ("warnings", "notes", "normalisation", "trainable", "ipc", "num_classes"):
        assert getattr(view, name) == getattr(ds, name), name
    assert (view.image_size, view.channels) == (ds.image_size, int(ds.images.shape[1]))
    mine, theirs = view.describe(), ds.describe()
    assert (mine.pop("value_min"), mine.pop("value_max"), mine.pop("value_range")) == (
        None,
        None,
        NOT_READ,
    )
    theirs.pop("value_min"), theirs.pop("value_max")
    assert mine == theirs


def test_an_rded_folder_opens_with_one_image_decoded_and_reads_any_image_as_load_set(
    tmp_path, decoded
):
    folder = write_rded_folder(tmp_path / "rded", classes=40, ipc=3, size=16)
    view = open_view(folder)
    assert decoded == [1]  # the first image: it sets the size
    picks = [119, 0, 57, 57, 3]
    got = view.images_at(picks)
    assert decoded == [1, len(picks)]
    ds = load_set(folder)
    assert decoded == [1, len(picks), 120]  # a whole load decodes every file
    assert ds.format == "rded" and ds.warnings  # no source given: ImageNet statistics, warned
    assert torch.equal(got, ds.images[picks])
    assert_same_description(view, ds)
    assert view.images_at([]).shape == (0, 3, 16, 16)


def test_class_folders_of_mixed_sizes_and_names_read_as_the_whole_load(tmp_path, decoded):
    """Plain class folders (named classes), images of 12-20 px resized to the first image's
    side; read with a given mean/std, and zipped: each image is load_set's."""
    folder = tmp_path / "mixed"
    for k, name in enumerate(("cat", "dog", "eel")):
        (folder / name).mkdir(parents=True)
        for i in range(4):
            write_image(folder / name / f"{i}.png", seed=11 * k + i)
    archive = tmp_path / "mixed.zip"
    with zipfile.ZipFile(archive, "w") as z:
        for f in sorted(folder.rglob("*.png")):
            z.write(f, f.relative_to(folder).as_posix())
    stats = {"mean": (0.5, 0.4, 0.3), "std": (0.2, 0.25, 0.3)}
    for path, options in ((folder, {}), (folder, stats), (archive, stats)):
        view = open_view(path, **options)
        ds = load_set(path, **options)
        assert view.class_names == ("cat", "dog", "eel") and view.format == "imagefolder"
        assert torch.equal(view.images_at(range(len(ds))[::-1]), ds.images.flip(0))
        assert_same_description(view, ds)


def test_a_named_source_gives_the_views_class_names_and_statistics_as_load_sets(tmp_path):
    """RDED's folder read for CIFAR-10: the source's class names, RDED's ImageNet statistics."""
    folder = write_rded_folder(tmp_path / "rded", classes=10, ipc=2, size=32)
    view, ds = open_view(folder, source="cifar10"), load_set(folder, source="cifar10")
    assert view.class_names[:2] == ("airplane", "automobile") and not view.warnings
    assert torch.equal(view.images_at(range(20)), ds.images)
    assert_same_description(view, ds)


def test_a_lazy_view_never_hands_out_its_one_image_as_the_set(tmp_path):
    view = open_view(write_rded_folder(tmp_path / "rded", classes=3, ipc=2, size=8))
    with pytest.raises(AttributeError, match="images_at"):
        _ = view.images
    with pytest.raises(AttributeError, match="load"):
        view.save_mtt(tmp_path / "out")
    with pytest.raises(IndexError, match="outside the set's 6 images"):
        view.images_at([6])
    whole = view.load()
    assert len(whole) == 6 and torch.equal(whole.images, view.images_at(range(6)))


def test_options_are_load_sets_a_relabelled_format_an_unknown_one_and_a_typo(tmp_path):
    folder = write_rded_folder(tmp_path / "rded", classes=3, ipc=2, size=8)
    view = open_view(folder, format="imagefolder")
    assert view.format == load_set(folder, format="imagefolder").format == "imagefolder"
    with pytest.raises(DistilledFileError, match="unknown format 'nope'"):
        open_view(folder, format="nope")
    with pytest.raises(TypeError, match="sourse"):
        open_view(folder, sourse="cifar10")


def test_a_bad_file_is_reported_when_shown_and_the_whole_load_refuses_the_set(tmp_path):
    folder = write_rded_folder(tmp_path / "rded", classes=4, ipc=2, size=8)
    bad = folder / "00002" / "class00002_id00001.jpg"
    bad.write_bytes(b"\xff\xd8 not a jpeg")
    view = open_view(folder)
    assert view.images_at([0, 1, 4]).shape == (3, 3, 8, 8)
    with pytest.raises(DistilledFileError, match="class00002_id00001") as shown:
        view.images_at([5])
    assert str(shown.value).startswith(str(folder))
    with pytest.raises(DistilledFileError, match="class00002_id00001"):
        load_set(folder)


def test_other_formats_are_viewed_as_loaded(tmp_path):
    """An MTT-layout folder (every tensor format takes this branch) is loaded whole: the view
    passes every attribute through, its images included."""
    ds = random_real(_tiny_source(tmp_path), ipc=2, seed=0, cache_dir=tmp_path / "cache").save_mtt(
        tmp_path / "mtt"
    )
    view = open_view(ds)
    whole = load_set(ds)
    assert not view.lazy and view.load() is view.whole
    assert torch.equal(view.images, whole.images)
    assert torch.equal(view.images_at([3, 1]), whole.images[[3, 1]])
    assert view.describe() == whole.describe()
    with pytest.raises(DistilledFileError, match="no such file"):
        open_view(tmp_path / "missing")


def _tiny_source(root: Path) -> str:
    """An imagefolder source of two classes of random 8 px images (a train split only)."""
    folder = root / "src"
    g = torch.Generator().manual_seed(0)
    for k in range(2):
        (folder / f"c{k}").mkdir(parents=True)
        for i in range(3):
            pixels = torch.randint(0, 256, (8, 8, 3), generator=g, dtype=torch.uint8)
            Image.fromarray(pixels.numpy()).save(folder / f"c{k}/{i}.png")
    return f"imagefolder:{folder}"


@pytest.fixture(scope="module")
def labelled_file(tmp_path_factory):
    """A label-augmented file of 8-bit pixels (stored uint8) with top-k labels, 30 images."""
    from ladd.dense import augment
    from tests.test_dense import make_labeler

    ds = random_real("shapes", 3, seed=0, limit_per_class=20)
    la = augment(ds, make_labeler(ds), n=3, r=0.6, device="cpu", codec="topk:3,uint8")
    return la.save(tmp_path_factory.mktemp("la") / "la.safetensors")


def test_a_label_augmented_file_of_pixels_is_read_a_few_rows_at_a_time(labelled_file):
    from ladd.sets import LabelAugmentedSet

    view = open_view(labelled_file)
    whole = LabelAugmentedSet.load(labelled_file)
    assert view.lazy and view.head.images.shape[0] == 1 and len(view) == len(whole) == 30
    picks = [29, 0, 13, 13]
    assert torch.equal(view.images_at(picks), whole.images[picks])
    assert torch.equal(view.labels, whole.labels)
    assert view.codec.spec == whole.codec.spec == "topk:3,uint8,uniform"
    assert view.label_bytes() == whole.label_bytes()
    assert torch.equal(view.image_probs(7), whole.image_probs(7))
    assert (view.mean, view.std, view.class_names) == (whole.mean, whole.std, whole.class_names)
    mine, theirs = view.describe(), whole.describe()
    assert mine.pop("value_range") == NOT_READ and theirs.pop("value_range")
    assert mine == theirs
    assert torch.equal(view.load().images, whole.images)


def test_a_label_augmented_file_of_float_images_is_viewed_as_loaded(labelled_file, tmp_path):
    from ladd.sets import LabelAugmentedSet

    la = LabelAugmentedSet.load(labelled_file)
    la.images = la.images + 1e-3  # no longer some 8-bit pixels' normalisation: stored float32
    path = la.save(tmp_path / "float.safetensors")
    view = open_view(path)
    assert not view.lazy and view.images.dtype == torch.float32
    assert torch.equal(view.images_at([4, 2]), LabelAugmentedSet.load(path).images[[4, 2]])
