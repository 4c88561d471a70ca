"""Training from a soft-label store as its authors do (label mode "store").

Pass p of training replays epoch p of the store: its batches in their stored order (not LADD's
shuffle), each batch built as the family's loader builds it (SRe2L validate/train_FKD.py:
220-228; relabel/utils_fkd.py:10-32 and 203-232):

1. the batch's images (the set's rows for the store's ImageFolder indices);
2. each image's stored crop box, cut and resized back to the image size (bilinear,
   align_corners=False: torchvision's tensor resize; the crop is never larger than the image, so
   antialiasing does not change it); the box is rounded as the family rounds it (PIL's crop box
   for SRe2L-style stores, each value for EDC);
3. the stored horizontal flips;
4. the batch's stored CutMix box or Mixup ratio with its stored partners;
5. the target: softmax(stored logits / T_label), the stored probabilities (HALD), or the top-k
   softmax scattered into zeros (LPQLD); the loss is the KL divergence of
   log_softmax(student / T_student) from it (train_FKD.py:248-250), computed as the soft
   cross-entropy with the student's logits divided by T_student: the same gradients, the loss
   value above the KL by the targets' entropy.

The images are normalised before cropping (the per-channel affine map commutes with crop,
resize, flip and mix); SRe2L resizes in PIL and rounds to 8 bits before normalising, which this
float path does not, and PIL's bilinear differs from torch's in the last bits.

The training data is a TrainingData whose `inputs[idx]` / `targets[idx]` give the crops and
targets of sample ids (positions in the current pass's epoch) and whose `schedule` gives the
loop each pass's batches (ladd.trainers.loop): an engine cannot tell it from any other data.
A batch is built once and kept while its samples are drawn (inputs, then targets; any subset of
its ids, e.g. one rank's shard under DDP).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch

from ladd.data.imageset import exact_pixels, normalise
from ladd.rded import resized_crops
from ladd.stores.base import StoreBatch, StoreError
from ladd.stores.converted import target_probs

__all__ = ["ReplayPass", "ReplaySchedule", "StoreInputs", "StoreTargets", "build_batch"]


def pixel_boxes(
    coords: torch.Tensor, size: int, rounding: str
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """(top, left, height, width) in pixels (B,) each from fractions, rounded as the family
    rounds them: "box" = PIL's crop((left, top, left + w, top + h)) rounds the corners
    (SRe2L utils_fkd.py:27-31 through torchvision's F.crop on a PIL image); "each" = every
    value rounded (EDC relabel/utils_fkd.py:26-29). round() is half to even in both."""
    c = coords.double() * size
    if rounding == "each":
        top, left, height, width = (torch.round(c[:, i]) for i in range(4))
    else:
        top, left = torch.round(c[:, 0]), torch.round(c[:, 1])
        height = torch.round(c[:, 0] + c[:, 2]) - top
        width = torch.round(c[:, 1] + c[:, 3]) - left
    height = height.clamp(1, size)
    width = width.clamp(1, size)
    top = top.clamp(0).minimum(size - height)
    left = left.clamp(0).minimum(size - width)
    return top.long(), left.long(), height.long(), width.long()


def build_batch(images: torch.Tensor, batch: StoreBatch, where: str = "the store") -> torch.Tensor:
    """The training inputs of one stored batch (B, C, S, S) from its images `images`
    (B, C, S, S), already normalised: crop + resize, flip, then the batch's mix."""
    size = int(images.shape[-1])
    dev = images.device
    top, left, height, width = (
        t.to(dev) for t in pixel_boxes(batch.coords, size, batch.crop_rounding)
    )
    x = resized_crops(images, top, left, height, width)
    x = torch.where(batch.flip.to(dev).view(-1, 1, 1, 1), x.flip(-1), x)
    if batch.mix is None:
        return x
    idx = batch.mix_index.to(dev)  # type: ignore[union-attr]
    if batch.mix == "mixup":
        lam = float(batch.mix_lam)  # type: ignore[arg-type]
        return lam * x + (1.0 - lam) * x[idx]
    x1, y1, x2, y2 = batch.mix_box  # type: ignore[misc]
    if x2 > size or y2 > size:
        raise StoreError(
            where,
            f"its CutMix box {batch.mix_box} reaches beyond images read at {size} px: read the "
            "set at the size the store was made at (--image-size)",
        )
    out = x.clone()
    out[:, :, x1:x2, y1:y2] = x[idx, :, x1:x2, y1:y2]
    return out


@dataclass
class _Cursor:
    """Which epoch of the store the current pass replays (shared by every device's copy)."""

    epoch: int = 0


@dataclass
class _Replay:
    """The set's images on one device and the batch being drawn (shared by inputs and targets)."""

    sset: Any  # SoftLabelSet
    images: torch.Tensor  # uint8 pixels or normalised floats (M, C, S, S)
    mean: tuple[float, ...] | None
    std: tuple[float, ...] | None
    rows: torch.Tensor  # int64 (M,): store index -> set row
    num_classes: int
    cursor: _Cursor
    moved: dict[str, _Replay] = field(default_factory=dict)
    cache: dict[tuple[int, int], tuple[torch.Tensor, torch.Tensor]] = field(default_factory=dict)
    offsets_cache: dict[int, torch.Tensor] = field(default_factory=dict)

    @property
    def device(self) -> torch.device:
        return self.images.device

    def to(self, device: str | torch.device) -> _Replay:
        key = str(torch.device(device))
        if key == str(self.device):
            return self
        if key not in self.moved:
            self.moved[key] = _Replay(
                self.sset,
                self.images.to(device),
                self.mean,
                self.std,
                self.rows.to(device),
                self.num_classes,
                self.cursor,
                offsets_cache=self.offsets_cache,
            )
        return self.moved[key]

    def offsets(self, epoch: int) -> torch.Tensor:
        """(nb + 1,) sample offsets of epoch `epoch`'s batches (CPU)."""
        if epoch not in self.offsets_cache:
            sizes = self.sset.store.batch_sizes(epoch)
            self.offsets_cache[epoch] = torch.tensor([0, *sizes]).cumsum(0)
        return self.offsets_cache[epoch]

    def built(self, epoch: int, b: int) -> tuple[torch.Tensor, torch.Tensor]:
        key = (epoch, b)
        if key not in self.cache:
            batch = self.sset.store.batch(epoch, b)
            want = int(self.offsets(epoch)[b + 1] - self.offsets(epoch)[b])
            if len(batch) != want:
                raise StoreError(
                    self.sset.store.root,
                    f"epoch {epoch} batch {b} holds {len(batch)} rows, not {want}",
                )
            rows = self.rows[batch.rows.to(self.device)]
            imgs = self.images[rows]
            if imgs.dtype == torch.uint8:
                imgs = normalise(imgs, self.mean, self.std)  # type: ignore[arg-type]
            where = f"{self.sset.store.root} epoch {epoch} batch {b}"
            x = build_batch(imgs.float(), batch, where)
            moved = StoreBatch(**{**batch.__dict__, "labels": batch.labels.to(self.device)})
            if batch.label_indices is not None:
                moved = StoreBatch(
                    **{**moved.__dict__, "label_indices": batch.label_indices.to(self.device)}
                )
            y = target_probs(moved, self.sset.label_temperature, self.num_classes)
            while len(self.cache) >= 2:  # the batch drawn now and the one before
                self.cache.pop(next(iter(self.cache)))
            self.cache[key] = (x, y.float())
        return self.cache[key]

    def gather(self, ids: torch.Tensor, part: int) -> torch.Tensor:
        """Rows `ids` (any shape) of the current epoch's samples: part 0 inputs, 1 targets."""
        epoch = self.cursor.epoch
        offsets = self.offsets(epoch)
        flat = ids.reshape(-1).to("cpu", torch.long)
        if flat.numel() and (int(flat.min()) < 0 or int(flat.max()) >= int(offsets[-1])):
            raise IndexError(f"sample ids outside epoch {epoch}'s {int(offsets[-1])} samples")
        which = torch.searchsorted(offsets, flat, right=True) - 1  # (n,) batch of each id
        out: torch.Tensor | None = None
        for b in torch.unique(which).tolist():
            pick = (which == b).nonzero().squeeze(1)
            t = self.built(epoch, b)[part][(flat[pick] - offsets[b]).to(self.device)]
            if out is None:
                out = torch.empty((flat.numel(), *t.shape[1:]), dtype=t.dtype, device=self.device)
            out[pick.to(self.device)] = t
        if out is None:  # no ids
            x, y = self.built(epoch, 0)
            t = (x, y)[part]
            out = t[:0]
        return out.reshape(*ids.shape, *out.shape[1:])


@dataclass(frozen=True)
class StoreInputs:
    """TrainingData.inputs of a replay: `inputs[idx]` gives the crops of the current pass's
    samples (ladd.cropped.CroppedInputs answers the same questions)."""

    replay: _Replay
    memory_format: torch.memory_format = torch.contiguous_format

    @property
    def shape(self) -> torch.Size:
        n = int(self.replay.offsets(self.replay.cursor.epoch)[-1])
        return torch.Size((n, *self.replay.images.shape[1:]))

    @property
    def device(self) -> torch.device:
        return self.replay.device

    @property
    def dtype(self) -> torch.dtype:
        return torch.float32

    def __len__(self) -> int:
        return int(self.shape[0])

    def to(self, device: str | torch.device) -> StoreInputs:
        return StoreInputs(self.replay.to(device), self.memory_format)

    def contiguous(
        self, memory_format: torch.memory_format = torch.contiguous_format
    ) -> StoreInputs:
        return StoreInputs(self.replay, memory_format)

    def __getitem__(self, idx: Any) -> torch.Tensor:
        if isinstance(idx, slice):
            idx = torch.arange(len(self))[idx]
        out = self.replay.gather(torch.as_tensor(idx), 0)
        return out.contiguous(memory_format=self.memory_format) if out.dim() == 4 else out


@dataclass(frozen=True)
class StoreTargets:
    """TrainingData.targets of a replay: `targets[idx]` gives the samples' target rows."""

    replay: _Replay

    @property
    def shape(self) -> torch.Size:
        n = int(self.replay.offsets(self.replay.cursor.epoch)[-1])
        return torch.Size((n, self.replay.num_classes))

    @property
    def device(self) -> torch.device:
        return self.replay.device

    def __len__(self) -> int:
        return int(self.shape[0])

    def to(self, device: str | torch.device) -> StoreTargets:
        return StoreTargets(self.replay.to(device))

    def __getitem__(self, idx: Any) -> torch.Tensor:
        if isinstance(idx, slice):
            idx = torch.arange(len(self))[idx]
        return self.replay.gather(torch.as_tensor(idx), 1)


@dataclass
class ReplayPass:
    """One pass's batches in the store's order: batch b is sample ids [off[b], off[b + 1]),
    the same for every seed (the store fixes the data; seeds differ by their models)."""

    offsets: torch.Tensor  # (nb + 1,)
    seeds: int
    batch_size: int
    pad: bool
    device: torch.device

    @property
    def steps(self) -> int:
        return int(self.offsets.numel() - 1)

    @property
    def samples(self) -> int:
        return int(self.offsets[-1])

    def batch(self, b: int) -> tuple[torch.Tensor, int]:
        a, z = int(self.offsets[b]), int(self.offsets[b + 1])
        ids = torch.arange(a, z, device=self.device)
        n_real = z - a
        if self.pad and n_real < self.batch_size:  # padding rows read the batch's first sample
            ids = torch.cat([ids, ids.new_full((self.batch_size - n_real,), a)])
        return ids.expand(self.seeds, -1), n_real


@dataclass
class ReplaySchedule:
    """TrainingData.schedule of a replay: what the loop asks for each pass's batches
    (ladd.trainers.loop's Shuffle answers the same for a shuffled set)."""

    replay: _Replay
    epochs: int

    def __call__(
        self, t: int, batch: int, gens: list[torch.Generator], dev: torch.device, pad: bool
    ) -> _Passes:
        return _Passes(self, len(gens), batch, pad, dev)


@dataclass
class _Passes:
    schedule: ReplaySchedule
    seeds: int
    batch_size: int
    pad: bool
    device: torch.device

    def begin(self, p: int) -> ReplayPass:
        if not 0 <= p < self.schedule.epochs:
            raise StoreError(
                self.schedule.replay.sset.store.root,
                f"pass {p + 1} asks for epoch {p} of a store of {self.schedule.epochs} epochs",
            )
        self.schedule.replay.cursor.epoch = p
        offsets = self.schedule.replay.offsets(p)
        return ReplayPass(offsets, self.seeds, self.batch_size, self.pad, self.device)


def replay_training_data(sset: Any) -> Any:
    """The TrainingData of label mode "store" for a SoftLabelSet (on the CPU; `.to(device)`
    moves the images)."""
    from ladd.training import TrainingData

    base = sset.base
    images = base.images.float().cpu()
    mean, std = getattr(base, "mean", None), getattr(base, "std", None)
    zca = getattr(base, "zca", None)
    pixels = None if zca is not None else exact_pixels(images, mean, std)
    held = pixels if pixels is not None else images
    info = sset.store.info()
    replay = _Replay(
        sset,
        held,
        tuple(mean) if mean is not None else None,
        tuple(std) if std is not None else None,
        sset.rows.clone(),
        int(base.num_classes),
        _Cursor(),
    )
    data = TrainingData(
        inputs=StoreInputs(replay),
        targets=StoreTargets(replay),
        num_full=0,
        num_crops=int(replay.offsets(0)[-1]),
        num_classes=int(base.num_classes),
        num_images=len(base),
        schedule=ReplaySchedule(replay, info.epochs),
        temperature=float(sset.student_temperature),
    )
    return data
