"""Reading image files out of folders and archives, and decoding them to uint8 tensors.

An "image tree" is a folder, a .tar/.tar.gz/.tar.xz/.tar.bz2 archive or a .zip, seen as a
mapping from relative POSIX paths ("train/cat/0001.png") to the file's bytes. Compressed tars
cannot seek, so an archive is read in one streaming pass; a folder is read lazily.

Every read is bounded by ladd.limits (InputLimitError names the cap and its variable): images
per tree, archive entries, expanded bytes and compression ratio (declared sizes checked before
reading, actual bytes counted while reading), pixels per image (read from the header before
decoding) and the decoded tensor's size (checked before allocating). Folders are walked with
their symlinks followed once: a link that leads back to a folder already read is skipped, so a
`..` link cannot loop and a link into the tree cannot load a second copy.
"""

from __future__ import annotations

import functools
import io
import os
import stat
import struct
import tarfile
import warnings
import zipfile
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, BinaryIO

import torch
import torch.nn.functional as F
from PIL import Image, UnidentifiedImageError

from ladd.limits import ArchiveBudget, InputLimitError, Limits, current_limits, format_bytes


@functools.cache
def _torchvision_decoder() -> tuple[Any, Any] | None:
    """torchvision's (decode_image, ImageReadMode), imported on the first image decoded: the
    import costs seconds (torchvision.io), which a page or a command that reads no image files
    must not pay. None where torchvision has no image decoding."""
    try:  # torchvision's C decoders are faster than PIL for small images
        from torchvision.io import ImageReadMode, decode_image
    except ImportError:  # pragma: no cover - a torchvision without image decoding
        return None
    return decode_image, ImageReadMode


IMAGE_SUFFIXES = frozenset(
    {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm", ".pgm"}
)
TAR_SUFFIXES = (".tar", ".tar.gz", ".tgz", ".tar.xz", ".txz", ".tar.bz2", ".tbz2")
ARCHIVE_SUFFIXES = (*TAR_SUFFIXES, ".zip")
READ_CHUNK = 1024**2  # bytes per read from an archive member
RESIZE_BUFFER_BYTES = 64 * 1024**2  # decoded images waiting to be resized together
# One image's resized (float) copy above this is cut to its centre first (_centre_window).
MAX_RESIZED_IMAGE_BYTES = 64 * 1024**2


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


def _image_name(name: str) -> bool:
    """A file name with an image suffix (the walk has already left hidden names out)."""
    return os.path.splitext(name)[1].lower() in IMAGE_SUFFIXES


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


# ---------------------------------------------------------------- folders (symlinks followed once)


@dataclass
class FolderListing:
    """The image files of a folder tree, found with each symlink followed at most once."""

    files: dict[str, Path]  # relative POSIX path -> path on disk (through links), sorted
    links: dict[str, Path] = field(default_factory=dict)  # followed symlink -> its real target
    skipped: list[str] = field(default_factory=list)  # links not followed: loops, copies, broken


def list_image_files(origin: str | Path, limits: Limits | None = None) -> FolderListing:
    """Every image file under folder `origin`, hidden files and folders left out.

    Symlinks are followed after everything reachable without them, and only to folders and
    files not read yet: a link back up the tree (a loop) or to a folder already listed (a
    duplicate) is skipped. More than `max_images` files raise InputLimitError.
    """
    limits = limits or current_limits()
    root = Path(origin)
    files: dict[str, Path] = {}
    links: dict[str, Path] = {}
    skipped: list[str] = []
    seen_dirs: set[tuple[int, int]] = set()
    seen_files: set[str] = set()  # real paths of the files listed
    deferred: list[tuple[str, Path]] = []  # symlinks found, followed after the real tree

    def add_file(rel: str, path: Path, real: str) -> None:
        if real in seen_files:
            skipped.append(rel)
            return
        seen_files.add(real)
        files[rel] = path
        if len(files) > limits.max_images:
            limits.check_images(len(files), str(root))

    def walk(top: Path, top_rel: str, top_real: str) -> None:
        stack = [(top, top_rel, top_real)]
        while stack:
            folder, rel, real = stack.pop()
            st = os.stat(folder)
            if (st.st_dev, st.st_ino) in seen_dirs:
                skipped.append(rel)
                continue
            seen_dirs.add((st.st_dev, st.st_ino))
            with os.scandir(folder) as it:
                entries = sorted(it, key=lambda e: e.name)
            subdirs = []
            for entry in entries:
                if entry.name.startswith(".") or entry.name == "__MACOSX":
                    continue
                entry_rel = f"{rel}/{entry.name}" if rel else entry.name
                if entry.is_symlink():
                    deferred.append((entry_rel, Path(entry.path)))
                elif entry.is_dir(follow_symlinks=False):
                    subdirs.append((Path(entry.path), entry_rel, os.path.join(real, entry.name)))
                elif entry.is_file(follow_symlinks=False) and _image_name(entry.name):
                    add_file(entry_rel, Path(entry.path), os.path.join(real, entry.name))
            stack.extend(reversed(subdirs))  # depth first, in name order

    walk(root, "", os.path.realpath(root))
    done = 0
    while done < len(deferred):  # links found inside linked folders are appended as we go
        rel, path = deferred[done]
        done += 1
        try:
            real = path.resolve(strict=True)
            st = os.stat(path)
        except (OSError, RuntimeError):  # broken link or a loop of links
            skipped.append(rel)
            continue
        if stat.S_ISDIR(st.st_mode):
            if (st.st_dev, st.st_ino) in seen_dirs:
                skipped.append(rel)
                continue
            links[rel] = real
            walk(path, rel, str(real))
        elif stat.S_ISREG(st.st_mode) and _wanted(rel):
            links[rel] = real
            add_file(rel, path, str(real))
    if skipped:
        shown = ", ".join(skipped[:3]) + (", ..." if len(skipped) > 3 else "")
        warnings.warn(
            f"{root}: did not follow {len(skipped)} symlink(s) that lead back to folders or "
            f"images already read, or nowhere ({shown})",
            stacklevel=2,
        )
    return FolderListing(dict(sorted(files.items())), links, skipped)


# ---------------------------------------------------------------- archives (counted reads)


def _read_counted(handle: BinaryIO, budget: ArchiveBudget) -> bytes:
    """A member's bytes, read in chunks; every chunk is counted against the archive's caps."""
    buffer = io.BytesIO()
    while chunk := handle.read(READ_CHUNK):
        budget.add_bytes(len(chunk))
        buffer.write(chunk)
    return buffer.getvalue()


def zip_entry_count(path: str | Path) -> int | None:
    """The entry count a zip's end record declares, read before zipfile parses the directory
    (a directory of millions of entries costs memory to parse); None when not found."""
    try:
        with open(path, "rb") as f:
            size = f.seek(0, os.SEEK_END)
            tail_len = min(size, 22 + 65535)
            f.seek(size - tail_len)
            tail = f.read(tail_len)
            at = tail.rfind(b"PK\x05\x06")
            if at < 0 or at + 22 > len(tail):
                return None
            (count,) = struct.unpack_from("<H", tail, at + 10)
            if count != 0xFFFF or at < 20 or tail[at - 20 : at - 16] != b"PK\x06\x07":
                return count
            (offset,) = struct.unpack_from("<Q", tail, at - 20 + 8)  # the zip64 end record
            f.seek(offset)
            record = f.read(56)
            if record[:4] != b"PK\x06\x06" or len(record) < 40:
                return count
            return struct.unpack_from("<Q", record, 32)[0]
    except (OSError, struct.error, ValueError):
        return None


def _read_tar(origin: Path, limits: Limits) -> dict[str, bytes | Path]:
    budget = limits.archive_budget(str(origin), origin.stat().st_size)
    found: dict[str, bytes | Path] = {}
    try:
        with tarfile.open(origin, mode="r|*") as archive:
            for member in archive:
                size = member.size if member.isfile() else 0
                budget.add_entry(size)  # the header's size, before any of it is read
                rel = member.name
                while rel.startswith("./"):
                    rel = rel[2:]
                handle = archive.extractfile(member) if member.isfile() and _wanted(rel) else None
                if handle is None:
                    budget.add_bytes(size)  # skipped, yet decompressed to get past it
                    continue
                found[rel] = _read_counted(handle, budget)
                limits.check_images(len(found), str(origin))
    except (tarfile.TarError, EOFError, OSError, zipfile.BadZipFile) as err:
        raise ImageDecodeError(f"{origin}: cannot read the tar archive ({err})") from err
    return found


def _read_zip(origin: Path, limits: Limits) -> dict[str, bytes | Path]:
    budget = limits.archive_budget(str(origin), origin.stat().st_size)
    declared = zip_entry_count(origin)
    if declared is not None:
        budget.check_entry_count(declared)
    found: dict[str, bytes | Path] = {}
    try:
        with zipfile.ZipFile(origin) as archive:
            infos = archive.infolist()
            budget.check_entry_count(len(infos))
            for info in infos:
                if info.is_dir() or not _wanted(info.filename):
                    continue
                budget.add_entry(info.file_size)  # the header's size, before any of it is read
                with archive.open(info) as handle:
                    found[info.filename] = _read_counted(handle, budget)
                limits.check_images(len(found), str(origin))
    except (zipfile.BadZipFile, OSError, EOFError, NotImplementedError) as err:
        why = str(err)
        if declared is None and isinstance(err, zipfile.BadZipFile):
            with open(origin, "rb") as f:
                if f.read(4) == b"PK\x03\x04":  # begins as a zip, ends without its directory
                    why = "its directory at the end is missing: truncated or cut short"
        raise ImageDecodeError(f"{origin}: cannot read the zip archive ({why})") from err
    return found


def read_image_tree(path: str | Path, limits: Limits | None = None) -> ImageTree:
    """List (folder) or read (archive) every image file under `path`, within `limits`."""
    limits = limits or current_limits()
    origin = Path(path).expanduser()
    if origin.is_dir():
        found: dict[str, bytes | Path] = dict(list_image_files(origin, limits).files)
    elif origin.is_file() and origin.name.lower().endswith(TAR_SUFFIXES):
        found = _read_tar(origin, limits)
    elif origin.is_file() and origin.name.lower().endswith(".zip"):
        found = _read_zip(origin, limits)
    elif origin.exists():
        raise ImageDecodeError(
            f"{origin}: not a folder or a .tar/.tar.gz/.tar.xz/.zip archive of images"
        )
    else:
        raise FileNotFoundError(f"{origin}: no such folder or archive")
    return ImageTree(origin, dict(sorted(found.items())))


# ---------------------------------------------------------------- image headers


def _png_size(data: bytes) -> tuple[int, int] | None:
    if data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR" and len(data) >= 24:
        return struct.unpack(">II", data[16:24])
    return None


_SOF = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}  # start-of-frame markers


def _jpeg_size(data: bytes) -> tuple[int, int] | None:
    """Width and height from the first start-of-frame segment (what libjpeg and PIL use)."""
    if data[:2] != b"\xff\xd8":
        return None
    i, n = 2, len(data)
    while i + 4 <= n:
        if data[i] != 0xFF:
            return None
        marker = data[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        if marker == 0x01 or 0xD0 <= marker <= 0xD8:  # markers without a length
            i += 2
            continue
        if marker in _SOF:
            if i + 9 > n:
                return None
            height, width = struct.unpack(">HH", data[i + 5 : i + 9])
            return width, height
        if marker in (0xD9, 0xDA):  # end of image or start of scan before any frame header
            return None
        (length,) = struct.unpack(">H", data[i + 2 : i + 4])
        i += 2 + length
    return None


def image_size(data: bytes, name: str) -> tuple[int, int]:
    """(width, height) from an encoded image's header, without decoding its pixels.

    PNG and JPEG headers are parsed here (microseconds); other formats go through PIL's
    Image.open, which also reads only the header.
    """
    size = _png_size(data) or _jpeg_size(data)
    if size is None:
        try:
            with Image.open(io.BytesIO(data)) as img:
                size = img.size
        except Image.DecompressionBombError as err:  # over PIL's own cap (~179M pixels)
            raise InputLimitError(
                f"{name}: more pixels than PIL opens in this format, whatever "
                f"LADD_MAX_IMAGE_PIXELS says ({err})"
            ) from err
        except (UnidentifiedImageError, OSError, ValueError) as err:
            raise ImageDecodeError(f"{name}: cannot decode image ({err})") from err
    width, height = int(size[0]), int(size[1])
    if width < 1 or height < 1:
        raise ImageDecodeError(f"{name}: cannot decode image (its header says {width} x {height})")
    return width, height


def check_image_header(data: bytes, name: str, limits: Limits) -> tuple[int, int]:
    """(width, height) of an encoded image; InputLimitError if it has too many pixels."""
    width, height = image_size(data, name)
    limits.check_pixels(width, height, name)
    return width, height


# ---------------------------------------------------------------- decoding and resizing


def _scaled(height: int, width: int, size: int) -> tuple[int, int]:
    """(new_h, new_w): the short side scaled to `size`, the long side in proportion."""
    scale = size / min(height, width)
    return max(size, round(height * scale)), max(size, round(width * scale))


def _centre_window(height: int, width: int) -> tuple[int, int, int, int] | None:
    """(top, left, h, w): the centre square of an elongated image plus a margin of an eighth
    of its side at each end, which holds every pixel a centre crop's resize filter reads (for
    outputs of 8 px and more); None when that is the whole image. For images so elongated that
    resizing them whole would not fit MAX_RESIZED_IMAGE_BYTES (a 1 x 1,000,000 PNG of 3 KB asked
    for 12 GB at 32 px); the cut may move the crop by a fraction of an output pixel."""
    short, long = min(height, width), max(height, width)
    keep = min(long, short + 2 * max(2, short // 8))
    if keep == long:
        return None
    start = (long - keep) // 2
    return (start, 0, keep, width) if height > width else (0, start, height, keep)


def resize_center_crop(images: torch.Tensor, size: int) -> torch.Tensor:
    """uint8 (N, C, H, W) -> (N, C, size, size): scale the short side to `size`, crop the centre.

    The float intermediate is bounded: a batch whose resized copies would pass
    RESIZE_BUFFER_BYTES is resized a part at a time (the same pixels), and an image elongated
    enough that one resized copy would pass MAX_RESIZED_IMAGE_BYTES is cut to its centre first
    (`_centre_window`).
    """
    h, w = images.shape[-2:]
    if h == size and w == size:
        return images
    new_h, new_w = _scaled(h, w, size)
    per_image = 4 * images.shape[1] * new_h * new_w  # float32 bytes of one resized copy
    if per_image > MAX_RESIZED_IMAGE_BYTES:
        window = _centre_window(h, w)
        if window is not None:
            top, left, wh, ww = window
            return resize_center_crop(images[..., top : top + wh, left : left + ww], size)
    step = max(1, RESIZE_BUFFER_BYTES // per_image)
    if images.shape[0] > step:
        return torch.cat(
            [resize_center_crop(images[i : i + step], size) for i in range(0, len(images), step)]
        )
    x = F.interpolate(
        images.float(), size=(new_h, new_w), mode="bilinear", antialias=True, align_corners=False
    )
    top, left = (new_h - size) // 2, (new_w - size) // 2
    x = x[..., top : top + size, left : left + size]
    return x.round_().clamp_(0, 255).to(torch.uint8)


def centre_of_elongated(image: Image.Image, size: int) -> Image.Image:
    """A PIL image cut to its centre (`_centre_window`) when resizing it whole to `size` on the
    short side would need more than MAX_RESIZED_IMAGE_BYTES; otherwise the image itself."""
    width, height = image.size
    new_h, new_w = _scaled(height, width, size)
    if 4 * 3 * new_h * new_w <= MAX_RESIZED_IMAGE_BYTES:
        return image
    window = _centre_window(height, width)
    if window is None:
        return image
    top, left, wh, ww = window
    return image.crop((left, top, left + ww, top + wh))


def _decode_pil(data: bytes, size: int | None, name: str, limits: Limits) -> torch.Tensor:
    """PIL decode to uint8 (3, H, W); with `size`, JPEGs decode at a reduced scale (draft)."""
    check_image_header(data, name, limits)
    try:
        with Image.open(io.BytesIO(data)) as img:
            if size is not None:
                img.draft("RGB", (size, size))  # JPEG only: decode at >= size, much faster
            rgb = img.convert("RGB")
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError) as err:
        raise ImageDecodeError(f"{name}: cannot decode image ({err})") from err
    if size is not None:
        rgb = centre_of_elongated(rgb, size)
        w, h = rgb.size
        new_h, new_w = _scaled(h, w, size)
        left, top = (new_w - size) // 2, (new_h - size) // 2
        rgb = rgb.resize((new_w, new_h), Image.Resampling.BILINEAR).crop(
            (left, top, left + size, top + size)
        )
    array = torch.frombuffer(bytearray(rgb.tobytes()), dtype=torch.uint8)
    return array.reshape(rgb.size[1], rgb.size[0], 3).permute(2, 0, 1).contiguous()


def _decode_fast(data: bytes, name: str, limits: Limits) -> torch.Tensor:
    """torchvision's C decoders (JPEG/PNG/WebP) with PIL as the fallback; uint8 (3, H, W).

    The pixel count is checked from the header first: torchvision's decoders have no
    decompression-bomb limit of their own. GIFs go to PIL, which decodes the first frame only.
    """
    check_image_header(data, name, limits)
    decoder = _torchvision_decoder() if data[:4] != b"GIF8" else None
    if decoder is None:
        return _decode_pil(data, None, name, limits)
    decode_image, ImageReadMode = decoder
    try:
        image = decode_image(
            torch.frombuffer(bytearray(data), dtype=torch.uint8), mode=ImageReadMode.RGB
        )
        if image.dtype == torch.uint8 and image.ndim == 3:
            return image
    except RuntimeError:
        pass  # a format torchvision does not read (BMP, TIFF, ...): PIL below
    return _decode_pil(data, None, name, limits)


def _load(item: bytes | Path, name: str, limits: Limits) -> bytes:
    """An item's encoded bytes; a file on disk larger than any decode may hold is refused."""
    if isinstance(item, Path):
        nbytes = item.stat().st_size
        if nbytes > limits.max_decoded_bytes:
            limits.check_decoded(nbytes, f"{name} ({format_bytes(nbytes)} file)")
        return item.read_bytes()
    return item


def open_rgb(item: bytes | Path, name: str, limits: Limits | None = None) -> Image.Image:
    """One encoded image (bytes or a file) as a full-size RGB PIL image, for per-image
    transforms (streamed sources). The file's size and the header's pixel count are checked
    against `limits` before any pixel is decoded."""
    limits = limits or current_limits()
    data = _load(item, name, limits)
    check_image_header(data, name, limits)
    try:
        with Image.open(io.BytesIO(data)) as img:
            return img.convert("RGB")
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError) as err:
        raise ImageDecodeError(f"{name}: cannot decode image ({err})") from err


def each_on_threads(count: int, work: Callable[[int], None], workers: int | None = None) -> None:
    """work(i) for every i < count on a thread pool (PIL decodes and resizes outside the GIL),
    `workers` threads (default: the cores, at most 8); on an error the rest is cancelled, not
    decoded first, and the error raised."""
    pool = ThreadPoolExecutor(workers or min(8, os.cpu_count() or 1))
    try:
        for _ in pool.map(work, range(count)):
            pass
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def decode_images(
    items: Sequence[bytes | Path],
    size: int | None = None,
    *,
    names: Sequence[str] | None = None,
    large: bool = False,
    workers: int | None = None,
    limits: Limits | None = None,
) -> torch.Tensor:
    """Decode encoded images to one uint8 (N, 3, S, S) tensor.

    size: output side (short-side resize + centre crop); None takes the first image's size
    (its side when square, else its short side; other images are resized to it). `large=True`
    is for full-size photographs (ImageNet): PIL's reduced-scale JPEG decoding on a thread
    pool, much faster than a full decode. Small images go through torchvision's decoders one
    by one. Memory stays bounded: each image's pixel count is checked from its header before it
    is decoded, the output's size before it is allocated, and images that need resizing wait
    in a buffer of at most RESIZE_BUFFER_BYTES.
    """
    limits = limits or current_limits()
    count = len(items)
    names = list(names) if names is not None else [f"image {i}" for i in range(count)]
    limits.check_images(count, "the images to decode")
    if count == 0:
        side = size or 0
        return torch.zeros(0, 3, side, side, dtype=torch.uint8)
    first = _load(items[0], names[0], limits) if size is None else None
    if size is None:
        width, height = check_image_header(first, names[0], limits)
        size = min(width, height)
    limits.check_decoded(count * 3 * size * size, f"{count:,} images of {size} x {size} px")
    out = torch.empty(count, 3, size, size, dtype=torch.uint8)  # (N, 3, S, S)

    if large:

        def work(i: int) -> None:
            data = first if i == 0 and first is not None else _load(items[i], names[i], limits)
            out[i] = _decode_pil(data, size, names[i], limits)

        each_on_threads(count, work, workers)
        return out

    pending: dict[tuple[int, int], list[tuple[int, torch.Tensor]]] = {}
    pending_bytes = 0

    def flush() -> None:
        nonlocal pending_bytes
        for group in pending.values():
            index = [i for i, _ in group]
            out[index] = resize_center_crop(torch.stack([x for _, x in group]), size)
        pending.clear()
        pending_bytes = 0

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=DeprecationWarning, module="torchvision")
        for i in range(count):
            data = first if i == 0 and first is not None else _load(items[i], names[i], limits)
            image = _decode_fast(data, names[i], limits)  # (3, H, W)
            shape = (int(image.shape[-2]), int(image.shape[-1]))
            if shape == (size, size):
                out[i] = image
                continue
            pending.setdefault(shape, []).append((i, image))
            pending_bytes += image.numel()
            if pending_bytes > RESIZE_BUFFER_BYTES or len(pending[shape]) >= 1024:
                flush()
    flush()
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
