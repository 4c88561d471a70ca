"""The ten-class ImageNet subsets of the GLaD/MTT protocol, read from a user's ImageNet folders.

The layout is torchvision's: <root>/train/<wnid>/*.JPEG and <root>/val/<wnid>/*.JPEG with all
1000 WordNet-id folders, so that the sorted wnids give the class indices 0..999. The subsets'
"test" split is the original ImageNet val split. Images are decoded at 128 px (short side
resized, centre crop) and cached.
"""

from __future__ import annotations

import re
from pathlib import Path

import torch

from ladd.data.base import LoadContext, Source, SourceError, SourceNotFoundError
from ladd.data.cache import path_digest
from ladd.data.decode import IMAGE_SUFFIXES, decode_images
from ladd.data.imageset import ImageSet, SourceInfo

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

# (ImageNet class index, readable name), in the subset's label order 0..9.
IMAGENET_SUBSETS: dict[str, tuple[tuple[int, str], ...]] = {
    "imagenette": (
        (0, "tench"), (217, "English springer"), (482, "cassette player"), (491, "chain saw"),
        (497, "church"), (566, "French horn"), (569, "garbage truck"), (571, "gas pump"),
        (574, "golf ball"), (701, "parachute"),
    ),
    "imagewoof": (
        (193, "Australian terrier"), (182, "Border terrier"), (258, "Samoyed"), (162, "beagle"),
        (155, "Shih-Tzu"), (167, "English foxhound"), (159, "Rhodesian ridgeback"),
        (273, "dingo"), (207, "golden retriever"), (229, "Old English sheepdog"),
    ),
    "imagefruit": (
        (953, "pineapple"), (954, "banana"), (949, "strawberry"), (950, "orange"),
        (951, "lemon"), (957, "pomegranate"), (952, "fig"), (945, "bell pepper"),
        (943, "cucumber"), (948, "Granny Smith"),
    ),
    "imagemeow": (
        (281, "tabby cat"), (282, "tiger cat"), (283, "Persian cat"), (284, "Siamese cat"),
        (285, "Egyptian cat"), (291, "lion"), (292, "tiger"), (290, "jaguar"),
        (289, "snow leopard"), (287, "lynx"),
    ),
    "imagesquawk": (
        (84, "peacock"), (130, "flamingo"), (88, "macaw"), (144, "pelican"),
        (145, "king penguin"), (22, "bald eagle"), (96, "toucan"), (9, "ostrich"),
        (100, "black swan"), (89, "sulphur-crested cockatoo"),
    ),
    "imageyellow": (
        (309, "bee"), (986, "yellow lady's slipper"), (954, "banana"), (951, "lemon"),
        (987, "corn"), (779, "school bus"), (599, "honeycomb"), (291, "lion"),
        (72, "garden spider"), (11, "goldfinch"),
    ),
}  # fmt: skip

_WNID = re.compile(r"n\d{8}")
_LAYOUT_HINT = (
    "expected ImageNet in torchvision's layout, <root>/train/<wnid>/*.JPEG and "
    "<root>/val/<wnid>/*.JPEG (all 1000 wnid folders); set --data-root or LADD_DATA_ROOT"
)


class ImageNetSubsetSource(Source):
    """One ten-class ImageNet subset, 128 px by default."""

    default_size = 128

    def __init__(self, name: str) -> None:
        self.name = name
        self.classes = IMAGENET_SUBSETS[name]

    def info(self, image_size: int | None = None) -> SourceInfo:
        names = tuple(name for _, name in self.classes)
        return SourceInfo(
            self.name, names, self.resolve_size(image_size), IMAGENET_MEAN, IMAGENET_STD
        )

    def cache_key(self, split: str, image_size: int, ctx: LoadContext) -> str:
        return f"{self.name}-{path_digest(ctx.data_root)}-{split}-{image_size}px"

    def imagenet_root(self, ctx: LoadContext) -> Path:
        """<data_root> or <data_root>/imagenet, whichever holds train/."""
        for candidate in (ctx.data_root, ctx.data_root / "imagenet"):
            if (candidate / "train").is_dir():
                return candidate
        raise SourceNotFoundError(
            f"{self.name}: no ImageNet train/ folder under {ctx.data_root} "
            f"(nor {ctx.data_root / 'imagenet'}); {_LAYOUT_HINT}"
        )

    def wnids(self, root: Path) -> list[str]:
        """All 1000 wnids, sorted: list index == torchvision's ImageNet class index."""
        found = sorted(
            p.name for p in (root / "train").iterdir() if p.is_dir() and _WNID.fullmatch(p.name)
        )
        if len(found) != 1000:
            raise SourceNotFoundError(
                f"{self.name}: {root / 'train'} holds {len(found)} WordNet-id folders, "
                f"not 1000, so class indices cannot be read off; {_LAYOUT_HINT}"
            )
        return found

    def decode(self, split: str, image_size: int, ctx: LoadContext) -> dict[str, ImageSet]:
        root = self.imagenet_root(ctx)
        wnids = self.wnids(root)
        folder = root / ("train" if split == "train" else "val")
        files: list[Path] = []
        labels: list[int] = []
        for label, (index, _) in enumerate(self.classes):
            class_dir = folder / wnids[index]
            if not class_dir.is_dir():
                raise SourceNotFoundError(
                    f"{self.name}: class folder {class_dir} is missing; {_LAYOUT_HINT}"
                )
            members = sorted(p for p in class_dir.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
            if not members:
                raise SourceNotFoundError(f"{self.name}: no images in {class_dir}")
            files += members
            labels += [label] * len(members)
        if not files:
            raise SourceError(f"{self.name}: nothing to load in {folder}")
        images = decode_images(files, image_size, names=[str(p) for p in files], large=True)
        info = self.info(image_size)
        return {split: ImageSet(images, torch.tensor(labels, dtype=torch.long), info, split)}


def imagenet_sources() -> list[Source]:
    return [ImageNetSubsetSource(name) for name in IMAGENET_SUBSETS]
