"""Soft-label stores written as the upstream relabel scripts write them (not a test module).

Each writer walks the images as that script's DataLoader does and saves the same Python
structures with torch.save: a collated FloatTensor of crop boxes, a bool tensor of flips, the
CutMix partner as torch.randperm's int64 (uint8 for LPQLD), the Beta draw as numpy's Python float,
the box as np.clip's numpy.int64 (0-dim uint8 tensors for LPQLD), the labels in fp16, and the
sampler files (JSON or torch.save'd dict). A random "teacher" stands in for the network. Every
writer returns what it wrote, batch by batch, for the tests to compare the readers against:
    truth[epoch][batch] = {"rows", "coords", "flip", "mix_index", "lam", "box", "labels", ...}

Upstream references (the lines each writer follows):
  SRe2L  VILA-Lab/SRe2L SRe2L/relabel/generate_soft_label.py:190-224, relabel/utils_fkd.py:10-32,
         184-217 (coords as fractions, flip, rand_bbox with np.clip, cutmix)
  LPLD   he-y/soft-label-pruning-for-dataset-distillation
         relabel_and_validate/generate_soft_label_pruning.py:298-362 (sampler_indices_epoch.json,
         drop_last and the early stop when pruning)
  EDC    shaoshitong/EDC Branch_full_ImageNet_1k/relabel/generate_soft_label_with_db.py:205-273,
         relabel/utils_fkd.py:19-24 (coords over shape[2]/shape[1]), 66 and 92 (status)
  HALD   Jiacheng8/HALD relabel/relabel_slc.py:167-224, 252, 278-280
  LPQLD  he-y/soft-label-pruning-quantization-for-dataset-distillation
         relabel_and_validate/generate_soft_label_pruning_batch.py:331-359, 395-450
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import torch
from PIL import Image


def write_images(root: Path, classes: int, ipc: int, size: int, *, names: str = "sre2l") -> Path:
    """An image folder as SRe2L (new000/class000_id000.jpg) or RDED (00000/...) name it."""
    for c in range(classes):
        folder = root / (f"new{c:03d}" if names == "sre2l" else f"{c:05d}")
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(ipc):
            g = torch.Generator().manual_seed(7 + c * ipc + i)
            px = torch.randint(0, 256, (size, size, 3), generator=g, dtype=torch.uint8)
            name = (
                f"class{c:03d}_id{i:03d}.png" if names == "sre2l" else f"class{c:05d}_id{i:05d}.png"
            )
            Image.fromarray(px.numpy()).save(folder / name)
    return root


def _crop_params(size: int, scale=(0.08, 1.0), ratio=(3 / 4, 4 / 3)) -> tuple[int, int, int, int]:
    """torchvision RandomResizedCrop.get_params on a size x size image (global torch RNG)."""
    area = size * size
    log_ratio = torch.log(torch.tensor(ratio))
    for _ in range(10):
        target = area * torch.empty(1).uniform_(scale[0], scale[1]).item()
        aspect = math.exp(torch.empty(1).uniform_(log_ratio[0], log_ratio[1]).item())
        w = int(round(math.sqrt(target * aspect)))
        h = int(round(math.sqrt(target / aspect)))
        if 0 < w <= size and 0 < h <= size:
            i = torch.randint(0, size - h + 1, size=(1,)).item()
            j = torch.randint(0, size - w + 1, size=(1,)).item()
            return i, j, h, w
    return 0, 0, size, size


def _rand_bbox(size: tuple[int, ...], lam: float) -> tuple:
    """SRe2L's rand_bbox: W = size[2], H = size[3]; np.clip gives numpy.int64 corners."""
    w, h = size[2], size[3]
    cut = np.sqrt(1.0 - lam)
    cut_w, cut_h = int(w * cut), int(h * cut)
    cx, cy = np.random.randint(w), np.random.randint(h)
    return (
        np.clip(cx - cut_w // 2, 0, w),
        np.clip(cy - cut_h // 2, 0, h),
        np.clip(cx + cut_w // 2, 0, w),
        np.clip(cy + cut_h // 2, 0, h),
    )


def _batch(rows: list[int], size: int, classes: int, mix: str | None, edc: bool = False) -> dict:
    """One batch as the relabel loop sees it after the loader and mix_aug."""
    coords, flips = [], []
    for _ in rows:
        i, j, h, w = _crop_params(size)
        if edc:  # EDC: (i / shape[2], j / shape[1], h / shape[2], w / shape[1]) of a C,H,W tensor
            coords.append(torch.FloatTensor((i / size, j / size, h / size, w / size)))
        else:  # SRe2L: (i / img.size[1], j / img.size[0], ...) of a PIL image (W, H)
            coords.append(torch.FloatTensor((i / size, j / size, h / size, w / size)))
        flips.append(bool(torch.rand(1) < 0.5))
    b = len(rows)
    out = {
        "rows": torch.tensor(rows, dtype=torch.long),
        "coords": torch.stack(coords),  # default_collate of FloatTensors
        "flip": torch.tensor(flips),  # default_collate of Python bools: torch.bool
        "mix_index": None,
        "lam": None,
        "box": None,
    }
    if mix == "cutmix":
        out["mix_index"] = torch.randperm(b)
        out["lam"] = np.random.beta(1.0, 1.0)  # a Python float
        out["box"] = list(_rand_bbox((b, 3, size, size), out["lam"]))
    elif mix == "mixup":
        out["mix_index"] = torch.randperm(b)
        out["lam"] = np.random.beta(0.8, 0.8)
    out["labels"] = (torch.randn(b, classes) * 3).half()  # the teacher's logits, --use-fp16
    return out


def _sampler(n: int, seed: int = 42) -> torch.utils.data.RandomSampler:
    g = torch.Generator()
    g.manual_seed(seed)
    return torch.utils.data.RandomSampler(range(n), generator=g)


def write_sre2l(
    root: Path,
    num_images: int,
    classes: int,
    *,
    epochs: int = 2,
    batch: int = 4,
    size: int = 16,
    mix: str | None = "cutmix",
    seed: int = 0,
) -> list[list[dict]]:
    """SRe2L/CDA/FADRM/CV-DD: epoch_{e}/batch_{b}.tar = [coords, flip, mix_index, mix_lam,
    mix_bbox, output.cpu()] (generate_soft_label.py:222-224), images from a RandomSampler
    seeded 42 (lines 190-192)."""
    torch.manual_seed(seed)
    np.random.seed(seed)
    sampler = _sampler(num_images)
    truth = []
    for e in range(epochs):
        order = list(sampler)
        folder = root / f"epoch_{e}"
        folder.mkdir(parents=True, exist_ok=True)
        batches = []
        for b in range(math.ceil(num_images / batch)):
            t = _batch(order[b * batch : (b + 1) * batch], size, classes, mix)
            torch.save(
                [t["coords"], t["flip"], t["mix_index"], t["lam"], t["box"], t["labels"]],
                folder / f"batch_{b}.tar",
            )
            batches.append(t)
        truth.append(batches)
    return truth


def write_lpld(
    root: Path,
    num_images: int,
    classes: int,
    *,
    epochs: int = 2,
    batch: int = 4,
    size: int = 16,
    prune_ratio: float = 0.0,
    seed: int = 1,
) -> list[list[dict]]:
    """LPLD: SRe2L's files plus sampler_indices_epoch.json; with pruning the last partial batch
    is dropped and generation stops after int(epochs * batches * (1 - ratio)) batches
    (generate_soft_label_pruning.py:301-326, 355-361)."""
    torch.manual_seed(seed)
    np.random.seed(seed)
    sampler = _sampler(num_images)
    drop_last = prune_ratio > 0
    per_epoch = num_images // batch if drop_last else math.ceil(num_images / batch)
    total = int(epochs * per_epoch * (1 - prune_ratio))
    run_epochs = total // per_epoch + 1
    indices: dict[str, list[int]] = {}
    truth = []
    counter = 0
    for e in range(run_epochs):
        order = list(sampler)
        folder = root / f"epoch_{e}"
        folder.mkdir(parents=True, exist_ok=True)
        batches = []
        for b in range(per_epoch):
            t = _batch(order[b * batch : (b + 1) * batch], size, classes, "cutmix")
            torch.save(
                [t["coords"], t["flip"], t["mix_index"], t["lam"], t["box"], t["labels"]],
                folder / f"batch_{b}.tar",
            )
            indices.setdefault(str(e), [])
            indices[str(e)] += t["rows"].tolist()
            batches.append(t)
            counter += 1
            if counter == total:  # line 360: stops this epoch only; later epochs run whole
                break
        truth.append(batches)
    (root / "sampler_indices_epoch.json").write_text(json.dumps(indices))
    return truth


def write_edc(
    root: Path,
    num_images: int,
    classes: int,
    *,
    epochs: int = 2,
    batch: int = 4,
    size: int = 16,
    seed: int = 2,
) -> list[list[dict]]:
    """EDC: [coords, flip, mix_index, mix_lam, mix_bbox, output, index, indices_status]
    (generate_soft_label_with_db.py:271); status zeros(2, 2) int per row (utils_fkd.py:92);
    the label is the mean of the teachers' logits (line 266)."""
    torch.manual_seed(seed)
    np.random.seed(seed)
    sampler = _sampler(num_images)
    truth = []
    for e in range(epochs):
        order = list(sampler)
        folder = root / f"epoch_{e}"
        folder.mkdir(parents=True, exist_ok=True)
        batches = []
        for b in range(math.ceil(num_images / batch)):
            t = _batch(order[b * batch : (b + 1) * batch], size, classes, "cutmix", edc=True)
            teachers = torch.stack([t["labels"].float(), (torch.randn(len(t["rows"]), classes))])
            t["labels"] = teachers.mean(0).half()
            status = torch.zeros(len(t["rows"]), 2, 2).int()  # collated torch.zeros(2,2).int()
            torch.save(
                [
                    t["coords"],
                    t["flip"],
                    t["mix_index"],
                    t["lam"],
                    t["box"],
                    t["labels"],
                    t["rows"],  # `index` from the loader: int64
                    status,
                ],
                folder / f"batch_{b}.tar",
            )
            batches.append(t)
        truth.append(batches)
    return truth


def write_hald(
    root: Path,
    num_images: int,
    classes: int,
    *,
    epochs: int = 2,
    batch: int = 4,
    size: int = 16,
    temperature: float = 20.0,
    seed: int = 3,
) -> list[list[dict]]:
    """HALD: per epoch a randperm seeded 42 + epoch (relabel_slc.py:172-176) saved in
    sampler_indices_dict.pt; epoch_{e}.tar = [[coords.half(), flip, mix_index, mix_lam,
    mix_bbox, softmax(out / T).half()], ...] (lines 252, 278-280, 222-223)."""
    torch.manual_seed(seed)
    np.random.seed(seed)
    root.mkdir(parents=True, exist_ok=True)
    info: dict[str, list[int]] = {}
    for e in range(epochs):
        g = torch.Generator()
        g.manual_seed(42 + e)
        info[str(e)] = torch.randperm(num_images, generator=g).tolist()
    torch.save(info, root / "sampler_indices_dict.pt")
    truth = []
    for e in range(epochs):
        order = info[str(e)]
        batches, saved = [], []
        for b in range(math.ceil(num_images / batch)):
            t = _batch(order[b * batch : (b + 1) * batch], size, classes, "cutmix")
            t["coords"] = t["coords"].half()
            t["labels"] = torch.softmax(t["labels"].float() / temperature, dim=1).half()
            saved.append([t["coords"], t["flip"], t["mix_index"], t["lam"], t["box"], t["labels"]])
            batches.append(t)
        torch.save(saved, root / f"epoch_{e}.tar")
        truth.append(batches)
    return truth


def write_lpqld(
    root: Path,
    num_images: int,
    classes: int,
    *,
    epochs: int = 2,
    batch: int = 4,
    size: int = 16,
    top_k: int = 3,
    prune_ratio: float = 0.5,
    seed: int = 4,
) -> list[list[dict]]:
    """LPQLD with --label_quantization MR-k: flat batch_{n}.tar = [coords.half(), flip,
    mix_index.to(uint8), mix_lam, [uint8 0-dim tensors], topk values.half(), indices.short()]
    and sampler_indices_batch.json {n: indices} (generate_soft_label_pruning_batch.py:
    331-359, 395-450)."""
    torch.manual_seed(seed)
    np.random.seed(seed)
    root.mkdir(parents=True, exist_ok=True)
    sampler = _sampler(num_images)
    drop_last = prune_ratio > 0
    per_epoch = num_images // batch if drop_last else math.ceil(num_images / batch)
    total = int(epochs * per_epoch * (1 - prune_ratio))
    run_epochs = total // per_epoch + 1
    indices: dict[str, list[int]] = {}
    truth: list[list[dict]] = []
    counter = 0
    for _ in range(run_epochs):
        order = list(sampler)
        batches = []
        for b in range(per_epoch):
            t = _batch(order[b * batch : (b + 1) * batch], size, classes, "cutmix")
            full = t["labels"].float()
            top = torch.topk(full, top_k, dim=1)
            t["labels"] = top.values.half()
            t["indices"] = top.indices.short()
            coords = t["coords"].half()
            t["coords"] = coords
            box = [torch.tensor(v, dtype=torch.uint8) for v in t["box"]]
            torch.save(
                [
                    coords,
                    t["flip"],
                    t["mix_index"].to(torch.uint8),
                    t["lam"],
                    box,
                    t["labels"],
                    t["indices"],
                ],
                root / f"batch_{counter}.tar",
            )
            indices[str(counter)] = t["rows"].tolist()
            batches.append(t)
            counter += 1
            if counter == total:  # line 455
                break
        total -= 1  # line 458: upstream lowers the target after every epoch
        truth.append(batches)
    (root / "sampler_indices_batch.json").write_text(json.dumps(indices))
    return truth
