"""`imagenet1k`: the cached listing, the per-image transforms, seeded loaders, the val cache
under its limit, the refusals, evaluation over a loader and a labeler trained from a loader.

Everything runs on a synthetic ImageNet folder made here: 1000 made-up wnids (n00000000, ...),
two tiny images a class in train/ and one in val/ (JPEG and PNG, 12-20 px, seeded noise).
"""

from __future__ import annotations

import math
import shutil
import sys
from pathlib import Path

import pytest
import torch
from PIL import Image
from torch import nn
from torchvision import transforms as T
from torchvision.datasets import ImageFolder

import ladd.data.imagenet1k as imagenet1k
from ladd.data import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    LoaderConfig,
    SourceError,
    SourceNotFoundError,
    build_loader,
    evaluate_loader,
    imagenet1k_dataset,
    imagenet1k_loader,
    list_sources,
    load_source,
    source_info,
)
from ladd.data.base import LoadContext
from ladd.data.imagenet1k import (
    EvalTransform,
    ImageNet1kDataset,
    TrainTransform,
    open_listing,
    random_resized_box,
)
from ladd.data.streaming import ImageSetDataset, thread_safe_workers
from ladd.labeler import LabelerConfig, list_checkpoints, load_labeler, read_meta, train_labeler
from ladd.limits import InputLimitError

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from synthetic_imagenet import PER_SPLIT, WNIDS, write_image, write_imagenet  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    return write_imagenet(tmp_path_factory.mktemp("imagenet"))


@pytest.fixture
def ctx(root: Path, tmp_path: Path) -> LoadContext:
    return LoadContext(root, tmp_path / "cache", download=False)


# ------------------------------------------------------------------ classes, labels, listing


def test_classes_and_labels_are_torchvision_imagefolders(ctx: LoadContext) -> None:
    """Class index = position of the wnid in sorted order, file order sorted within a class:
    the (path, label) pairs are exactly torchvision.datasets.ImageFolder's."""
    for split, folder in (("train", "train"), ("val", "val")):
        listing = open_listing(split, ctx)
        assert listing.wnids == WNIDS and len(listing) == 1000 * PER_SPLIT[folder]
        reference = ImageFolder(str(ctx.data_root / folder))
        assert tuple(reference.classes) == WNIDS
        ours = [(str(listing.path(i)), int(listing.labels[i])) for i in range(len(listing))]
        assert ours == reference.samples


def test_registry_names_it_and_its_info_reads_the_class_folders(ctx, monkeypatch) -> None:
    assert "imagenet1k" in list_sources()
    monkeypatch.setenv("LADD_DATA_ROOT", str(ctx.data_root))
    info = source_info("imagenet1k", 64, cache_dir=ctx.cache_dir)
    assert info.class_names == WNIDS and info.image_size == 64
    assert (info.mean, info.std) == (IMAGENET_MEAN, IMAGENET_STD)
    assert source_info("imagenet1k", cache_dir=ctx.cache_dir).image_size == 224


def test_second_open_reads_the_cached_listing_not_the_folders(ctx, monkeypatch) -> None:
    first = open_listing("train", ctx)
    assert len(list(ctx.cache_dir.glob("imagenet1k-*-train-listing.safetensors"))) == 1

    def no_walk(folder: Path) -> list[str]:
        raise AssertionError(f"walked {folder} again")

    monkeypatch.setattr(imagenet1k, "class_files", no_walk)
    again = open_listing("train", ctx)
    assert torch.equal(again.labels, first.labels) and torch.equal(again.names, first.names)
    assert [again.path(i) for i in (0, 999, 1999)] == [first.path(i) for i in (0, 999, 1999)]
    monkeypatch.undo()

    extra = ctx.data_root / "train" / WNIDS[5] / "zz_extra.png"  # a changed class folder
    write_image(extra, seed=1)
    try:
        grown = open_listing("train", ctx)
        assert len(grown) == 2001 and grown.path(12) == extra and int(grown.labels[12]) == 5
    finally:
        extra.unlink()
    assert len(open_listing("train", ctx)) == 2000


# ------------------------------------------------------------------ transforms


def test_eval_transform_is_rdeds_validation_transform_by_hand(ctx: LoadContext) -> None:
    """RDED's validation transform (LINs-lab/RDED validation/main.py lines 151-158):
    transforms.Resize(args.input_size // 7 * 8, antialias=True), CenterCrop(args.input_size),
    ToTensor, Normalize(ImageNet mean, std). LADD resizes to RDED's size // 7 * 8 (224 -> 256,
    128 -> 144, 14 -> 16 here), raised to the crop size where that rule falls under it (< 14 px).
    Applied by hand with torchvision on the same PIL image, the values agree to 1e-6 (both sides
    divide the same uint8 pixels; only float rounding differs)."""
    assert EvalTransform(224).resize_to == 256 == 224 // 7 * 8
    assert EvalTransform(14).resize_to == 16 == 14 // 7 * 8
    assert EvalTransform(128).resize_to == 144 and EvalTransform(13).resize_to == 13
    listing = open_listing("val", ctx)
    dataset = ImageNet1kDataset(listing, EvalTransform(14))
    by_hand = T.Compose(
        [
            T.Resize(14 // 7 * 8, antialias=True),
            T.CenterCrop(14),
            T.ToTensor(),
            T.Normalize(IMAGENET_MEAN, IMAGENET_STD),
        ]
    )
    for index in (0, 1, 777):  # a JPEG, a PNG, another size
        x, y = dataset[index]
        with Image.open(listing.path(index)) as img:
            expected = by_hand(img.convert("RGB"))
        assert x.shape == (3, 14, 14) and x.dtype == torch.float32 and y == index
        torch.testing.assert_close(x, expected, atol=1e-6, rtol=0)


@pytest.mark.parametrize(("width", "height"), [(16, 12), (12, 20), (500, 375), (3, 400)])
def test_random_resized_box_stays_inside_and_in_range(width: int, height: int) -> None:
    g = torch.Generator().manual_seed(0)
    for _ in range(50):
        top, left, h, w = random_resized_box(width, height, g)
        assert 0 <= top and 0 <= left and top + h <= height and left + w <= width and h * w > 0
    big = [random_resized_box(500, 375, torch.Generator().manual_seed(s)) for s in range(200)]
    areas = [h * w / (500 * 375) for _, _, h, w in big]
    ratios = [w / h for _, _, h, w in big]
    assert 0.07 <= min(areas) and max(areas) <= 1.0 and min(areas) < 0.3 < 0.7 < max(areas)
    assert 0.74 <= min(ratios) and max(ratios) <= 1.35


def test_train_transform_crops_flips_and_is_seeded_per_sample(ctx: LoadContext) -> None:
    dataset = ImageNet1kDataset(open_listing("train", ctx), TrainTransform(12))
    a, b, c = dataset[(3, 11)][0], dataset[(3, 11)][0], dataset[(3, 12)][0]
    assert a.shape == (3, 12, 12) and torch.equal(a, b) and not torch.equal(a, c)
    flipped = TrainTransform(12, scale=(1.0, 1.0), ratio=(1.0, 1.0), flip=1.0)
    plain = TrainTransform(12, scale=(1.0, 1.0), ratio=(1.0, 1.0), flip=0.0)
    with Image.open(dataset.listing.path(0)) as img:
        image = img.convert("RGB").crop((0, 0, 12, 12))  # square: the crop is the whole image
    g = torch.Generator()
    assert torch.equal(flipped(image, g.manual_seed(0)), plain(image, g.manual_seed(0)).flip(2))


# ------------------------------------------------------------------ loaders


def first_batches(loader, count: int = 2) -> list[tuple[torch.Tensor, torch.Tensor]]:
    out = []
    for batch in loader:
        out.append(batch)
        if len(out) == count:
            break
    return out


def test_train_loader_batches_are_seeded_and_independent_of_workers(ctx: LoadContext) -> None:
    rng_before = torch.random.get_rng_state()

    def batches(seed: int, workers: int = 0):
        cfg = LoaderConfig(batch_size=64, workers=workers, shuffle=True, seed=seed)
        loader = imagenet1k_loader(
            "train", 12, cfg, data_root=ctx.data_root, cache_dir=ctx.cache_dir
        )
        return first_batches(loader)

    a, b, other, forked = batches(1), batches(1), batches(2), batches(1, workers=2)
    assert a[0][0].shape == (64, 3, 12, 12) and a[0][1].dtype == torch.int64
    for (xa, ya), (xb, yb), (xf, yf) in zip(a, b, forked, strict=True):
        assert torch.equal(xa, xb) and torch.equal(ya, yb)
        assert torch.equal(xa, xf) and torch.equal(ya, yf)  # 2 workers: the same batches
    assert not torch.equal(a[0][1], other[0][1])  # another seed, another order
    assert torch.equal(rng_before, torch.random.get_rng_state())  # the global RNG untouched


def test_workers_started_by_a_fork_server_from_a_thread_give_the_same_batches(
    ctx: LoadContext,
) -> None:
    """The dashboard's labeler job reads ImageNet-1K from a thread of the Streamlit server:
    its workers start from a fork server (app.tasks.streamed_loading), and the batches are
    the single process's."""
    import threading

    def batches(**kw):
        cfg = LoaderConfig(batch_size=16, shuffle=True, seed=3, **kw)
        return first_batches(
            imagenet1k_loader("train", 12, cfg, data_root=ctx.data_root, cache_dir=ctx.cache_dir)
        )

    got: list = []
    job = threading.Thread(target=lambda: got.append(batches(workers=2, start_method="forkserver")))
    job.start()
    job.join(timeout=300)
    assert got, "the loader in a thread did not finish"
    for (xa, ya), (xb, yb) in zip(batches(), got[0], strict=True):
        assert torch.equal(xa, xb) and torch.equal(ya, yb)
    with pytest.raises(ValueError, match="start_method must be one of"):
        LoaderConfig(start_method="thread")
    assert [thread_safe_workers(c) for c in (1, 2, 4, 16, 128)] == [1, 1, 3, 8, 8]


def test_a_held_val_split_is_read_without_workers(ctx: LoadContext, monkeypatch) -> None:
    """The val split cached whole has nothing to decode: its loader runs without workers, even
    when asked for fork-server ones (which would each be sent a copy of it), and gives the
    streamed split's batches."""
    monkeypatch.setenv("LADD_MAX_CACHED_SPLIT_BYTES", "1M")
    kw = dict(data_root=ctx.data_root, cache_dir=ctx.cache_dir)
    cfg = LoaderConfig(batch_size=100, workers=2, start_method="forkserver")
    loader = imagenet1k_loader("val", 14, cfg, **kw)
    assert isinstance(loader.dataset, ImageSetDataset) and loader.num_workers == 0
    monkeypatch.setenv("LADD_MAX_CACHED_SPLIT_BYTES", "100K")
    streamed = imagenet1k_loader("val", 14, LoaderConfig(batch_size=100), **kw)
    assert isinstance(streamed.dataset, ImageNet1kDataset)
    for (xa, ya), (xb, yb) in zip(loader, streamed, strict=True):
        assert torch.equal(xa, xb) and torch.equal(ya, yb)


def test_loader_pins_memory_only_for_cuda(ctx: LoadContext) -> None:
    dataset = ImageNet1kDataset(open_listing("val", ctx), EvalTransform(14))
    assert not build_loader(dataset, LoaderConfig(), "cpu").pin_memory
    assert build_loader(dataset, LoaderConfig(), "cuda").pin_memory
    with pytest.raises(ValueError, match="batch_size"):
        LoaderConfig(batch_size=0)


def test_val_is_one_cached_tensor_only_under_its_limit(ctx: LoadContext, monkeypatch) -> None:
    """1000 val images at 14 px are 588,000 bytes: held under a 1M limit, streamed under 100K;
    the two serve the same values."""
    kwargs = dict(data_root=ctx.data_root, cache_dir=ctx.cache_dir)
    monkeypatch.setenv("LADD_MAX_CACHED_SPLIT_BYTES", "100K")
    streamed = imagenet1k_dataset("val", 14, **kwargs)
    assert isinstance(streamed, ImageNet1kDataset)
    assert not list(ctx.cache_dir.glob("imagenet1k-*-test-14px*"))
    with pytest.raises(InputLimitError, match="LADD_MAX_CACHED_SPLIT_BYTES.*stream it"):
        load_source("imagenet1k", "val", image_size=14, **kwargs)

    monkeypatch.setenv("LADD_MAX_CACHED_SPLIT_BYTES", "1M")
    held = imagenet1k_dataset("val", 14, **kwargs)
    assert isinstance(held, ImageSetDataset)
    assert len(list(ctx.cache_dir.glob("imagenet1k-*-test-14px*"))) == 2  # tensors + sidecar
    for index in (0, 1, 500, 999):
        x_held, y_held = held[index]
        x_streamed, y_streamed = streamed[index]
        assert torch.equal(x_held, x_streamed) and y_held == y_streamed
    loaded = load_source("imagenet1k", "test", image_size=14, **kwargs)
    assert loaded.images.shape == (1000, 3, 14, 14) and loaded.images.dtype == torch.uint8
    assert loaded.info.class_names == WNIDS and loaded.labels.tolist() == list(range(1000))
    assert torch.equal(loaded.images, held.imageset.images)


def test_a_few_images_a_class_decode_alone_whatever_the_split_limit(
    ctx: LoadContext, monkeypatch
) -> None:
    """limit_per_class draws from the listing and decodes only the draw (the dashboard's CAM
    images): the val split over its cache limit and the train split, which never loads whole,
    both serve it; the draw and the pixels are those of a whole cached split's subset."""
    from ladd.data.base import Source

    kwargs = dict(data_root=ctx.data_root, cache_dir=ctx.cache_dir)
    monkeypatch.setenv("LADD_MAX_CACHED_SPLIT_BYTES", "100K")  # val at 14 px is 588,000 bytes
    decoded: list[int] = []
    real = ImageNet1kDataset.pixels

    def counting(self, key):
        decoded.append(key)
        return real(self, key)

    monkeypatch.setattr(ImageNet1kDataset, "pixels", counting)
    drawn = load_source("imagenet1k", "test", image_size=14, limit_per_class=1, seed=1, **kwargs)
    assert len(decoded) == 1000 and drawn.images.shape == (1000, 3, 14, 14)
    assert drawn.labels.tolist() == list(range(1000)) and drawn.split == "test"
    train = load_source("imagenet1k", "train", image_size=14, limit_per_class=1, seed=3, **kwargs)
    listing = open_listing("train", ctx)
    picks = imagenet1k.class_balanced_indices(listing.labels, 1, 1000, seed=3)
    assert train.split == "train" and torch.equal(train.labels, listing.labels[picks])
    plain = ImageNet1kDataset(listing, EvalTransform(14))
    assert all(torch.equal(train.images[i], plain.pixels(int(picks[i]))) for i in (0, 421, 999))

    monkeypatch.setenv("LADD_MAX_CACHED_SPLIT_BYTES", "1M")  # the whole split, then its subset
    source = imagenet1k.ImageNet1kSource()
    whole = Source.load_limited(source, "test", 14, ctx, 1, 1)
    assert torch.equal(whole.images, drawn.images) and torch.equal(whole.labels, drawn.labels)


def test_cam_inputs_of_imagenet1k_draw_a_few_a_class_without_the_whole_split(
    ctx: LoadContext, monkeypatch, tmp_path
) -> None:
    """The compare page's CAM images of an ImageNet-1K run: at most 4 a class (4,000 images,
    not 20 a class), drawn with the whole val split over its cache limit."""
    from ladd.demo import cam_inputs, cam_per_class
    from ladd.store import Workspace

    monkeypatch.setenv("LADD_DATA_ROOT", str(ctx.data_root))
    monkeypatch.setenv("LADD_MAX_CACHED_SPLIT_BYTES", "100K")
    ws = Workspace(tmp_path / "ws")
    images = cam_inputs(ws, "imagenet1k", 14, per_class=20)
    assert len(images) == 1000 and images.info.class_names == WNIDS  # one val image a class here
    assert [p.name for p in (ws.root / "cam").iterdir()] == ["imagenet1k_14px_4pc.safetensors"]
    assert [cam_per_class(k, 20) for k in (10, 200, 1000, 10**5)] == [20, 20, 4, 1]


# ------------------------------------------------------------------ refusals


def test_the_whole_tensor_path_refuses_train_and_says_to_stream(ctx: LoadContext) -> None:
    with pytest.raises(SourceError, match="not loaded as one tensor.*stream it with"):
        load_source("imagenet1k", "train", data_root=ctx.data_root, cache_dir=ctx.cache_dir)


def one_line(err: pytest.ExceptionInfo) -> str:
    text = str(err.value)
    assert "\n" not in text
    return text


def test_a_missing_folder_is_refused_in_one_line(tmp_path: Path) -> None:
    with pytest.raises(SourceNotFoundError) as err:
        imagenet1k_dataset("val", 14, data_root=tmp_path / "nowhere", cache_dir=tmp_path)
    assert "no ImageNet train/ or val/ folder" in one_line(err)


def test_a_folder_without_class_folders_is_refused(tmp_path: Path) -> None:
    (tmp_path / "imagenet" / "train" / "not_a_wnid").mkdir(parents=True)
    with pytest.raises(SourceNotFoundError) as err:
        imagenet1k_dataset("train", 14, data_root=tmp_path, cache_dir=tmp_path / "cache")
    assert "holds no WordNet-id class folders" in one_line(err)


def test_train_and_val_with_other_class_folders_are_refused(tmp_path: Path) -> None:
    root = write_imagenet(tmp_path / "small", WNIDS[:4], {"train": 1})
    write_imagenet(root, (*WNIDS[:3], WNIDS[9]), {"val": 1})
    with pytest.raises(SourceError) as err:
        imagenet1k_dataset("val", 14, data_root=root, cache_dir=tmp_path / "cache")
    text = one_line(err)
    assert "class folders" in text and "differ" in text and WNIDS[9] in text and WNIDS[3] in text


def test_a_folder_of_other_than_1000_classes_is_refused(tmp_path: Path) -> None:
    root = write_imagenet(tmp_path / "small", WNIDS[:4], {"train": 1, "val": 1})
    with pytest.raises(SourceNotFoundError) as err:
        imagenet1k_dataset("val", 14, data_root=root, cache_dir=tmp_path / "cache")
    assert "4 WordNet-id class folders, not 1000" in one_line(err)


# ------------------------------------------------------------------ evaluation over a loader


class LabelReader(nn.Module):
    """A cheating stub: answers `shift` classes after the true one, read off the (unshuffled)
    loader's labels in order."""

    def __init__(self, labels: torch.Tensor, shift: int = 0) -> None:
        super().__init__()
        self.labels, self.shift, self.seen = labels, shift, 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.labels[self.seen : self.seen + x.shape[0]]
        self.seen += x.shape[0]
        return nn.functional.one_hot((y + self.shift) % 1000, 1000).float()


def val_loader(ctx: LoadContext, size: int = 14, batch_size: int = 128):
    cfg = LoaderConfig(batch_size=batch_size)
    return imagenet1k_loader("val", size, cfg, data_root=ctx.data_root, cache_dir=ctx.cache_dir)


def test_evaluate_loader_gives_full_marks_to_the_right_answers(ctx: LoadContext) -> None:
    loader = val_loader(ctx)
    labels = torch.arange(1000)  # val/ holds one image a class, in class order
    right = evaluate_loader(LabelReader(labels), loader, "cpu", 1000)
    assert right.top1 == 1.0 and right.per_class.shape == (1000,)
    assert torch.equal(right.per_class, torch.ones(1000, dtype=torch.float64))
    top1, per_class = evaluate_loader(LabelReader(labels, shift=1), loader, "cpu", 1000)
    assert top1 == 0.0 and per_class.sum() == 0


def test_evaluate_loader_measures_a_real_tiny_model(ctx: LoadContext) -> None:
    model = nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU(), nn.Flatten(), nn.Linear(8 * 144, 1000))
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.1)
    model.train()
    loader = val_loader(ctx, batch_size=96)
    top1, per_class = evaluate_loader(model, loader, "cpu", 1000)
    assert model.training  # its mode is given back
    with torch.no_grad():
        x = torch.stack([loader.dataset[i][0] for i in range(1000)])
        hits = (model.eval()(x).argmax(1) == torch.arange(1000)).double()
    print(f"tiny untrained model on the synthetic val split: top-1 {top1:.3f}")
    assert top1 == pytest.approx(hits.mean().item()) and torch.equal(per_class, hits)
    with pytest.raises(ValueError, match="labels outside"):
        evaluate_loader(model, [(x[:2], torch.tensor([0, 1000]))], "cpu", 1000)


def test_per_class_accuracy_is_nan_for_a_class_without_images() -> None:
    batch = [(torch.zeros(2, 3, 4, 4), torch.tensor([0, 0]))]
    model = nn.Sequential(nn.Flatten(), nn.Linear(48, 3))
    nn.init.zeros_(model[1].weight)
    with torch.no_grad():
        model[1].bias.copy_(torch.tensor([1.0, 0.0, 0.0]))
    top1, per_class = evaluate_loader(model, batch, "cpu", 3)
    assert top1 == 1.0 and per_class[0] == 1.0 and math.isnan(per_class[1])


# ------------------------------------------------------------------ a labeler from loaders


def test_labeler_trains_from_loaders_and_resumes_exactly(ctx, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("LADD_DATA_ROOT", str(ctx.data_root))
    info = source_info("imagenet1k", 16, cache_dir=ctx.cache_dir)
    kwargs = dict(data_root=ctx.data_root, cache_dir=ctx.cache_dir)

    def loaders(seed: int = 0):
        train_cfg = LoaderConfig(batch_size=250, shuffle=True, seed=seed)
        train = imagenet1k_loader("train", 16, train_cfg, **kwargs)
        return train, imagenet1k_loader("val", 16, LoaderConfig(batch_size=500), **kwargs)

    base = dict(batch_size=250, image_augmentation="none", model_options={"width": 4})
    cfg = LabelerConfig(epochs=2, save_at=(1, 2), **base)
    train, test = loaders()
    paths = train_labeler(info, cfg, tmp_path / "a", loader=train, test_loader=test, device="cpu")
    assert [p.name for p in paths] == ["epoch_001.safetensors", "epoch_002.safetensors"]
    assert list_checkpoints(tmp_path / "a") == paths
    meta = read_meta(paths[-1])
    assert meta.source == "imagenet1k" and meta.class_names == WNIDS and meta.image_size == 16
    assert meta.mean == IMAGENET_MEAN and 0.0 <= meta.test_accuracy <= 1.0
    assert meta.train_flops > 0 and meta.config["batch_size"] == 250

    # "crash" after epoch 1, then resume with fresh loaders: the same weights as uninterrupted
    crashed = LabelerConfig(epochs=1, save_at=(1, 2), **base)
    train, _ = loaders()
    train_labeler(info, crashed, tmp_path / "b", loader=train, test_loader=test, device="cpu")
    train, _ = loaders()
    resumed = train_labeler(info, cfg, tmp_path / "b", loader=train, test_loader=test, device="cpu")
    a, b = load_labeler(paths[-1]), load_labeler(resumed[-1])
    for (name, va), (_, vb) in zip(
        a.model.state_dict().items(), b.model.state_dict().items(), strict=True
    ):
        assert torch.equal(va, vb), name  # bit for bit: README says "resumes exactly"
    assert a.meta.test_accuracy == b.meta.test_accuracy


def test_labeler_from_a_loader_refuses_what_it_cannot_honour(ctx, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("LADD_DATA_ROOT", str(ctx.data_root))
    info = source_info("imagenet1k", 16, cache_dir=ctx.cache_dir)
    loader = val_loader(ctx, size=16, batch_size=100)
    cfg = LabelerConfig(epochs=1, batch_size=100)
    with pytest.raises(ValueError, match="SourceInfo"):
        train_labeler("imagenet1k", cfg, tmp_path, loader=loader, test_loader=loader)
    with pytest.raises(ValueError, match="test_loader"):
        train_labeler(info, cfg, tmp_path, loader=loader)
    with pytest.raises(ValueError, match="batch size 100 is not the config's 256"):
        train_labeler(info, LabelerConfig(epochs=1), tmp_path, loader=loader, test_loader=loader)
    assert not list_checkpoints(tmp_path)


def test_the_listing_is_rewalked_when_its_cache_file_is_unreadable(ctx: LoadContext) -> None:
    first = open_listing("val", ctx)
    (cache_file,) = ctx.cache_dir.glob("imagenet1k-*-val-listing.safetensors")
    cache_file.write_bytes(b"not a safetensors file")
    assert torch.equal(open_listing("val", ctx).labels, first.labels)
    shutil.rmtree(ctx.cache_dir)
    assert len(open_listing("val", ctx)) == 1000
