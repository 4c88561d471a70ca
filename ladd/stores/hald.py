"""HALD's store: one file per epoch, `{store}/epoch_{e}.tar`, plus `sampler_indices_dict.pt`.

Jiacheng8/HALD relabel/relabel_slc.py: the image order of every epoch is drawn up front, one
torch.randperm per epoch from a generator seeded fkd_seed + epoch, and saved as
`sampler_indices_dict.pt` = {str(epoch): [image index, ...]} (lines 167-179). Each epoch's
batches are collected in a list and saved as `epoch_{e}.tar` (lines 212-224); a batch is
`[coords.half(), flip, mix_index, mix_lam, mix_bbox, soft_labels.half()]` (line 280) where the
labels are already probabilities, softmax(teacher logits / T) with T = 20 by default (lines
250-252, 278). HALD's student is trained with log_softmax(output / 20) against them
(validate/train_fkd.py:675-676). Batch b of epoch e holds that epoch's indices b*B..(b+1)*B.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Any

from ladd.stores.base import SoftLabelStore, StoreBatch, StoreError, StoreInfo, StoreReader
from ladd.stores.reading import epoch_orders, first_rows, fkd_batch, load_store_file

__all__ = ["HaldReader", "HaldStore", "HALD_TEMPERATURE"]

_EPOCH_FILE = re.compile(r"epoch_(\d+)\.tar")
INDICES = "sampler_indices_dict.pt"
HALD_TEMPERATURE = 20.0  # relabel_slc.py --temperature default; train_fkd.py divides by 20


class HaldStore(SoftLabelStore):
    family = "hald"
    title = "HALD's per-epoch store (probabilities at T = 20)"

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        found: dict[int, Path] = {}
        for p in root.iterdir():
            m = _EPOCH_FILE.fullmatch(p.name)
            if m and p.is_file():
                found[int(m.group(1))] = p
        if sorted(found) != list(range(len(found))) or not found:
            raise StoreError(root, f"epoch_<e>.tar files are not numbered 0..{len(found) - 1}")
        self.files = [found[e] for e in range(len(found))]
        path = root / INDICES
        self.orders = epoch_orders(load_store_file(path), path, len(self.files))
        self._cached: tuple[int, list[Any]] | None = None
        first = self._epoch(0)
        self.batch_size = first_rows(first[0], self.files[0])
        self.first = self.batch(0, 0)
        self.num_images: int | None = None
        self._info: StoreInfo | None = None

    def _epoch(self, epoch: int) -> list[Any]:
        if self._cached is None or self._cached[0] != epoch:
            obj = load_store_file(self.files[epoch])
            if not isinstance(obj, list) or not obj:
                raise StoreError(self.files[epoch], "is not a list of batches")
            size = first_rows(obj[0], self.files[epoch])
            want = -(-len(self.orders[epoch]) // max(1, size))
            if len(obj) != want:
                raise StoreError(
                    self.files[epoch],
                    f"holds {len(obj)} batches; {INDICES} lists {len(self.orders[epoch])} "
                    f"images ({want} batches of {size})",
                )
            self._cached = (epoch, obj)
        return self._cached[1]

    def batches(self, epoch: int) -> int:
        return -(-len(self.orders[epoch]) // self.batch_size)

    def batch_sizes(self, epoch: int) -> list[int]:
        n, b = int(self.orders[epoch].numel()), self.batch_size
        return [min(b, n - i) for i in range(0, n, b)]

    def bind_images(self, count: int) -> None:
        top = max(int(o.max()) for o in self.orders if o.numel())
        if top >= count:
            raise StoreError(self.root / INDICES, f"names image {top} of a folder of {count}")
        self.num_images = count

    def batch(self, epoch: int, index: int) -> StoreBatch:
        if not 0 <= epoch < len(self.files):
            raise StoreError(self.root, f"epoch {epoch} asked of {len(self.files)} epochs")
        batches = self._epoch(epoch)
        if not 0 <= index < len(batches):
            raise StoreError(self.files[epoch], f"batch {index} asked of {len(batches)}")
        b = self.batch_size
        rows = self.orders[epoch][index * b : (index + 1) * b]
        where = Path(f"{self.files[epoch]}[{index}]")
        out = fkd_batch(batches[index], where, rows, label_kind="probs")
        probs = out.labels.float()
        if bool((probs < 0).any()) or bool(((probs.sum(1) - 1).abs() > 2e-2).any()):
            raise StoreError(where, "its labels are not probability rows (HALD stores softmax)")
        return out

    def digest(self) -> str:
        h = hashlib.sha256(self.family.encode())
        for p in self.files:
            h.update(f"{p.name}:{p.stat().st_size};".encode())
        h.update((self.root / INDICES).read_bytes())
        return h.hexdigest()[:20]

    def info(self) -> StoreInfo:
        if self._info is None:
            labels = self.first.labels
            files = [*self.files, self.root / INDICES]
            images = int(self.orders[0].numel())
            self._info = StoreInfo(
                family=self.family,
                title=self.title,
                root=self.root,
                epochs=len(self.files),
                batches_per_epoch=self.batches(0),
                batch_size=self.batch_size,
                images=images,
                num_classes=int(labels.shape[1]),
                label_kind="probs",
                label_dtype=str(labels.dtype).replace("torch.", ""),
                top_k=None,
                mix=self.first.mix,
                files=len(files),
                bytes=sum(p.stat().st_size for p in files),
                label_bytes=images * len(self.files) * labels.shape[1] * labels.element_size(),
                order=f"stored: {INDICES}",
                written_by="Jiacheng8/HALD relabel/relabel_slc.py:167-179, 212-224, 280",
                notes=(
                    "labels are probabilities softened at T = 20 (relabel_slc.py:252); HALD's "
                    "student uses log_softmax(output / 20) (validate/train_fkd.py:675-676)",
                ),
            )
        return self._info


class HaldReader(StoreReader):
    family = "hald"
    title = HaldStore.title

    def detect(self, path: Path) -> bool:
        return path.is_dir() and (path / INDICES).is_file() and (path / "epoch_0.tar").is_file()

    def open(self, path: Path, **options: Any) -> SoftLabelStore:
        return HaldStore(path)
