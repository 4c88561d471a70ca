"""Reading image files out of folders and archives, and decoding them to uint8 tensors.

An "image tree" is a folder, a .tar/.tar.gz/.tar.xz/.tar.bz2 archive or a .zip, seen as a
mapping from relative POSIX paths ("train/cat/0001.png") to the file's bytes. Compressed tars
cannot seek, so an archive is read in one streaming pass; a folder is read lazily.
"""

from __future__ import annotations

import io
import os
import tarfile
import warnings
import zipfile
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import torch
import torch.nn.functional as F
from PIL import Image, UnidentifiedImageError

try:  # torchvision's C decoders are faster than PIL for small images; deprecated from 0.29 on
    from torchvision.io import ImageReadMode, decode_image
except ImportError:  # pragma: no cover - a torchvision without image decoding
    decode_image = None

IMAGE_SUFFIXES = frozenset(
    {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm", ".pgm"}
)
TAR_SUFFIXES = (".tar", ".tar.gz", ".tgz", ".tar.xz", ".txz", ".tar.bz2", ".tbz2")
ARCHIVE_SUFFIXES = (*TAR_SUFFIXES, ".zip")


class ImageDecodeError(ValueError):
    """An image file could not be decoded; the message names it."""


def is_archive(path: str | Path) -> bool:
    return str(path).lower().endswith(ARCHIVE_SUFFIXES)


def _wanted(rel: str) -> bool:
    """An image file that is not hidden and not macOS archive debris."""
    parts = PurePosixPath(rel).parts
    if any(p.startswith(".") or p == "__MACOSX" for p in parts):
        return False
    return PurePosixPath(rel).suffix.lower() in IMAGE_SUFFIXES


@dataclass
class ImageTree:
    """Image files under a folder or inside an archive, keyed by sorted relative POSIX path."""

    origin: Path
    files: dict[str, bytes | Path]  # bytes for archive members, a Path for files on disk

    @property
    def paths(self) -> list[str]:
        return list(self.files)

    def read(self, rel: str) -> bytes:
        item = self.files[rel]
        return item.read_bytes() if isinstance(item, Path) else item


def read_image_tree(path: str | Path) -> ImageTree:
    """List (folder) or read (archive) every image file under `path`."""
    origin = Path(path).expanduser()
    if origin.is_dir():
        found: dict[str, bytes | Path] = {}
        for dirpath, dirnames, filenames in os.walk(origin, followlinks=True):
            dirnames[:] = [d for d in dirnames if not d.startswith(".")]
            for name in filenames:
                full = Path(dirpath) / name
                rel = full.relative_to(origin).as_posix()
                if _wanted(rel):
                    found[rel] = full
    elif origin.is_file() and origin.name.lower().endswith(TAR_SUFFIXES):
        found = {}
        try:
            with tarfile.open(origin, mode="r|*") as archive:
                for member in archive:
                    rel = member.name
                    while rel.startswith("./"):
                        rel = rel[2:]
                    if member.isfile() and _wanted(rel):
                        handle = archive.extractfile(member)
                        if handle is not None:
                            found[rel] = handle.read()
        except (tarfile.TarError, EOFError, OSError) as err:
            raise ImageDecodeError(f"{origin}: cannot read the tar archive ({err})") from err
    elif origin.is_file() and origin.name.lower().endswith(".zip"):
        try:
            with zipfile.ZipFile(origin) as archive:
                found = {
                    info.filename: archive.read(info)
                    for info in archive.infolist()
                    if not info.is_dir() and _wanted(info.filename)
                }
        except (zipfile.BadZipFile, OSError) as err:
            raise ImageDecodeError(f"{origin}: cannot read the zip archive ({err})") from err
    elif origin.exists():
        raise ImageDecodeError(
            f"{origin}: not a folder or a .tar/.tar.gz/.tar.xz/.zip archive of images"
        )
    else:
        raise FileNotFoundError(f"{origin}: no such folder or archive")
    return ImageTree(origin, dict(sorted(found.items())))


# ---------------------------------------------------------------- decoding and resizing


def resize_center_crop(images: torch.Tensor, size: int) -> torch.Tensor:
    """uint8 (N, C, H, W) -> (N, C, size, size): scale the short side to `size`, crop the centre."""
    h, w = images.shape[-2:]
    if h == size and w == size:
        return images
    scale = size / min(h, w)
    new_h, new_w = max(size, round(h * scale)), max(size, round(w * scale))
    x = F.interpolate(
        images.float(), size=(new_h, new_w), mode="bilinear", antialias=True, align_corners=False
    )
    top, left = (new_h - size) // 2, (new_w - size) // 2
    x = x[..., top : top + size, left : left + size]
    return x.round_().clamp_(0, 255).to(torch.uint8)


def _decode_pil(data: bytes, size: int | None, name: str) -> torch.Tensor:
    """PIL decode to uint8 (3, H, W); with `size`, JPEGs decode at a reduced scale (draft)."""
    try:
        with Image.open(io.BytesIO(data)) as img:
            if size is not None:
                img.draft("RGB", (size, size))  # JPEG only: decode at >= size, much faster
            rgb = img.convert("RGB")
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError) as err:
        raise ImageDecodeError(f"{name}: cannot decode image ({err})") from err
    if size is not None:
        w, h = rgb.size
        scale = size / min(w, h)
        new_w, new_h = max(size, round(w * scale)), max(size, round(h * scale))
        left, top = (new_w - size) // 2, (new_h - size) // 2
        rgb = rgb.resize((new_w, new_h), Image.Resampling.BILINEAR).crop(
            (left, top, left + size, top + size)
        )
    array = torch.frombuffer(bytearray(rgb.tobytes()), dtype=torch.uint8)
    return array.reshape(rgb.size[1], rgb.size[0], 3).permute(2, 0, 1).contiguous()


def _decode_fast(data: bytes, name: str) -> torch.Tensor:
    """torchvision's C decoders (JPEG/PNG/GIF/WebP) with PIL as the fallback; uint8 (3, H, W)."""
    if decode_image is None:
        return _decode_pil(data, None, name)
    try:
        image = decode_image(
            torch.frombuffer(bytearray(data), dtype=torch.uint8), mode=ImageReadMode.RGB
        )
        if image.dtype == torch.uint8 and image.ndim == 3:
            return image
    except RuntimeError:
        pass  # a format torchvision does not read (BMP, TIFF, ...): PIL below
    return _decode_pil(data, None, name)


def decode_images(
    items: Sequence[bytes | Path],
    size: int | None = None,
    *,
    names: Sequence[str] | None = None,
    large: bool = False,
    workers: int | None = None,
) -> torch.Tensor:
    """Decode encoded images to one uint8 (N, 3, S, S) tensor.

    size: output side (short-side resize + centre crop); None keeps the first image's size
    (every image must then match it, or is resized to it). `large=True` is for full-size
    photographs (ImageNet): PIL's reduced-scale JPEG decoding on a thread pool, much faster
    than a full decode. Small images go through torchvision's decoders one by one.
    """
    names = list(names) if names is not None else [f"image {i}" for i in range(len(items))]

    def load(i: int) -> bytes:
        item = items[i]
        return item.read_bytes() if isinstance(item, Path) else item

    if large:
        workers = workers or min(8, os.cpu_count() or 1)
        with ThreadPoolExecutor(workers) as pool:
            decoded = list(
                pool.map(lambda i: _decode_pil(load(i), size, names[i]), range(len(items)))
            )
    else:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", category=DeprecationWarning, module="torchvision")
            decoded = [_decode_fast(load(i), names[i]) for i in range(len(items))]
    if not decoded:
        side = size or 0
        return torch.zeros(0, 3, side, side, dtype=torch.uint8)
    return stack_resized(decoded, size)


def stack_resized(images: Iterable[torch.Tensor], size: int | None) -> torch.Tensor:
    """Stack uint8 (3, H, W) images to (N, 3, S, S), resizing in same-shape batches."""
    images = list(images)
    if size is None:
        h, w = images[0].shape[-2:]
        size = h if h == w else min(h, w)
    out = torch.empty(len(images), 3, size, size, dtype=torch.uint8)
    by_shape: dict[tuple[int, int], list[int]] = {}
    for i, image in enumerate(images):
        by_shape.setdefault(tuple(image.shape[-2:]), []).append(i)
    for indices in by_shape.values():
        for start in range(0, len(indices), 1024):  # bounded float memory per resize batch
            chunk = indices[start : start + 1024]
            batch = torch.stack([images[i] for i in chunk])  # (n, 3, H, W)
            out[chunk] = resize_center_crop(batch, size)
    return out


def channel_stats(images: torch.Tensor) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and std of uint8 (N, C, H, W) images on the [0, 1] scale."""
    channels = images.shape[1]
    total = torch.zeros(channels, dtype=torch.float64)
    total_sq = torch.zeros(channels, dtype=torch.float64)
    for start in range(0, images.shape[0], 4096):
        x = images[start : start + 4096].to(torch.float64).div_(255.0)  # (n, C, H, W)
        total += x.sum(dim=(0, 2, 3))
        total_sq += x.square().sum(dim=(0, 2, 3))
    count = images.shape[0] * images.shape[2] * images.shape[3]
    mean = total / max(count, 1)
    std = (total_sq / max(count, 1) - mean.square()).clamp_min(1e-12).sqrt()
    return tuple(round(v, 4) for v in mean.tolist()), tuple(round(v, 4) for v in std.tolist())


# ---------------------------------------------------------------- class-folder layouts

SPLIT_ALIASES = {"train": "train", "test": "test", "val": "test"}


@dataclass
class FolderLayout:
    """Image paths grouped by split and class folder."""

    splits: dict[str, dict[str, list[str]]]  # split -> class folder -> sorted relative paths
    has_splits: bool  # top-level train/ (and test/ or val/) folders were found
    classes: tuple[str, ...]  # sorted class folder names of the train split

    def items(self, split: str) -> tuple[list[str], list[int]]:
        """(paths, labels) of one split, class-major; labels index `classes`."""
        index = {name: k for k, name in enumerate(self.classes)}
        paths: list[str] = []
        labels: list[int] = []
        for name, members in sorted(self.splits.get(split, {}).items()):
            paths += members
            labels += [index[name]] * len(members)
        return paths, labels


def parse_layout(paths: Iterable[str], origin: str | Path = "") -> FolderLayout:
    """Group `split/class/file` or `class/file` paths; a single wrapping folder is looked through.

    Files deeper than `class/file` belong to their top class folder. Files with no class folder
    are ignored. Raises ValueError when no class folder holds an image.
    """
    rels = list(paths)
    parts = [PurePosixPath(p).parts for p in rels]
    while parts and all(len(p) >= 3 for p in parts) and len({p[0] for p in parts}) == 1:
        if parts[0][0].lower() in SPLIT_ALIASES:
            break
        parts = [p[1:] for p in parts]  # look through one wrapping folder
    has_splits = "train" in {p[0].lower() for p in parts if len(p) >= 3}
    splits: dict[str, dict[str, list[str]]] = {}
    for rel, p in zip(rels, parts, strict=True):
        if has_splits:
            split = SPLIT_ALIASES.get(p[0].lower()) if len(p) >= 3 else None
            if split is None:
                continue
            class_name = p[1]
        elif len(p) >= 2:
            split, class_name = "train", p[0]
        else:
            continue
        splits.setdefault(split, {}).setdefault(class_name, []).append(rel)
    if not splits.get("train"):
        raise ValueError(
            f"{origin}: no class folders with images found (expected class/image files)"
        )
    for members in (m for split in splits.values() for m in split.values()):
        members.sort()
    classes = tuple(sorted(splits["train"]))
    unknown = sorted(set(splits.get("test", {})) - set(classes))
    if unknown:
        raise ValueError(f"{origin}: test classes {unknown[:5]} have no train folder")
    return FolderLayout(splits, has_splits, classes)
