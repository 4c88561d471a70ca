"""FKD folders: `{store}/epoch_{e}/batch_{b}.tar`, one torch.save'd list per batch.

Three families write this folder, told apart by content:

- **sre2l** (SRe2L, and CDA, FADRM, CV-DD, which run the same relabel code): each file is
  `[coords, flip, mix_index, mix_lam, mix_bbox, soft_label]` (VILA-Lab/SRe2L
  SRe2L/relabel/generate_soft_label.py:222-224; FADRM relabel/relabel.py:331-333 and CV-DD
  relabel/relabel.py:331-333 write the same list). No image order is stored: the rows follow a
  RandomSampler seeded with --fkd-seed (42, relabel.sh), drawn once per epoch
  (generate_soft_label.py:190-192), which is how SRe2L's own loader finds them again
  (relabel/utils_fkd.py:243-257, `get_img2batch_idx_list`). Here the order is rebuilt the same
  way, with torch's RandomSampler and that seed; the store's batch sizes are checked against it.
- **lpld** (he-y/soft-label-pruning-for-dataset-distillation): the same files plus
  `sampler_indices_epoch.json` = {epoch: the epoch's image indices, batch after batch}
  (relabel_and_validate/generate_soft_label_pruning.py:308, 352-355, 325-326). Batches are read
  by their number in that list; upstream's training finds a batch by its first image
  (utils_pruning.py `get_batch_list_img_mapping`), which picks the wrong batch when two start
  with the same image. With pruning (`--prune_ratio`) the last batch is dropped (line 301) and
  the last epoch stops early (lines 311-313, 360-361): that partial epoch is not replayed.
- **edc** (shaoshitong/EDC, Branch_full_ImageNet_1k/relabel/generate_soft_label_with_db.py:271-273):
  8 elements, the image index of every row (`index`) and its patch-shuffle status appended; the
  label is the mean of the teachers' logits (line 266). Its coords divide the top by the width
  and the left by the height (relabel/utils_fkd.py:20-23), the other way round from SRe2L; for
  the square images these works store the fractions agree. The crop is rounded value by value
  (lines 26-29), SRe2L's by PIL's box.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Any

import torch

from ladd.stores.base import (
    SoftLabelStore,
    StoreBatch,
    StoreError,
    StoreInfo,
    StoreReader,
)
from ladd.stores.reading import (
    epoch_orders,
    first_rows,
    fkd_batch,
    label_tensor,
    load_store_file,
    read_json,
)

__all__ = ["EdcReader", "LpldReader", "Sre2lReader", "sre2l_epoch_order"]

_EPOCH = re.compile(r"epoch_(\d+)")
_BATCH = re.compile(r"batch_(\d+)\.tar")
SRE2L_SEED = 42  # --fkd-seed in SRe2L's relabel.sh and train_FKD.py's --fkd_seed default


def sre2l_epoch_order(num_images: int, epochs: int, seed: int = SRE2L_SEED) -> list[torch.Tensor]:
    """The image order of each epoch as SRe2L's loaders draw it: torch's RandomSampler over
    `num_images` with a generator seeded `seed`, iterated once per epoch (SRe2L
    relabel/generate_soft_label.py:190-192, relabel/utils_fkd.py:243-257)."""
    g = torch.Generator()
    g.manual_seed(seed)
    sampler = torch.utils.data.RandomSampler(range(num_images), generator=g)
    return [torch.tensor(list(sampler), dtype=torch.int32) for _ in range(epochs)]


def _numbered(folder: Path, pattern: re.Pattern[str], *, dirs: bool) -> dict[int, Path]:
    out: dict[int, Path] = {}
    try:
        entries = list(folder.iterdir())
    except OSError:
        return out
    for p in entries:
        m = pattern.fullmatch(p.name)
        if m and (p.is_dir() if dirs else p.is_file()):
            out[int(m.group(1))] = p
    return out


def _first_batch(path: Path) -> Path | None:
    epochs = _numbered(path, _EPOCH, dirs=True)
    if 0 not in epochs:
        return None
    return _numbered(epochs[0], _BATCH, dirs=False).get(0)


def _element_count(path: Path) -> int | None:
    """How many elements the first batch file's list holds (None: not a readable list)."""
    first = _first_batch(path)
    if first is None:
        return None
    try:
        obj = load_store_file(first)
    except StoreError:
        return None
    return len(obj) if isinstance(obj, (list, tuple)) else None


class _EpochFolders(SoftLabelStore):
    """The epoch_<e>/batch_<b>.tar listing shared by the three families."""

    title = ""
    length = 6  # elements per stored batch
    rounding = "box"
    written_by = ""
    order_note = ""

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        epochs = _numbered(root, _EPOCH, dirs=True)
        if not epochs:
            raise StoreError(root, "no epoch_<e> folders")
        if sorted(epochs) != list(range(len(epochs))):
            raise StoreError(root, f"epoch folders are not numbered 0..{len(epochs) - 1}")
        self.files: list[list[Path]] = []
        for e in range(len(epochs)):
            batches = _numbered(epochs[e], _BATCH, dirs=False)
            if sorted(batches) != list(range(len(batches))):
                raise StoreError(
                    epochs[e],
                    f"batch files are not numbered 0..{len(batches) - 1} ({len(batches)})",
                )
            self.files.append([batches[b] for b in range(len(batches))])
        if not self.files[0]:
            raise StoreError(epochs[0], "holds no batch_<b>.tar files")
        first = load_store_file(self.files[0][0])
        self.batch_size = first_rows(first, self.files[0][0])
        self.first = fkd_batch(
            first,
            self.files[0][0],
            torch.zeros(self.batch_size, dtype=torch.long),
            length=self.length,
            rounding=self.rounding,
        )
        self._info: StoreInfo | None = None

    # -- counting epochs -----------------------------------------------------------------------

    def complete_epochs(self) -> int:
        """Epochs with as many batches as epoch 0 (a trailing shorter one is partial)."""
        full = len(self.files[0])
        count = 0
        for batches in self.files:
            if len(batches) != full:
                break
            count += 1
        if count < len(self.files) - 1:
            raise StoreError(
                self.root, f"epoch_{count} holds {len(self.files[count])} batches, not {full}"
            )
        return count

    def batches(self, epoch: int) -> int:
        return len(self.files[epoch])

    def _load(self, epoch: int, index: int) -> tuple[Any, Path]:
        self.check_batch(epoch, index)
        path = self.files[epoch][index]
        return load_store_file(path), path

    def digest(self) -> str:
        h = hashlib.sha256(self.family.encode())
        for e, batches in enumerate(self.files):
            for b, p in enumerate(batches):
                h.update(f"{e}/{b}:{p.stat().st_size};".encode())
        for p in (self.files[0][0], self.files[-1][-1], *self.side_files()):
            h.update(p.read_bytes())
        return h.hexdigest()[:20]

    def side_files(self) -> list[Path]:
        return []

    def info(self) -> StoreInfo:
        if self._info is None:
            self._info = self._make_info()
        return self._info

    def _label_facts(self) -> tuple[int, str, int]:
        """(K, dtype, bytes per row) of the labels, from the first batch."""
        labels = self.first.labels
        return (
            int(labels.shape[1]),
            str(labels.dtype).replace("torch.", ""),
            (labels.shape[1] * labels.element_size()),
        )

    def images_per_epoch(self) -> int | None:
        raise NotImplementedError

    def _make_info(self) -> StoreInfo:
        epochs = self.complete_epochs()
        k, dtype, row_bytes = self._label_facts()
        files = [p for batches in self.files for p in batches] + self.side_files()
        images = self.images_per_epoch()
        rows = images * len(self.files) if images is not None else 0
        return StoreInfo(
            family=self.family,
            title=self.title,
            root=self.root,
            epochs=epochs,
            batches_per_epoch=len(self.files[0]),
            batch_size=self.batch_size,
            images=images,
            num_classes=k,
            label_kind="logits",
            label_dtype=dtype,
            top_k=None,
            mix=self.first.mix,
            files=len(files),
            bytes=sum(p.stat().st_size for p in files),
            label_bytes=rows * row_bytes,
            order=self.order_note,
            written_by=self.written_by,
            extra_epochs=len(self.files) - epochs,
        )


class Sre2lStore(_EpochFolders):
    family = "sre2l"
    title = "SRe2L's FKD folder (SRe2L, CDA, FADRM, CV-DD)"
    written_by = "VILA-Lab/SRe2L SRe2L/relabel/generate_soft_label.py:222-224"

    def __init__(self, root: Path, fkd_seed: int = SRE2L_SEED) -> None:
        super().__init__(root)
        self.seed = int(fkd_seed)
        last = load_store_file(self.files[0][-1])
        self.last_size = first_rows(last, self.files[0][-1])
        self.num_images = self.batch_size * (len(self.files[0]) - 1) + self.last_size
        self.order_note = (
            f"not stored: rebuilt as SRe2L's loader does, torch RandomSampler seeded {self.seed}"
        )
        self._orders: list[torch.Tensor] = []

    def images_per_epoch(self) -> int:
        return self.num_images

    def bind_images(self, count: int) -> None:
        if count != self.num_images:
            raise StoreError(
                self.root,
                f"its batches hold {self.num_images} crops an epoch but the image folder has "
                f"{count} images: not the folder this store was made from",
            )

    def rows(self, epoch: int, index: int) -> torch.Tensor:
        if epoch >= len(self._orders):  # the sampler is drawn epoch after epoch, from its seed
            self._orders = sre2l_epoch_order(self.num_images, len(self.files), self.seed)
        b = self.batch_size
        return self._orders[epoch][index * b : (index + 1) * b].long()

    def batch(self, epoch: int, index: int) -> StoreBatch:
        obj, path = self._load(epoch, index)
        rows = self.rows(epoch, index)
        got = first_rows(obj, path)
        if got != rows.shape[0]:
            raise StoreError(
                path, f"holds {got} rows where the seeded order gives this batch {rows.shape[0]}"
            )
        return fkd_batch(obj, path, rows, length=self.length, rounding=self.rounding)


class LpldStore(_EpochFolders):
    family = "lpld"
    title = "LPLD's FKD folder with sampler_indices_epoch.json"
    written_by = (
        "he-y/soft-label-pruning-for-dataset-distillation "
        "relabel_and_validate/generate_soft_label_pruning.py:349-355, 325-326"
    )
    order_note = "stored: sampler_indices_epoch.json, read by batch number"

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        path = root / "sampler_indices_epoch.json"
        self.orders = epoch_orders(read_json(path), path, len(self.files))
        for e, order in enumerate(self.orders):
            want = -(-len(order) // self.batch_size)
            if want != len(self.files[e]):
                raise StoreError(
                    path,
                    f"epoch {e} lists {len(order)} images ({want} batches of {self.batch_size}) "
                    f"but epoch_{e} holds {len(self.files[e])} batch files",
                )
        self.num_images: int | None = None

    def side_files(self) -> list[Path]:
        return [self.root / "sampler_indices_epoch.json"]

    def batch_sizes(self, epoch: int) -> list[int]:
        n, b = int(self.orders[epoch].numel()), self.batch_size
        return [min(b, n - i) for i in range(0, n, b)]

    def images_per_epoch(self) -> int:
        return int(self.orders[0].numel())

    def bind_images(self, count: int) -> None:
        top = max(int(o.max()) for o in self.orders if o.numel())
        if top >= count:
            raise StoreError(
                self.root / "sampler_indices_epoch.json",
                f"names image {top} but the image folder has {count} images",
            )
        self.num_images = count

    def batch(self, epoch: int, index: int) -> StoreBatch:
        obj, path = self._load(epoch, index)
        b = self.batch_size
        rows = self.orders[epoch][index * b : (index + 1) * b]
        got = first_rows(obj, path)
        if got != rows.shape[0]:
            raise StoreError(path, f"holds {got} rows; the JSON gives batch {index} {len(rows)}")
        return fkd_batch(obj, path, rows, length=self.length, rounding=self.rounding)


class EdcStore(_EpochFolders):
    family = "edc"
    title = "EDC's FKD folder (image index stored per row)"
    written_by = (
        "shaoshitong/EDC Branch_full_ImageNet_1k/relabel/generate_soft_label_with_db.py:271-273"
    )
    order_note = "stored: each batch's image index (element 7 of 8)"
    length = 8
    rounding = "each"

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.num_images: int | None = None
        last = load_store_file(self.files[0][-1])
        self.per_epoch = self.batch_size * (len(self.files[0]) - 1) + first_rows(
            last, self.files[0][-1]
        )

    def images_per_epoch(self) -> int:
        return self.per_epoch

    def bind_images(self, count: int) -> None:
        self.num_images = count

    def batch(self, epoch: int, index: int) -> StoreBatch:
        obj, path = self._load(epoch, index)
        rows = _index_tensor(obj, path)
        if self.num_images is not None and rows.numel() and int(rows.max()) >= self.num_images:
            raise StoreError(
                path, f"names image {int(rows.max())} of an image folder of {self.num_images}"
            )
        status = obj[7]
        if not isinstance(status, torch.Tensor) or status.shape[:1] != rows.shape:
            raise StoreError(path, "its patch-shuffle status (element 8) does not match its rows")
        return fkd_batch(obj, path, rows, length=self.length, rounding=self.rounding)


def _index_tensor(obj: Any, path: Path) -> torch.Tensor:
    if not isinstance(obj, (list, tuple)) or len(obj) != 8:
        raise StoreError(path, "expected EDC's list of 8 stored elements")
    t = obj[6]
    if not isinstance(t, torch.Tensor) or t.dim() != 1 or t.is_floating_point():
        raise StoreError(path, "its image index (element 7) is not a 1-d integer tensor")
    label_tensor(obj[5], path, int(t.shape[0]))  # the rows agree with the labels
    if t.numel() and int(t.min()) < 0:
        raise StoreError(path, "its image index is negative")
    return t.long()


class Sre2lReader(StoreReader):
    family = "sre2l"
    title = Sre2lStore.title

    def detect(self, path: Path) -> bool:
        if not path.is_dir() or (path / "sampler_indices_epoch.json").exists():
            return False
        if _first_batch(path) is None:
            return False
        # six elements, or a first batch that does not load: claimed, so that open() says why
        return _element_count(path) in (6, None)

    def open(self, path: Path, **options: Any) -> SoftLabelStore:
        return Sre2lStore(path, fkd_seed=int(options.get("fkd_seed", SRE2L_SEED)))


class LpldReader(StoreReader):
    family = "lpld"
    title = LpldStore.title

    def detect(self, path: Path) -> bool:
        return (
            path.is_dir()
            and (path / "sampler_indices_epoch.json").is_file()
            and _first_batch(path) is not None
        )

    def open(self, path: Path, **options: Any) -> SoftLabelStore:
        return LpldStore(path)


class EdcReader(StoreReader):
    family = "edc"
    title = EdcStore.title

    def detect(self, path: Path) -> bool:
        return path.is_dir() and _element_count(path) == 8

    def open(self, path: Path, **options: Any) -> SoftLabelStore:
        return EdcStore(path)
