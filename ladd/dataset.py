"""A label-augmented set as the samples a student trains on: a torch Dataset, or flat tensors.

LADD's student sees every full image with its hard label and every crop S_j(x_i) with its dense
label (Kang, Lim et al., WACV 2025, arXiv 2409.16239, Eq. 5). Listed flat, full images first
(image order), then the crops (image by image, raster order within an image):

    index 0 .. M-1                  full image i          target: one-hot(y_i) (or y_i's soft label)
    index M + i * N*N + j           crop j of image i     target: y^d_{i,j}

`LabelAugmentedDataset` cuts each crop when it is asked for (one crop of one image: nothing of
size M * N*N * C * H * W is built), for a user's DataLoader; `expand` builds the flat tensors at
once, for loops that want a TensorDataset. Both give the same numbers (float32 inputs, probability
targets), on the device the images are on.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from ladd.codecs import EncodedDense
from ladd.limits import Limits
from ladd.subsample import crop_grid, resize, sub_sample

__all__ = ["LabelAugmentedDataset", "expand"]


def _targets(labels: torch.Tensor, num_classes: int) -> torch.Tensor:
    """(M,) class indices -> one-hot float (M, K); (M, K) soft labels as float probabilities."""
    if labels.dim() == 1:
        return F.one_hot(labels.long(), num_classes).float()
    if labels.dim() != 2 or labels.shape[1] != num_classes:
        raise ValueError(f"labels must be (M,) or (M, {num_classes}), got {tuple(labels.shape)}")
    return labels.float()


def _check(images: torch.Tensor, labels: torch.Tensor, dense: Any, n: int) -> tuple[int, int]:
    """(M, K), after checking that images, labels and dense labels describe the same set."""
    if images.dim() != 4 or images.shape[-1] != images.shape[-2]:
        raise ValueError(f"images must be square (M, C, H, W), got {tuple(images.shape)}")
    m = int(images.shape[0])
    shape = tuple(dense.shape)
    if len(shape) != 3 or shape[0] != m or shape[1] != n * n:
        raise ValueError(f"dense labels must be (M, N*N, K) = ({m}, {n * n}, K), got {shape}")
    if int(labels.shape[0]) != m:
        raise ValueError(f"{m} images but {int(labels.shape[0])} labels")
    return m, int(shape[2])


class LabelAugmentedDataset(Dataset[tuple[torch.Tensor, torch.Tensor]]):
    """The flat LADD samples of a set, each crop cut and resized when it is asked for.

    `images` (M, C, H, W) normalised, `labels` (M,) class indices or (M, K) soft labels, `dense`
    (M, N*N, K) probabilities (or a ladd.codecs.EncodedDense: a crop's label is decoded when it
    is asked for), `n`, `r` the grid they were made with. `full=False` leaves the full images
    out (the paper's crops-only ablation). Item i is (input (C, H, W) float32, target (K,)
    probabilities); a default DataLoader batches them into (B, C, H, W), (B, K).

    Examples:
        >>> import torch
        >>> from ladd import LabelAugmentedDataset
        >>> images, labels = torch.rand(4, 3, 32, 32), torch.tensor([0, 1, 2, 3])
        >>> dense = torch.full((4, 25, 10), 0.1)
        >>> ds = LabelAugmentedDataset(images, labels, dense, n=5, r=0.625)
        >>> len(ds)  # 4 full images + 4 x 25 crops
        104
        >>> x, y = ds[1]
        >>> torch.equal(x, images[1]), y.argmax().item()
        (True, 1)
        >>> x, y = ds[4 + 25 + 3]  # crop 3 of image 1
        >>> x.shape, round(y.sum().item(), 4)
        (torch.Size([3, 32, 32]), 1.0)
    """

    def __init__(
        self,
        images: torch.Tensor,
        labels: torch.Tensor,
        dense: torch.Tensor | EncodedDense,
        n: int = 5,
        r: float = 0.625,
        *,
        full: bool = True,
        limits: Limits | None = None,
    ) -> None:
        self.m, self.num_classes = _check(images, labels, dense, n)
        self.images = images
        self.targets = _targets(labels, self.num_classes)  # (M, K)
        self.dense = dense
        self.n, self.r, self.full = n, float(r), full
        self.grid = crop_grid(int(images.shape[-1]), n, r, limits=limits)

    @classmethod
    def from_set(cls, la: Any, *, full: bool = True) -> LabelAugmentedDataset:
        """The samples of a ladd.sets.LabelAugmentedSet (`ladd augment`'s file, loaded)."""
        dense = la.dense if la.dense is not None else la.encoded
        soft = la.soft_labels
        return cls(la.images, la.labels if soft is None else soft, dense, la.n, la.r, full=full)

    @property
    def num_full(self) -> int:
        """How many samples are full images (they come first)."""
        return self.m if self.full else 0

    def __len__(self) -> int:
        return self.num_full + self.m * self.n * self.n

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        if index < 0:
            index += len(self)
        if not 0 <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} samples")
        if index < self.num_full:
            return self.images[index].float(), self.targets[index]
        i, j = divmod(index - self.num_full, self.n * self.n)  # image i, crop j (raster order)
        top, left = self.grid.offsets[j // self.n], self.grid.offsets[j % self.n]
        side = self.grid.side
        crop = self.images[i : i + 1, :, top : top + side, left : left + side].float()
        return resize(crop, self.grid.size)[0], self._dense(i, j)

    def _dense(self, i: int, j: int) -> torch.Tensor:
        if isinstance(self.dense, torch.Tensor):
            return self.dense[i, j].float()
        row = torch.tensor([i * self.n * self.n + j], device=self._payload_device())
        part = self.dense.codec.gather(self.dense.payload, row, self.n * self.n)
        return self.dense.codec.decode_rows(part, self.num_classes)[0]

    def _payload_device(self) -> torch.device:
        return next(iter(self.dense.payload.values())).device


def expand(
    images: torch.Tensor,
    labels: torch.Tensor,
    dense: torch.Tensor | EncodedDense,
    n: int = 5,
    r: float = 0.625,
    *,
    full: bool = True,
    limits: Limits | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The flat LADD samples at once: inputs (T, C, H, W) float32 and targets (T, K), with
    T = M * (1 + N*N) (M * N*N without the full images), in LabelAugmentedDataset's order.

    For loops that train on a flat (inputs, targets) set (MTT/DATM's `evaluate_synset` takes
    `images_train, labels_train`): M * N*N crops of H x W each are built at once, so a large set
    is better served lazily by LabelAugmentedDataset.

    Examples:
        >>> import torch
        >>> from ladd import expand
        >>> images, labels = torch.rand(4, 3, 32, 32), torch.tensor([0, 1, 2, 3])
        >>> inputs, targets = expand(images, labels, torch.full((4, 9, 10), 0.1), n=3, r=0.75)
        >>> inputs.shape, targets.shape
        (torch.Size([40, 3, 32, 32]), torch.Size([40, 10]))
        >>> targets[:4].argmax(1).tolist()
        [0, 1, 2, 3]
    """
    m, k = _check(images, labels, dense, n)
    crops = sub_sample(images.float(), n, r, limits=limits).flatten(0, 1)  # (M*N*N, C, H, W)
    probs = dense.float() if isinstance(dense, torch.Tensor) else dense.decode()
    crop_targets = probs.to(images.device).reshape(m * n * n, k)
    if not full:
        return crops, crop_targets
    inputs = torch.cat([images.float(), crops])
    return inputs, torch.cat([_targets(labels, k).to(images.device), crop_targets])
