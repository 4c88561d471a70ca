"""`imagenet1k`: all of ImageNet-1K, streamed from the user's folder instead of decoded whole.

The layout is torchvision's, <root>/train/<wnid>/*.JPEG and <root>/val/<wnid>/*.JPEG with the
1000 WordNet-id folders; a class's index is the position of its wnid in sorted order (as
torchvision.datasets.ImageFolder numbers them, and as pretrained ImageNet models expect).
<root> is the data root or <data root>/imagenet. LADD's "test" split is ImageNet's val.

    listing      the split's file names and labels, walked once and cached (a second open reads
                 one small file instead of walking 1.28M files)
    transforms   train: RandomResizedCrop(size) + horizontal flip, drawn from a per-sample seed;
                 eval: Resize(size // 7 * 8) + CenterCrop(size) (RDED's validation transform)
    dataset      one image decoded per __getitem__ (PIL, within ladd.limits), normalised with
                 ImageNet's mean and std
    val cache    the val split at one size kept as a cached uint8 tensor when it fits
                 LADD_MAX_CACHED_SPLIT_BYTES (128 px: 2.3 GiB); otherwise it streams too

The whole-tensor `load_source("imagenet1k", ...)` path serves only that cached val split; the
train split is refused with a message that says to stream it (imagenet1k_loader).
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import re
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Protocol

import torch
from PIL import Image
from safetensors import SafetensorError, safe_open
from torch.utils.data import DataLoader, Dataset

from ladd.data.base import LoadContext, Source, SourceError, SourceNotFoundError, default_data_root
from ladd.data.cache import load_split, path_digest, resolve_cache_dir, save_split
from ladd.data.decode import IMAGE_SUFFIXES, centre_of_elongated, each_on_threads, open_rgb
from ladd.data.imagenet import IMAGENET_MEAN, IMAGENET_STD
from ladd.data.imageset import SPLITS, ImageSet, SourceInfo, class_balanced_indices, normalise
from ladd.data.streaming import ImageSetDataset, LoaderConfig, SampleKey, build_loader, split_key
from ladd.files import save_tensors
from ladd.limits import InputLimitError, Limits, current_limits
from ladd.rded import BOX_UNIFORMS, random_resized_boxes

NAME = "imagenet1k"
NUM_CLASSES = 1000
DEFAULT_SIZE = 224
SPLIT_FOLDERS = {"train": "train", "test": "val"}  # LADD's split -> ImageNet's folder
LISTING_FORMAT = "ladd.imagenet1k-listing/1"

_WNID = re.compile(r"n\d{8}")
_LAYOUT_HINT = (
    "expected ImageNet in torchvision's layout, <root>/train/<wnid>/*.JPEG and "
    "<root>/val/<wnid>/*.JPEG (all 1000 wnid folders); set --data-root or LADD_DATA_ROOT"
)


def _context(data_root: str | Path | None, cache_dir: str | Path | None) -> LoadContext:
    root = Path(data_root).expanduser() if data_root is not None else default_data_root()
    return LoadContext(root, resolve_cache_dir(cache_dir).expanduser(), download=False)


def _split(split: str) -> str:
    """LADD's split name ("train" or "test"); "val" is read as "test"."""
    split = {"val": "test"}.get(split, split)
    if split not in SPLITS:
        raise SourceError(f"{NAME}: split must be 'train' or 'val'/'test', got {split!r}")
    return split


# ---------------------------------------------------------------- the folder and its classes


def imagenet1k_root(data_root: str | Path) -> Path:
    """<data_root> or <data_root>/imagenet, whichever holds train/ or val/."""
    base = Path(data_root).expanduser()
    for candidate in (base, base / "imagenet"):
        if any((candidate / folder).is_dir() for folder in SPLIT_FOLDERS.values()):
            return candidate
    raise SourceNotFoundError(
        f"{NAME}: no ImageNet train/ or val/ folder under {base} (nor {base / 'imagenet'}); "
        f"{_LAYOUT_HINT}"
    )


def _wnid_folders(folder: Path) -> list[str]:
    with os.scandir(folder) as it:
        return sorted(e.name for e in it if e.is_dir() and _WNID.fullmatch(e.name))


def class_wnids(root: Path) -> tuple[str, ...]:
    """The 1000 wnids in sorted order (index == class index), the same in train/ and val/."""
    found: dict[str, list[str]] = {}
    for folder in SPLIT_FOLDERS.values():
        if (root / folder).is_dir():
            found[folder] = _wnid_folders(root / folder)
            if not found[folder]:
                raise SourceNotFoundError(
                    f"{NAME}: {root / folder} holds no WordNet-id class folders (n01440764, "
                    f"...); {_LAYOUT_HINT}"
                )
    if len(found) == 2 and found["train"] != found["val"]:
        only_train = sorted(set(found["train"]) - set(found["val"]))
        only_val = sorted(set(found["val"]) - set(found["train"]))
        raise SourceError(
            f"{NAME}: the class folders of {root / 'train'} and {root / 'val'} differ "
            f"({len(only_train)} only in train/, e.g. {only_train[:3]}; {len(only_val)} only "
            f"in val/, e.g. {only_val[:3]}), so class indices would not agree"
        )
    wnids = next(iter(found.values()))
    if len(wnids) != NUM_CLASSES:
        raise SourceNotFoundError(
            f"{NAME}: {root} holds {len(wnids)} WordNet-id class folders, not {NUM_CLASSES}, "
            f"so class indices cannot be read off; {_LAYOUT_HINT}"
        )
    return tuple(wnids)


# ---------------------------------------------------------------- the listing (cached)


@dataclass(frozen=True, eq=False)
class Listing:
    """One split's image files: names packed in one byte tensor (cheap to hold and to share
    with forked DataLoader workers, unlike 1.28M Python strings), labels by class."""

    folder: Path  # <root>/train or <root>/val
    wnids: tuple[str, ...]
    names: torch.Tensor  # uint8 (B,): UTF-8 file names, concatenated
    offsets: torch.Tensor  # int64 (N + 1,): name i is names[offsets[i]:offsets[i + 1]]
    labels: torch.Tensor  # int64 (N,), class-major
    fingerprint: str  # of the class folders, see folder_fingerprint

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def path(self, index: int) -> Path:
        start, end = int(self.offsets[index]), int(self.offsets[index + 1])
        name = bytes(self.names[start:end].numpy()).decode("utf-8")
        return self.folder / self.wnids[int(self.labels[index])] / name


def folder_fingerprint(folder: Path, wnids: tuple[str, ...]) -> str:
    """Modification times of the class folders (1000 stats, not 1.28M): adding or removing an
    image changes its folder's, so a stale listing is walked again."""
    digest = hashlib.sha1()
    for wnid in wnids:
        digest.update(f"{wnid}|{(folder / wnid).stat().st_mtime_ns}\n".encode())
    return digest.hexdigest()[:16]


def class_files(folder: Path) -> list[str]:
    """Sorted image file names directly inside one class folder (hidden files left out)."""
    with os.scandir(folder) as it:
        return sorted(
            e.name
            for e in it
            if not e.name.startswith(".")
            and os.path.splitext(e.name)[1].lower() in IMAGE_SUFFIXES
            and e.is_file()
        )


def walk_split(folder: Path, wnids: tuple[str, ...], fingerprint: str) -> Listing:
    """List every class folder of one split (the slow walk the cache saves)."""
    chunks: list[bytes] = []
    lengths: list[int] = []
    counts: list[int] = []
    for wnid in wnids:
        if not (folder / wnid).is_dir():
            raise SourceNotFoundError(f"{NAME}: class folder {folder / wnid} is missing")
        names = class_files(folder / wnid)
        if not names:
            raise SourceNotFoundError(f"{NAME}: no images in {folder / wnid}; {_LAYOUT_HINT}")
        encoded = [n.encode("utf-8") for n in names]
        chunks += encoded
        lengths += [len(b) for b in encoded]
        counts.append(len(names))
    blob = torch.frombuffer(bytearray(b"".join(chunks)), dtype=torch.uint8)
    offsets = torch.zeros(len(lengths) + 1, dtype=torch.int64)
    offsets[1:] = torch.tensor(lengths, dtype=torch.int64).cumsum(0)
    labels = torch.repeat_interleave(torch.arange(len(wnids)), torch.tensor(counts))
    return Listing(folder, wnids, blob, offsets, labels, fingerprint)


def listing_path(cache_dir: Path, folder: Path) -> Path:
    """The listing's cache file, keyed by the split folder's absolute path."""
    return cache_dir / f"{NAME}-{path_digest(folder)}-{folder.name}-listing.safetensors"


def _read_listing(path: Path, folder: Path, wnids: tuple[str, ...], stamp: str) -> Listing | None:
    if not path.is_file():
        return None
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
            if (
                meta.get("format") != LISTING_FORMAT
                or meta.get("fingerprint") != stamp
                or tuple(json.loads(meta.get("wnids", "[]"))) != wnids
            ):
                return None
            names, offsets, counts = (f.get_tensor(k) for k in ("names", "offsets", "counts"))
    except (OSError, ValueError, SafetensorError):
        return None  # unreadable: walked again and rewritten
    labels = torch.repeat_interleave(torch.arange(len(wnids)), counts)
    if offsets.shape[0] != labels.shape[0] + 1:
        return None
    return Listing(folder, wnids, names, offsets, labels, stamp)


def open_listing(split: str, ctx: LoadContext) -> Listing:
    """One split's listing: from the cache when the class folders are unchanged, else walked
    and cached."""
    root = imagenet1k_root(ctx.data_root)
    wnids = class_wnids(root)
    folder = root / SPLIT_FOLDERS[_split(split)]
    if not folder.is_dir():
        raise SourceNotFoundError(f"{NAME}: no {folder} folder; {_LAYOUT_HINT}")
    stamp = folder_fingerprint(folder, wnids)
    path = listing_path(ctx.cache_dir, folder)
    cached = _read_listing(path, folder, wnids, stamp)
    if cached is not None:
        return cached
    listing = walk_split(folder, wnids, stamp)
    counts = torch.bincount(listing.labels, minlength=len(wnids))
    meta = {"format": LISTING_FORMAT, "fingerprint": stamp, "wnids": json.dumps(list(wnids))}
    tensors = {"names": listing.names, "offsets": listing.offsets, "counts": counts}
    save_tensors(path, tensors, meta)
    return listing


# ---------------------------------------------------------------- transforms


@functools.cache
def _tf() -> Any:
    """torchvision.transforms.functional, imported on the first image (seconds of import that
    `import ladd` must not pay)."""
    from torchvision.transforms import functional

    return functional


def _pil_to_uint8(image: Image.Image) -> torch.Tensor:
    return _tf().pil_to_tensor(image)  # uint8 (3, H, W)


class ImageTransform(Protocol):
    """A PIL RGB image and the sample's seeded generator -> uint8 (3, S, S)."""

    size: int

    def __call__(self, image: Image.Image, generator: torch.Generator | None) -> torch.Tensor: ...


@dataclass(frozen=True)
class EvalTransform:
    """Resize the short side to size // 7 * 8 (bilinear, antialiased), centre-crop size x size:
    RDED's validation transform (validation/main.py line 154, `args.input_size // 7 * 8`:
    224 -> 256 -> 224, 128 -> 144 -> 128); never below `size` (RDED's rule falls under it below
    14 px, where the centre crop would pad)."""

    size: int

    @property
    def resize_to(self) -> int:
        return max(self.size, self.size // 7 * 8)

    def __call__(
        self, image: Image.Image, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        tf = _tf()  # an elongated image is cut to its centre first: the resize stays bounded
        image = centre_of_elongated(image, self.resize_to)
        resized = tf.resize(image, [self.resize_to], antialias=True)
        return _pil_to_uint8(tf.center_crop(resized, [self.size, self.size]))


def random_resized_box(
    width: int,
    height: int,
    g: torch.Generator,
    scale: tuple[float, float] = (0.08, 1.0),
    ratio: tuple[float, float] = (3 / 4, 4 / 3),
) -> tuple[int, int, int, int]:
    """(top, left, height, width) of a random crop covering `scale` of the area with aspect
    ratio in `ratio` (log-uniform); after 10 misses, the largest centred crop whose ratio is in
    range: the Inception crop, torchvision's rule (ladd.rded.random_resized_boxes), drawn
    from `g`."""
    u = torch.rand((1, BOX_UNIFORMS), generator=g)
    top, left, h, w = random_resized_boxes(height, width, scale, u, ratio)
    return int(top[0]), int(left[0]), int(h[0]), int(w[0])


@dataclass(frozen=True)
class TrainTransform:
    """The standard ImageNet training augmentation: a random resized crop to size x size
    (bilinear, antialiased), then a horizontal flip with probability `flip`, every draw from
    the sample's generator."""

    size: int
    scale: tuple[float, float] = (0.08, 1.0)
    ratio: tuple[float, float] = (3 / 4, 4 / 3)
    flip: float = 0.5

    def __call__(self, image: Image.Image, generator: torch.Generator | None) -> torch.Tensor:
        if generator is None:
            raise ValueError("TrainTransform needs the sample's generator")
        tf = _tf()
        top, left, h, w = random_resized_box(*image.size, generator, self.scale, self.ratio)
        out = tf.resized_crop(image, top, left, h, w, [self.size, self.size], antialias=True)
        if float(torch.rand((), generator=generator)) < self.flip:
            out = tf.hflip(out)
        return _pil_to_uint8(out)


# ---------------------------------------------------------------- the dataset


class ImageNet1kDataset(Dataset):
    """One split, one image decoded per item: (normalised float (3, S, S), class index).

    Keys are an index or (index, seed) from ladd.data.streaming.SeededSampler; a random
    transform draws from torch.Generator().manual_seed(seed), so a sample's augmentation does
    not depend on which worker decodes it. Each file is checked against ladd.limits (file size,
    pixels from the header) before it is decoded.
    """

    def __init__(
        self,
        listing: Listing,
        transform: ImageTransform,
        mean: tuple[float, ...] = IMAGENET_MEAN,
        std: tuple[float, ...] = IMAGENET_STD,
        limits: Limits | None = None,
    ) -> None:
        self.listing = listing
        self.transform = transform
        self.mean, self.std = mean, std
        self.limits = limits or current_limits()

    def __len__(self) -> int:
        return len(self.listing)

    def pixels(self, key: int | SampleKey) -> torch.Tensor:
        """The transformed image before normalisation, uint8 (3, S, S)."""
        index, seed = split_key(key)
        path = self.listing.path(index)
        image = open_rgb(path, str(path), self.limits)
        return self.transform(image, torch.Generator().manual_seed(seed))

    def __getitem__(self, key: int | SampleKey) -> tuple[torch.Tensor, int]:
        index, _ = split_key(key)
        x = normalise(self.pixels(key), self.mean, self.std)  # (3, S, S)
        return x, int(self.listing.labels[index])


def _info(wnids: tuple[str, ...], size: int) -> SourceInfo:
    return SourceInfo(NAME, wnids, size, IMAGENET_MEAN, IMAGENET_STD)


def val_nbytes(listing: Listing, size: int) -> int:
    """Bytes of the split as one uint8 (N, 3, S, S) tensor."""
    return len(listing) * 3 * size * size


def decode_eval_split(
    listing: Listing,
    size: int,
    workers: int | None = None,
    indices: torch.Tensor | None = None,
) -> torch.Tensor:
    """Every image of a split (or those at `indices`, in that order) through the eval
    transform, uint8 (N, 3, S, S), on a thread pool (PIL decodes and resizes outside the GIL)."""
    picked = torch.arange(len(listing)) if indices is None else indices.cpu().long()
    count = int(picked.shape[0])
    current_limits().check_decoded(count * 3 * size * size, f"{NAME} {listing.folder}")
    dataset = ImageNet1kDataset(listing, EvalTransform(size))
    out = torch.empty(count, 3, size, size, dtype=torch.uint8)  # (N, 3, S, S)
    where = picked.tolist()

    def work(i: int) -> None:
        out[i] = dataset.pixels(where[i])

    each_on_threads(count, work, workers)
    return out


def cached_val(
    listing: Listing, size: int, ctx: LoadContext, workers: int | None = None
) -> ImageSet | None:
    """The val split at `size` as a cached uint8 ImageSet (the eval transform's pixels), or
    None when it does not fit LADD_MAX_CACHED_SPLIT_BYTES (then it streams)."""
    if not current_limits().fits_cached_split(val_nbytes(listing, size)):
        return None
    key = f"{NAME}-{path_digest(listing.folder)}-test-{size}px"
    entry = load_split(ctx.cache_dir, key)
    if entry is not None and entry.meta.get("fingerprint") == listing.fingerprint:
        return ImageSet(entry.images, entry.labels, _info(listing.wnids, size), "test")
    images = decode_eval_split(listing, size, workers)
    info = _info(listing.wnids, size)
    meta = {
        "name": NAME,
        "class_names": list(info.class_names),
        "image_size": size,
        "mean": list(info.mean),
        "std": list(info.std),
        "channels": 3,
        "split": "test",
        "fingerprint": listing.fingerprint,
    }
    save_split(ctx.cache_dir, key, images, listing.labels, meta)
    return ImageSet(images, listing.labels, info, "test")


def imagenet1k_dataset(
    split: str,
    image_size: int = DEFAULT_SIZE,
    *,
    data_root: str | Path | None = None,
    cache_dir: str | Path | None = None,
    transform: str | None = None,
) -> Dataset:
    """One split as a Dataset of (normalised (3, S, S), label).

    transform: "train" (random resized crop + flip) or "eval" (resize + centre crop); None
    picks "train" for the train split and "eval" for val. The val split with the eval transform
    is served from its cached uint8 tensor when that fits LADD_MAX_CACHED_SPLIT_BYTES.
    """
    split = _split(split)
    kind = transform or ("train" if split == "train" else "eval")
    if kind not in ("train", "eval"):
        raise SourceError(f"{NAME}: transform must be 'train' or 'eval', got {transform!r}")
    size = ImageNet1kSource().resolve_size(image_size)
    ctx = _context(data_root, cache_dir)
    listing = open_listing(split, ctx)
    if kind == "eval" and split == "test":
        held = cached_val(listing, size, ctx)
        if held is not None:
            return ImageSetDataset(held)
    chosen: ImageTransform = TrainTransform(size) if kind == "train" else EvalTransform(size)
    return ImageNet1kDataset(listing, chosen)


def imagenet1k_loader(
    split: str,
    image_size: int = DEFAULT_SIZE,
    cfg: LoaderConfig | None = None,
    *,
    device: str | torch.device = "cpu",
    data_root: str | Path | None = None,
    cache_dir: str | Path | None = None,
    transform: str | None = None,
) -> DataLoader:
    """A seeded DataLoader over one split (see imagenet1k_dataset); cfg None: batches of 256,
    shuffled for the train split only, no workers. A split served from its cached tensor has
    nothing to decode: it is read without workers (the batches are the same), so the tensor is
    never copied to spawned ones (7.5 GB for the val split at 224 px)."""
    cfg = cfg or LoaderConfig(shuffle=_split(split) == "train")
    dataset = imagenet1k_dataset(
        split, image_size, data_root=data_root, cache_dir=cache_dir, transform=transform
    )
    if isinstance(dataset, ImageSetDataset) and cfg.workers:
        cfg = replace(cfg, workers=0)
    return build_loader(dataset, cfg, device)


# ---------------------------------------------------------------- the registered source


class ImageNet1kSource(Source):
    """ImageNet-1K for the registry: `info` reads the class folders; `load` serves only the
    val split, and only when it fits the cached-split limit. Everything else streams."""

    name = NAME
    default_size = DEFAULT_SIZE

    def info(self, image_size: int | None = None, ctx: LoadContext | None = None) -> SourceInfo:
        """Classes (the wnids, in index order), size and ImageNet's normalisation; reads the
        class folder names (not the images) of the data root."""
        ctx = ctx or _context(None, None)
        return _info(class_wnids(imagenet1k_root(ctx.data_root)), self.resolve_size(image_size))

    def decode(self, split: str, image_size: int, ctx: LoadContext) -> dict[str, ImageSet]:
        raise SourceError(_stream_hint(split))

    def load(self, split: str, image_size: int | None, ctx: LoadContext) -> ImageSet:
        """The val ("test") split as one uint8 tensor when it fits LADD_MAX_CACHED_SPLIT_BYTES;
        the train split, or a val split over the limit, is refused: stream it instead."""
        split = _split(split)
        size = self.resolve_size(image_size)
        if split == "train":
            raise SourceError(_stream_hint(split))
        listing = open_listing(split, ctx)
        try:
            current_limits().check_cached_split(val_nbytes(listing, size), f"{NAME} val")
        except InputLimitError as err:
            raise InputLimitError(f"{err}; or {_stream_hint(split, short=True)}") from None
        held = cached_val(listing, size, ctx)
        if held is None:  # pragma: no cover - the check above already refused
            raise SourceError(_stream_hint(split))
        return held

    def load_limited(
        self,
        split: str,
        image_size: int | None,
        ctx: LoadContext,
        per_class: int | None = None,
        seed: int = 0,
    ) -> ImageSet:
        """`per_class` seeded-random images a class of either split, only those decoded (the
        eval transform's pixels): the images a whole split's load_limited would pick
        (class_balanced_indices on the listing's labels), however large the split. Without
        `per_class`, `load`. The dashboard's CAM images come from here."""
        if per_class is None:
            return self.load(split, image_size, ctx)
        split = _split(split)
        size = self.resolve_size(image_size)
        listing = open_listing(split, ctx)
        picks = class_balanced_indices(listing.labels, per_class, len(listing.wnids), seed=seed)
        images = decode_eval_split(listing, size, indices=picks)
        return ImageSet(images, listing.labels[picks], _info(listing.wnids, size), split)


def _stream_hint(split: str, short: bool = False) -> str:
    call = f"ladd.data.imagenet1k_loader({'train' if split == 'train' else 'val'!r}, size)"
    if short:
        return f"stream it with {call}"
    return (
        f"{NAME}: the {split} split is not loaded as one tensor (ImageNet-1K train is 1.28M "
        f"images); stream it with {call}"
    )


__all__ = [
    "DEFAULT_SIZE",
    "NUM_CLASSES",
    "EvalTransform",
    "ImageNet1kDataset",
    "ImageNet1kSource",
    "Listing",
    "TrainTransform",
    "cached_val",
    "class_wnids",
    "imagenet1k_dataset",
    "imagenet1k_loader",
    "imagenet1k_root",
    "open_listing",
    "random_resized_box",
]
