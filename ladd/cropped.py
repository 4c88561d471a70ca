"""Training inputs cut when a batch is drawn: a stand-in for TrainingData.inputs (issue 27).

The eager training set (ladd.training.build_training_data) holds every sample as a float image:
the M full images, then each image's N x N crops resized to the full size, so a LADD set at
N = 5 holds 26 float images per stored one. At ImageNet-1K, IPC 10, 224 px that is 10,000
x 26 x 602 KB = 157 GB. `CroppedInputs` holds the M stored images once (float, or uint8 with
the normalisation applied on the draw: 1.5 GB at that size) and, for a batch of sample
indices, gathers the full images and cuts and resizes the crops on the images' device:

    sample t < num_full                  full image t mod M
    sample t >= num_full, c = (t - num_full) mod (M * N * N)
                                         crop c mod N*N (raster order) of image c // (N * N)

the order build_training_data's eager list has (full images first, then the crops, raster
order per image, each label kind's copy after the other), so an engine cannot tell the two
apart: `inputs[idx]` for a long index of any shape gives (*idx.shape, C, H, W) float32.
Crops use ladd.subsample's grid and resize (bilinear; the same call the eager path makes).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch

from ladd.data.imageset import normalise
from ladd.subsample import crop_grid, resize

__all__ = ["CroppedInputs"]


@dataclass(frozen=True)
class CroppedInputs:
    """The stored images (M, C, H, W) and how the flat sample list is cut from them."""

    images: torch.Tensor  # float (normalised), or uint8 pixels normalised on the draw
    full_copies: int  # how many times the full images come first (one per full label kind)
    crop_copies: int  # how many times the crops follow (one per crop label kind)
    n: int
    r: float
    mean: tuple[float, ...] | None = None  # for uint8 images: x = (p / 255 - mean) / std
    std: tuple[float, ...] | None = None
    memory_format: torch.memory_format = torch.contiguous_format
    # the crops of a sampler other than the grid (ladd.samplers): (top, left, h, w) per crop
    # index j; None: the N x R grid of n and r
    boxes: tuple[tuple[int, int, int, int], ...] | None = None

    def __post_init__(self) -> None:
        if self.images.dim() != 4 or self.images.shape[-1] != self.images.shape[-2]:
            raise ValueError(f"expected square images (M, C, H, W), got {tuple(self.images.shape)}")
        if self.images.dtype == torch.uint8 and (self.mean is None or self.std is None):
            raise ValueError("uint8 images need the mean and std they are normalised with")
        if self.full_copies < 0 or self.crop_copies < 0 or not self.full_copies + self.crop_copies:
            raise ValueError("at least one copy of the full images or of the crops is needed")

    # -- what a tensor of inputs answers --------------------------------------------------------

    @property
    def num_images(self) -> int:
        return int(self.images.shape[0])

    @property
    def num_full(self) -> int:
        return self.num_images * self.full_copies

    @property
    def per_image(self) -> int:
        """Crops per image."""
        return len(self.boxes) if self.boxes is not None else self.n * self.n

    @property
    def num_crops(self) -> int:
        return self.num_images * self.per_image * self.crop_copies

    @property
    def shape(self) -> torch.Size:
        return torch.Size((self.num_full + self.num_crops, *self.images.shape[1:]))

    @property
    def device(self) -> torch.device:
        return self.images.device

    @property
    def dtype(self) -> torch.dtype:
        return torch.float32

    @property
    def stored_bytes(self) -> int:
        """Bytes the inputs hold (the stored images alone)."""
        return self.images.numel() * self.images.element_size()

    def __len__(self) -> int:
        return int(self.shape[0])

    def to(self, device: str | torch.device) -> CroppedInputs:
        return replace(self, images=self.images.to(device))

    def contiguous(
        self, memory_format: torch.memory_format = torch.contiguous_format
    ) -> CroppedInputs:
        """The batches come in `memory_format` (channels_last for NHWC engines)."""
        return replace(self, memory_format=memory_format)

    # -- drawing a batch ------------------------------------------------------------------------

    def __getitem__(self, idx: torch.Tensor | slice) -> torch.Tensor:
        """The samples at `idx` (a long tensor of any shape, or a slice): (*idx.shape, C, H, W)."""
        if isinstance(idx, slice):
            idx = torch.arange(len(self), device=self.device)[idx]
        idx = torch.as_tensor(idx, device=self.device).long()
        flat = idx.reshape(-1)
        out = self._draw(flat).contiguous(memory_format=self.memory_format)
        return out.reshape(*idx.shape, *out.shape[1:]) if idx.dim() != 1 else out

    def _normalise(self, x: torch.Tensor) -> torch.Tensor:
        if self.images.dtype != torch.uint8:
            return x.float()
        return normalise(x, self.mean, self.std)  # the readers' arithmetic: the same floats

    def _draw(self, flat: torch.Tensor) -> torch.Tensor:
        m, nf, h = self.num_images, self.num_full, int(self.images.shape[-1])
        # Both parts are computed for the whole batch and picked with where: no host sync.
        full = None
        if nf:
            full = self._normalise(self.images[flat.clamp(0, nf - 1) % m])
        if not self.num_crops:
            assert full is not None
            return full
        per = self.per_image
        c = (flat - nf).clamp(min=0) % (m * per)
        image, j = c // per, c % per
        if self.boxes is not None:
            crops = self._draw_boxes(image, j, h)
            if full is None:
                return crops
            return torch.where((flat < nf).view(-1, 1, 1, 1), full, crops)
        grid = crop_grid(h, self.n, self.r)
        offsets = torch.tensor(grid.offsets, device=flat.device)
        span = torch.arange(grid.side, device=flat.device)
        rows = (offsets[j // self.n].unsqueeze(1) + span).unsqueeze(2)  # (B, side, 1)
        cols = (offsets[j % self.n].unsqueeze(1) + span).unsqueeze(1)  # (B, 1, side)
        # Advanced indices split by the channel slice: the result is (B, side, side, C).
        patches = self.images[image.view(-1, 1, 1), :, rows, cols].permute(0, 3, 1, 2)
        crops = resize(self._normalise(patches), h)
        if full is None:
            return crops
        return torch.where((flat < nf).view(-1, 1, 1, 1), full, crops)

    def _draw_boxes(self, image: torch.Tensor, j: torch.Tensor, h: int) -> torch.Tensor:
        """The crops (image[b], box j[b]) of a sampler's boxes, each resized to h: one gather
        and one resize per box size in the batch (a host sync to group them)."""
        c = int(self.images.shape[1])
        out = torch.empty(image.shape[0], c, h, h, device=image.device)
        table = torch.tensor(self.boxes, device=image.device)  # (J, 4)
        sizes = table[:, 2]
        for side in torch.unique(sizes[j]).tolist():
            pick = (sizes[j] == side).nonzero().flatten()
            top, left = table[j[pick], 0], table[j[pick], 1]
            span = torch.arange(side, device=image.device)
            rows = (top.unsqueeze(1) + span).unsqueeze(2)  # (b, side, 1)
            cols = (left.unsqueeze(1) + span).unsqueeze(1)  # (b, 1, side)
            patches = self.images[image[pick].view(-1, 1, 1), :, rows, cols].permute(0, 3, 1, 2)
            out[pick] = resize(self._normalise(patches), h)
        return out
