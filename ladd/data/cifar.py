"""CIFAR-10 and CIFAR-100: torchvision's files, or the project's shared CIFAR-10 JPEG archive.

When env LADD_SHARED_DATA names a folder holding `cifar10-jpg.tar.xz` (ImageFolder layout,
train/<class>/NNNN.jpg and test/<class>/NNNN.jpg), CIFAR-10 is read from it: one streaming
pass over the xz archive decodes both splits, which are then cached. Otherwise torchvision's
own binary files are read (downloaded on first use when allowed); they load fast enough that
they are not cached again.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from ladd.data.base import LoadContext, Source, SourceError, SourceNotFoundError
from ladd.data.cache import file_fingerprint, path_digest
from ladd.data.decode import ImageDecodeError, decode_images, parse_layout, read_image_tree
from ladd.data.imageset import ImageSet, SourceInfo

CIFAR10_CLASSES = (
    "airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck",
)  # fmt: skip
CIFAR100_CLASSES = (
    "apple", "aquarium_fish", "baby", "bear", "beaver", "bed", "bee", "beetle", "bicycle",
    "bottle", "bowl", "boy", "bridge", "bus", "butterfly", "camel", "can", "castle",
    "caterpillar", "cattle", "chair", "chimpanzee", "clock", "cloud", "cockroach", "couch",
    "crab", "crocodile", "cup", "dinosaur", "dolphin", "elephant", "flatfish", "forest", "fox",
    "girl", "hamster", "house", "kangaroo", "keyboard", "lamp", "lawn_mower", "leopard", "lion",
    "lizard", "lobster", "man", "maple_tree", "motorcycle", "mountain", "mouse", "mushroom",
    "oak_tree", "orange", "orchid", "otter", "palm_tree", "pear", "pickup_truck", "pine_tree",
    "plain", "plate", "poppy", "porcupine", "possum", "rabbit", "raccoon", "ray", "road",
    "rocket", "rose", "sea", "seal", "shark", "shrew", "skunk", "skyscraper", "snail", "snake",
    "spider", "squirrel", "streetcar", "sunflower", "sweet_pepper", "table", "tank",
    "telephone", "television", "tiger", "tractor", "train", "trout", "tulip", "turtle",
    "wardrobe", "whale", "willow_tree", "wolf", "woman", "worm",
)  # fmt: skip
CIFAR10_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR10_STD = (0.2023, 0.1994, 0.2010)
CIFAR100_MEAN = (0.5071, 0.4865, 0.4409)
CIFAR100_STD = (0.2673, 0.2564, 0.2762)

CIFAR10_ARCHIVE = "cifar10-jpg.tar.xz"


def shared_cifar10_archive() -> Path | None:
    """The shared CIFAR-10 JPEG archive named by env LADD_SHARED_DATA, when it exists."""
    folder = os.environ.get("LADD_SHARED_DATA")
    if not folder:
        return None
    archive = Path(folder).expanduser() / CIFAR10_ARCHIVE
    return archive if archive.is_file() else None


class CifarSource(Source):
    """CIFAR-10 / CIFAR-100 at 32 px (other sizes are resized on load)."""

    default_size = 32
    native_size = 32

    def __init__(self, name: str, class_names, mean, std, shared_archive: bool) -> None:
        self.name = name
        self.class_names = tuple(class_names)
        self.mean, self.std = mean, std
        self.shared_archive = shared_archive

    def info(self, image_size: int | None = None) -> SourceInfo:
        return SourceInfo(
            self.name, self.class_names, self.resolve_size(image_size), self.mean, self.std
        )

    def _archive(self) -> Path | None:
        return shared_cifar10_archive() if self.shared_archive else None

    def uses_cache(self, ctx: LoadContext) -> bool:
        return self._archive() is not None

    def cache_key(self, split: str, image_size: int, ctx: LoadContext) -> str:
        archive = self._archive()
        return f"{self.name}-jpg-{path_digest(archive)}-{split}-{image_size}px"

    def fingerprint(self, ctx: LoadContext) -> str | None:
        archive = self._archive()
        return file_fingerprint(archive) if archive is not None else None

    def decode(self, split: str, image_size: int, ctx: LoadContext) -> dict[str, ImageSet]:
        archive = self._archive()
        if archive is not None:
            return self._decode_archive(archive)
        return {split: self._load_torchvision(split, ctx)}

    def _decode_archive(self, archive: Path) -> dict[str, ImageSet]:
        """Both splits from one streaming pass over the xz archive."""
        tree = read_image_tree(archive)
        try:
            layout = parse_layout(tree.paths, archive)
        except ValueError as err:
            raise ImageDecodeError(str(err)) from err
        if layout.classes != self.class_names or set(layout.splits) != {"train", "test"}:
            raise ImageDecodeError(
                f"{archive}: expected train/ and test/ with the {len(self.class_names)} "
                f"{self.name} classes, found {list(layout.splits)} with {list(layout.classes)}"
            )
        sets = {}
        for split in ("train", "test"):
            paths, labels = layout.items(split)
            images = decode_images([tree.files[p] for p in paths], 32, names=paths)
            sets[split] = ImageSet(images, torch.tensor(labels), self.info(32), split)
        return sets

    def _load_torchvision(self, split: str, ctx: LoadContext) -> ImageSet:
        from torchvision.datasets import CIFAR10, CIFAR100

        dataset_cls = CIFAR10 if self.name == "cifar10" else CIFAR100
        root = ctx.data_root
        try:
            dataset = dataset_cls(root=str(root), train=split == "train", download=ctx.download)
        except RuntimeError as err:  # torchvision: "Dataset not found or corrupted"
            raise SourceNotFoundError(
                f"{self.name}: not found under {root} ({err}); pass download=True "
                f"(--download), or point --data-root / LADD_DATA_ROOT at a folder holding it"
            ) from err
        except OSError as err:  # network failures while downloading
            raise SourceNotFoundError(
                f"{self.name}: not under {root}, and downloading it failed ({err})"
            ) from err
        images = torch.from_numpy(dataset.data).permute(0, 3, 1, 2).contiguous()  # (N, 3, 32, 32)
        labels = torch.tensor(dataset.targets, dtype=torch.long)
        if labels.numel() and int(labels.max()) >= len(self.class_names):
            raise SourceError(f"{self.name}: labels beyond {len(self.class_names)} classes")
        return ImageSet(images, labels, self.info(32), split)


def cifar_sources() -> list[Source]:
    return [
        CifarSource("cifar10", CIFAR10_CLASSES, CIFAR10_MEAN, CIFAR10_STD, shared_archive=True),
        CifarSource(
            "cifar100", CIFAR100_CLASSES, CIFAR100_MEAN, CIFAR100_STD, shared_archive=False
        ),
    ]
