"""LPQLD's flat store: `{store}/batch_{n}.tar` numbered across epochs, plus
`sampler_indices_batch.json` = {str(n): the batch's image indices}.

he-y/soft-label-pruning-quantization-for-dataset-distillation
relabel_and_validate/generate_soft_label_pruning_batch.py: the batches of every epoch go to one
folder under a running counter (lines 350-351, 446-447) and the counter keys each batch's image
indices in the JSON (lines 448-450, 358-359). For storage it keeps fp16 crop boxes, the mix
partner as uint8, the CutMix box as four 0-dim uint8 tensors (lines 418-426), and with
`--label_quantization MR-k` the top-k logits (fp16) with their class indices (int16, lines
395-414): `[coords, flip, mix_index, mix_lam, mix_bbox, values, indices]` (line 436). Training
(train_FKD_LPQLD.py:753-764, "MR") takes softmax(values / T) over the kept k and scatters it into
zeros of length K. Without quantization the list is SRe2L's six elements. With RandAugment
(`--use_rand_aug`) its parameters are stored too (line 434): those stores are refused here (the
augmentation is not replayed). Pruned runs drop each epoch's last partial batch (line 334).

The epochs are not marked in the files: an epoch ends where a batch names an image the epoch
has already used (each epoch is one permutation of the images, so the next epoch's first batch
always meets one of them).
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Any

import torch

from ladd.limits import current_limits
from ladd.stores.base import SoftLabelStore, StoreBatch, StoreError, StoreInfo, StoreReader
from ladd.stores.reading import fkd_batch, load_store_file, read_json

__all__ = ["LpqldReader", "LpqldStore"]

_BATCH = re.compile(r"batch_(\d+)\.tar")
INDICES = "sampler_indices_batch.json"


class LpqldStore(SoftLabelStore):
    family = "lpqld"
    title = "LPQLD's flat store (top-k logits + int16 class indices)"

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        found: dict[int, Path] = {}
        for p in root.iterdir():
            m = _BATCH.fullmatch(p.name)
            if m and p.is_file():
                found[int(m.group(1))] = p
        if not found or sorted(found) != list(range(len(found))):
            raise StoreError(root, f"batch_<n>.tar files are not numbered 0..{len(found) - 1}")
        self.files = [found[n] for n in range(len(found))]
        path = root / INDICES
        raw = read_json(path)
        if not isinstance(raw, dict):
            raise StoreError(path, "is not a map of batch -> image indices")
        limits = current_limits()
        self.rows: list[torch.Tensor] = []
        for n in range(len(self.files)):
            lst = raw.get(str(n))
            if (
                not isinstance(lst, list)
                or not lst
                or not all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in lst)
            ):
                raise StoreError(path, f"batch {n} has no list of image indices")
            limits.check_images(len(lst), str(path))
            self.rows.append(torch.tensor(lst, dtype=torch.long))
        # epoch boundaries: a batch that meets an image its epoch already used starts the next
        self.per_epoch = len(self.files)
        seen: set[int] = set()
        for n, r in enumerate(self.rows):
            ids = r.tolist()
            if seen.intersection(ids):
                self.per_epoch = n
                break
            seen.update(ids)
        self.images_in_epoch = sum(int(r.numel()) for r in self.rows[: self.per_epoch])
        self.num_classes: int | None = None
        self.first = self.batch_at(0)
        self.batch_size = int(self.rows[0].numel())
        self._info: StoreInfo | None = None

    @property
    def epochs(self) -> int:
        return len(self.files) // self.per_epoch

    def bind_images(self, count: int) -> None:
        top = max(int(r.max()) for r in self.rows)
        if top >= count:
            raise StoreError(self.root / INDICES, f"names image {top} of a folder of {count}")

    def bind_classes(self, k: int) -> None:
        """The class count the top-k indices scatter into (the set's)."""
        self.num_classes = int(k)
        self._info = None

    def batches(self, epoch: int) -> int:
        return self.per_epoch

    def batch_sizes(self, epoch: int) -> list[int]:
        first = epoch * self.per_epoch
        return [int(r.numel()) for r in self.rows[first : first + self.per_epoch]]

    def batch(self, epoch: int, index: int) -> StoreBatch:
        self.check_batch(epoch, index)
        return self.batch_at(epoch * self.per_epoch + index)

    def batch_at(self, n: int) -> StoreBatch:
        path = self.files[n]
        obj = load_store_file(path)
        rows = self.rows[n]
        if isinstance(obj, (list, tuple)) and len(obj) == 8:
            raise StoreError(path, "stores RandAugment parameters (--use_rand_aug): not replayed")
        if not isinstance(obj, (list, tuple)) or len(obj) not in (6, 7):
            raise StoreError(path, "expected LPQLD's list of 6 or 7 stored elements")
        if len(obj) == 6:  # no label quantization: SRe2L's list with fp16 boxes
            return fkd_batch(obj, path, rows)
        out = fkd_batch(list(obj[:6]), path, rows, label_kind="topk_logits")
        idx = obj[6]
        if (
            not isinstance(idx, torch.Tensor)
            or idx.is_floating_point()
            or tuple(idx.shape) != tuple(out.labels.shape)
        ):
            raise StoreError(path, "its class indices do not match its top-k values")
        idx = idx.long()
        if idx.numel() and int(idx.min()) < 0:
            raise StoreError(path, "its class indices are negative")
        if self.num_classes is not None and idx.numel() and int(idx.max()) >= self.num_classes:
            raise StoreError(
                path, f"names class {int(idx.max())} of a set of {self.num_classes} classes"
            )
        return StoreBatch(
            rows=out.rows,
            coords=out.coords,
            flip=out.flip,
            labels=out.labels,
            label_kind="topk_logits",
            label_indices=idx,
            mix=out.mix,
            mix_index=out.mix_index,
            mix_lam=out.mix_lam,
            mix_box=out.mix_box,
        )

    def digest(self) -> str:
        h = hashlib.sha256(self.family.encode())
        for p in self.files:
            h.update(f"{p.name}:{p.stat().st_size};".encode())
        h.update((self.root / INDICES).read_bytes())
        h.update(self.files[0].read_bytes())
        return h.hexdigest()[:20]

    def info(self) -> StoreInfo:
        if self._info is None:
            first = self.first
            k = first.labels.shape[1] if first.label_kind == "topk_logits" else None
            row_bytes = first.labels.shape[1] * first.labels.element_size()
            if first.label_indices is not None:
                row_bytes += first.labels.shape[1] * 2  # int16 on disk
            files = [*self.files, self.root / INDICES]
            rows = sum(int(r.numel()) for r in self.rows)
            num_classes = self.num_classes
            if first.label_kind == "logits":
                num_classes = int(first.labels.shape[1])
            self._info = StoreInfo(
                family=self.family,
                title=self.title,
                root=self.root,
                epochs=self.epochs,
                batches_per_epoch=self.per_epoch,
                batch_size=self.batch_size,
                images=self.images_in_epoch,
                num_classes=num_classes,
                label_kind=first.label_kind,
                label_dtype=str(first.labels.dtype).replace("torch.", ""),
                top_k=k,
                mix=first.mix,
                files=len(files),
                bytes=sum(p.stat().st_size for p in files),
                label_bytes=rows * row_bytes,
                order=f"stored: {INDICES}, per batch",
                written_by=(
                    "he-y/soft-label-pruning-quantization-for-dataset-distillation "
                    "relabel_and_validate/generate_soft_label_pruning_batch.py:395-450"
                ),
                notes=(
                    "LPQLD trains on random batches of the pool (label pruning) with a "
                    "temperature schedule; here the batches are replayed in their stored order "
                    "at one temperature",
                ),
                extra_epochs=1 if len(self.files) % self.per_epoch else 0,
            )
        return self._info


class LpqldReader(StoreReader):
    family = "lpqld"
    title = LpqldStore.title

    def detect(self, path: Path) -> bool:
        return path.is_dir() and (path / INDICES).is_file() and (path / "batch_0.tar").is_file()

    def open(self, path: Path, **options: Any) -> SoftLabelStore:
        return LpqldStore(path)
