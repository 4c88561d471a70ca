"""Our own FKD-style store: random crops relabelled every epoch by our labeler, written in SRe2L's
layout, so that LADD's fixed grid and "random crops stored for E epochs" compare at equal bytes.

    summary = write_store(dataset, labeler, "runs/rr_fkd", StoreConfig(epochs=25))
    data = store_training_data(dataset, "runs/rr_fkd", epochs=25, codec="topk:3,uint8")

The folder holds what an SRe2L user ships:

    images/new{c:03d}/class{c:03d}_id{i:03d}.png   the set's images (lossless), one folder a class
    labels/epoch_{e}/batch_{b}.tar                 a torch.save'd list per batch:
        [coords, flip, mix_index, mix_lam, mix_bbox, soft_label]
    ladd_store.json                                what made it, and its bytes

as SRe2L writes it (VILA-Lab/SRe2L SRe2L/relabel/generate_soft_label.py:222-224): coords a
float32 (B, 4) tensor of (top / H, left / W, height / H, width / W) of a RandomResizedCrop
(relabel/utils_fkd.py:21-25), flip a bool (B,) tensor (the crop flipped after the resize),
mix_index, mix_lam and mix_bbox None (no mix: --mix-type None, utils_fkd.py:241), soft_label the
labeler's logits on the crop, float16 (relabel.sh's --use-fp16). Only tensors and None: every
file loads with torch.load(weights_only=True). The rows of an epoch follow torch's
RandomSampler over the images in ImageFolder order with a generator seeded 42 and drawn once
per epoch (generate_soft_label.py:190-192; relabel.sh --fkd-seed 42), batches of 1024
(relabel.sh -b 1024), as SRe2L's own loader finds them again (utils_fkd.py:243-257). The crops
are RandomResizedCrop(scale=(0.08, 1), ratio=(3/4, 4/3)) (relabel.sh --min-scale-crops 0.08
--max-scale-crops 1) and a flip with p = 0.5, drawn from a torch.Generator seeded with
`crop_seed` (torchvision's get_params algorithm, without its global random state), cut from the
set's normalised images with torchvision's resized_crop (bilinear, antialiased).

Training on a store (`store_training_data`) is this module's own small path: the full images
with their hard labels, then every stored crop of the first E epochs with its label (softmax of
the stored logits, optionally through a LADD codec): the crops take the place of LADD's grid,
the protocol and the steps per pass are LADD's at the same number of labels. FKD's own
schedule (epoch e of training reads stored epoch e) is ladd.stores' replay.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from ladd.files import torch_save, write_json

__all__ = [
    "STORE_FORMAT",
    "StoreConfig",
    "StoreSummary",
    "draw_crop",
    "read_store",
    "store_label_bytes",
    "store_training_data",
    "write_store",
]

STORE_FORMAT = "ladd.fkd_store/1"
META_FILE = "ladd_store.json"
SRE2L_FKD_SEED = 42  # relabel.sh --fkd-seed 42
SRE2L_BATCH = 1024  # relabel.sh -b 1024
SRE2L_SCALE = (0.08, 1.0)  # relabel.sh --min-scale-crops 0.08 --max-scale-crops 1
RATIO = (3 / 4, 4 / 3)  # torchvision RandomResizedCrop's default ratio
COORD_BYTES = 4 * 4 + 1  # per crop: four float32 fractions and a bool flip


@dataclass(frozen=True)
class StoreConfig:
    """How a store is made (SRe2L's relabel defaults, module doc)."""

    epochs: int
    batch_size: int = SRE2L_BATCH
    fkd_seed: int = SRE2L_FKD_SEED
    crop_seed: int = 0
    min_scale: float = SRE2L_SCALE[0]
    max_scale: float = SRE2L_SCALE[1]
    fp16: bool = True

    def __post_init__(self) -> None:
        if not 1 <= int(self.epochs) <= 100_000:
            raise ValueError(f"epochs must be between 1 and 100,000, got {self.epochs}")
        if int(self.batch_size) < 1:
            raise ValueError(f"batch size must be >= 1, got {self.batch_size}")
        if not 0.0 < float(self.min_scale) <= float(self.max_scale) <= 1.0:
            raise ValueError(f"crop scale needs 0 < min <= max <= 1, got {self.min_scale}")


@dataclass(frozen=True)
class StoreSummary:
    """What a written store holds (also its ladd_store.json)."""

    folder: str
    format: str
    config: dict[str, Any]
    images: int
    num_classes: int
    class_names: list[str]
    image_order: list[int]  # the set's row of each ImageFolder index
    labeler: dict[str, Any] = field(default_factory=dict)
    label_bytes: int = 0  # the stored logits, all epochs
    coord_bytes: int = 0  # the stored coords and flips, all epochs
    source: str | None = None

    @property
    def label_bytes_per_image(self) -> float:
        return self.label_bytes / max(1, self.images)


def draw_crop(size: int, g: torch.Generator, scale: tuple[float, float]) -> tuple[int, ...]:
    """torchvision's RandomResizedCrop.get_params for a size x size image, drawn from `g`:
    (top, left, height, width)."""
    area = size * size
    log_ratio = (math.log(RATIO[0]), math.log(RATIO[1]))
    for _ in range(10):
        target = area * float(torch.empty(1).uniform_(scale[0], scale[1], generator=g))
        aspect = math.exp(float(torch.empty(1).uniform_(log_ratio[0], log_ratio[1], generator=g)))
        w = int(round(math.sqrt(target * aspect)))
        h = int(round(math.sqrt(target / aspect)))
        if 0 < w <= size and 0 < h <= size:
            i = int(torch.randint(0, size - h + 1, size=(1,), generator=g))
            j = int(torch.randint(0, size - w + 1, size=(1,), generator=g))
            return i, j, h, w
    return 0, 0, size, size  # the fallback centre crop of a square image is the whole image


def cut_stored(
    images: torch.Tensor, coords: torch.Tensor, flip: torch.Tensor, size: int
) -> torch.Tensor:
    """The stored crops of normalised images (B, C, H, W): coords (B, 4) fractions, flip (B,)
    -> (B, C, size, size). The pixels are read back from the fractions as SRe2L's loader does
    (coords x image side), rounded to whole pixels."""
    from torchvision.transforms import functional as TF

    h_img = int(images.shape[-1])
    out = []
    for x, c, f in zip(images, coords.tolist(), flip.tolist(), strict=True):
        i, j = int(round(c[0] * h_img)), int(round(c[1] * h_img))
        h, w = max(1, int(round(c[2] * h_img))), max(1, int(round(c[3] * h_img)))
        crop = TF.resized_crop(x, i, j, h, w, [size, size], antialias=True)
        out.append(crop.flip(-1) if f else crop)
    return torch.stack(out)


def _image_order(labels: torch.Tensor) -> list[int]:
    """The set's row of each ImageFolder index: classes in order, rows in order within one."""
    return sorted(range(len(labels)), key=lambda i: (int(labels[i]), i))


def _write_images(folder: Path, dataset: Any, order: list[int]) -> None:
    from PIL import Image

    from ladd.dense import set_uint8_images

    pixels = set_uint8_images(dataset)  # (M, C, H, W) uint8
    counts: dict[int, int] = {}
    for row in order:
        c = int(dataset.labels[row])
        i = counts.get(c, 0)
        counts[c] = i + 1
        path = folder / f"new{c:03d}" / f"class{c:03d}_id{i:03d}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(pixels[row].permute(1, 2, 0).numpy()).save(path)


@torch.no_grad()
def write_store(
    dataset: Any,
    labeler: Any,
    folder: str | Path,
    config: StoreConfig,
    *,
    device: str | torch.device = "cpu",
    write_images: bool = True,
) -> StoreSummary:
    """Relabel random crops of `dataset` (a DistilledSet, normalised as the labeler's inputs)
    for `config.epochs` epochs with `labeler` (a ladd.labeler.Labeler or checkpoint path) and
    write the store (module doc). Returns its summary (also written as ladd_store.json)."""
    from ladd.device import resolve_device
    from ladd.labeler import Labeler, load_labeler

    dev = resolve_device(device)
    if not isinstance(labeler, Labeler):
        labeler = load_labeler(labeler, device=dev)
    model = labeler.model.to(dev).eval()
    root = Path(folder)
    root.mkdir(parents=True, exist_ok=True)
    images = dataset.images.float()
    m, size = int(images.shape[0]), int(images.shape[-1])
    order = _image_order(dataset.labels.cpu())
    if write_images:
        _write_images(root / "images", dataset, order)
    by_index = images[torch.tensor(order)]  # (M, C, H, W) in ImageFolder order
    sampler_g = torch.Generator().manual_seed(int(config.fkd_seed))
    sampler = torch.utils.data.RandomSampler(range(m), generator=sampler_g)
    crop_g = torch.Generator().manual_seed(int(config.crop_seed))
    scale = (float(config.min_scale), float(config.max_scale))
    label_bytes = coord_bytes = 0
    k = 0
    for e in range(int(config.epochs)):
        rows = torch.tensor(list(sampler), dtype=torch.long)  # one draw per epoch, as SRe2L's
        for b, start in enumerate(range(0, m, int(config.batch_size))):
            idx = rows[start : start + int(config.batch_size)]
            boxes = [draw_crop(size, crop_g, scale) for _ in idx]
            flips = torch.rand(len(idx), generator=crop_g) < 0.5
            coords = torch.tensor(
                [(i / size, j / size, h / size, w / size) for i, j, h, w in boxes],
                dtype=torch.float32,
            )
            crops = cut_stored(by_index[idx], coords, flips, size)
            logits = model(crops.to(dev)).float().cpu()
            k = int(logits.shape[1])
            if config.fp16:
                logits = logits.half()
            batch = [coords, flips, None, None, None, logits]
            torch_save(root / "labels" / f"epoch_{e}" / f"batch_{b}.tar", batch)
            label_bytes += logits.numel() * logits.element_size()
            coord_bytes += len(idx) * COORD_BYTES
    meta = labeler.meta
    summary = StoreSummary(
        folder=str(root),
        format=STORE_FORMAT,
        config=asdict(config),
        images=m,
        num_classes=k,
        class_names=list(dataset.class_names or meta.class_names),
        image_order=order,
        labeler={
            "arch": meta.arch,
            "epoch": meta.epoch,
            "test_accuracy": meta.test_accuracy,
            "path": str(labeler.path) if labeler.path else None,
        },
        label_bytes=label_bytes,
        coord_bytes=coord_bytes,
        source=getattr(dataset, "source", None),
    )
    write_json(root / META_FILE, {**asdict(summary), "layout": "sre2l"}, indent=1)
    return summary


@dataclass(frozen=True)
class StoredCrops:
    """The crops of a store's first E epochs, in the set's rows: row (N,), coords (N, 4),
    flip (N,), logits (N, K) float32, epoch (N,)."""

    rows: torch.Tensor
    coords: torch.Tensor
    flip: torch.Tensor
    logits: torch.Tensor
    epoch: torch.Tensor
    summary: dict[str, Any]


def read_store(folder: str | Path, epochs: int | None = None) -> StoredCrops:
    """A store this module wrote, its first `epochs` epochs (None: all), read with
    torch.load(weights_only=True); the image order rebuilt from the seeded sampler."""
    root = Path(folder)
    meta = json.loads((root / META_FILE).read_text())
    if meta.get("format") != STORE_FORMAT:
        raise ValueError(f"{root}: not a store this version writes ({meta.get('format')!r})")
    cfg = meta["config"]
    total = int(cfg["epochs"])
    use = total if epochs is None else int(epochs)
    if not 1 <= use <= total:
        raise ValueError(f"{root} holds {total} epochs; {use} asked")
    m, bsz = int(meta["images"]), int(cfg["batch_size"])
    order = torch.tensor(meta["image_order"], dtype=torch.long)
    g = torch.Generator().manual_seed(int(cfg["fkd_seed"]))
    sampler = torch.utils.data.RandomSampler(range(m), generator=g)
    parts: dict[str, list[torch.Tensor]] = {k: [] for k in ("rows", "coords", "flip", "logits")}
    epoch_ids = []
    for e in range(use):
        rows = torch.tensor(list(sampler), dtype=torch.long)
        for b, start in enumerate(range(0, m, bsz)):
            path = root / "labels" / f"epoch_{e}" / f"batch_{b}.tar"
            coords, flip, _, _, _, logits = torch.load(path, weights_only=True)
            idx = rows[start : start + bsz]
            if coords.shape != (len(idx), 4) or logits.shape[0] != len(idx):
                raise ValueError(f"{path}: {coords.shape[0]} rows where the order gives {len(idx)}")
            parts["rows"].append(order[idx])  # ImageFolder index -> the set's row
            parts["coords"].append(coords.float())
            parts["flip"].append(flip.bool())
            parts["logits"].append(logits.float())
            epoch_ids.append(torch.full((len(idx),), e, dtype=torch.long))
    return StoredCrops(
        rows=torch.cat(parts["rows"]),
        coords=torch.cat(parts["coords"]),
        flip=torch.cat(parts["flip"]),
        logits=torch.cat(parts["logits"]),
        epoch=torch.cat(epoch_ids),
        summary=meta,
    )


def store_label_bytes(
    num_classes: int, crops_per_image: int, codec: str | None
) -> dict[str, float]:
    """Bytes per image of `crops_per_image` stored crops: their labels in `codec` (None: the
    store's float16 logits) and their coords and flips."""
    from ladd.codecs import parse_codec

    per_crop = 2 * num_classes if codec is None else parse_codec(codec).bytes_per_crop(num_classes)
    return {
        "label_bytes_per_image": float(per_crop * crops_per_image),
        "coord_bytes_per_image": float(COORD_BYTES * crops_per_image),
    }


def store_training_data(
    dataset: Any, folder: str | Path, *, epochs: int | None = None, codec: str | None = None
) -> Any:
    """LADD's training set with a store's crops in place of the grid (module doc): the M full
    images with their hard labels, then the stored crops of the first `epochs` epochs, each with
    softmax of its stored logits (through `codec`, a ladd.codecs spec, when given: the bytes a
    LADD file would hold). A ladd.training.TrainingData for ladd.plan.plan_training."""
    from ladd.codecs import EncodedDense, parse_codec
    from ladd.training import TrainingData

    crops = read_store(folder, epochs)
    images = dataset.images.float().cpu()
    m, size = int(images.shape[0]), int(images.shape[-1])
    labels = dataset.labels.cpu().long()
    k = int(crops.logits.shape[1])
    probs = torch.softmax(crops.logits, dim=1)  # (N, K)
    if codec is not None:
        spec = parse_codec(codec)
        enc = EncodedDense.encode(spec, probs.unsqueeze(1))  # (N, 1, K) through the codec
        probs = enc.decode().squeeze(1)
    cut = cut_stored(images[crops.rows], crops.coords, crops.flip, size)
    hard = F.one_hot(labels, k).float()
    return TrainingData(
        inputs=torch.cat([images, cut]).contiguous(),
        targets=torch.cat([hard, probs]).contiguous(),
        num_full=m,
        num_crops=int(cut.shape[0]),
        num_classes=k,
        num_images=m,
        classes=torch.cat([labels, labels[crops.rows]]),
        soft=torch.cat([torch.zeros(m, dtype=torch.bool), torch.ones(len(cut), dtype=torch.bool)]),
    )
