"""`imagefolder:<path>`: a user's own images, one subfolder per class.

<path> is a folder, a .tar/.tar.gz/.tar.xz or a .zip. With top-level train/ and test/ (or
val/) folders those are the splits; otherwise everything is the train split. Images are
resized to image_size (default: the first image's side when it is square, else 32). The
normalisation statistics are measured on the train split and stored with the cached tensors.
"""

from __future__ import annotations

import hashlib
import warnings
from pathlib import Path

import torch

from ladd.data.base import (
    LoadContext,
    Source,
    SourceError,
    SourceNotFoundError,
    default_data_root,
)
from ladd.data.cache import default_cache_dir, file_fingerprint, path_digest
from ladd.data.decode import (
    ImageDecodeError,
    channel_stats,
    check_image_header,
    decode_images,
    is_archive,
    list_image_files,
    parse_layout,
    read_image_tree,
)
from ladd.data.imageset import ImageSet, SourceInfo
from ladd.limits import current_limits

IMAGEFOLDER_PREFIX = "imagefolder:"
FALLBACK_SIZE = 32

# Infos of folders decoded in this process, so that source_info need not decode again.
_KNOWN_INFOS: dict[tuple[str, int | None], SourceInfo] = {}


class ImageFolderSource(Source):
    """Images in class folders; `image_size=None` means "the data's own size"."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path).expanduser().resolve()
        self.name = f"{IMAGEFOLDER_PREFIX}{self.path}"

    def resolve_size(self, image_size: int | None) -> int:
        if image_size is not None:
            return super().resolve_size(image_size)
        return 0  # decided by the first image; "auto" in cache keys

    def cache_key(self, split: str, image_size: int, ctx: LoadContext) -> str:
        size = f"{image_size}px" if image_size else "auto"
        return f"imagefolder-{self.path.name}-{path_digest(self.path)}-{split}-{size}"

    def fingerprint(self, ctx: LoadContext) -> str | None:
        if not self.path.exists():
            return None
        if self.path.is_file():
            return file_fingerprint(self.path)
        digest = hashlib.sha1()  # over the files the decode reads (symlinks followed once)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # skipped links are reported by the decode itself
            files = list_image_files(self.path).files
        for rel, item in files.items():
            stat = item.stat()
            digest.update(f"{rel}|{stat.st_size}|{stat.st_mtime_ns}\n".encode())
        return digest.hexdigest()[:16]

    def load(self, split: str, image_size: int | None, ctx: LoadContext) -> ImageSet:
        loaded = super().load(split, image_size, ctx)
        _KNOWN_INFOS[(str(self.path), image_size)] = loaded.info
        return loaded

    def info(self, image_size: int | None = None, ctx: LoadContext | None = None) -> SourceInfo:
        """Class names, size and train statistics; decodes (and caches) the train split if this
        folder has not been seen yet, since the statistics need the pixels."""
        known = _KNOWN_INFOS.get((str(self.path), image_size))
        if known is not None:
            return known
        if ctx is None:
            ctx = LoadContext(default_data_root(), default_cache_dir())
        return self.load("train", image_size, ctx).info

    def decode(self, split: str, image_size: int, ctx: LoadContext) -> dict[str, ImageSet]:
        if not self.path.exists():
            raise SourceNotFoundError(f"{self.name}: no such folder or archive")
        if self.path.is_file() and not is_archive(self.path):
            raise SourceError(f"{self.name}: not a folder or a .tar/.tar.gz/.tar.xz/.zip archive")
        tree = read_image_tree(self.path)
        try:
            layout = parse_layout(tree.paths, self.path)
        except ValueError as err:
            raise SourceError(str(err)) from err
        if split == "test" and "test" not in layout.splits:
            raise SourceError(
                f"{self.name}: has no test split (needs top-level train/ and test/ folders; "
                "without them every image is in the train split)"
            )
        size = image_size
        first_path = layout.items("train")[0][0]
        side_w, side_h = check_image_header(tree.read(first_path), first_path, current_limits())
        if not size:
            size = side_h if side_h == side_w else FALLBACK_SIZE
        large = min(side_h, side_w) >= 2 * size  # photographs: reduced-scale JPEG decoding

        decoded: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
        for name in sorted(layout.splits):
            paths, labels = layout.items(name)
            try:
                images = decode_images(
                    [tree.files[p] for p in paths], size, names=paths, large=large
                )
            except ImageDecodeError as err:
                raise SourceError(f"{self.name}: {err}") from err
            decoded[name] = (images, torch.tensor(labels, dtype=torch.long))
        mean, std = channel_stats(decoded["train"][0])
        info = SourceInfo(self.name, layout.classes, size, mean, std)
        return {name: ImageSet(x, y, info, name) for name, (x, y) in decoded.items()}
