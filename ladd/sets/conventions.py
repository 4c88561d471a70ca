"""How each public distiller normalises its images, and checks that a set's values agree.

A distilled-set file stores normalised floats but not the statistics: they come from the code
that wrote it. Each distiller has its own conventions (read in its source):

    MTT, DATM, DD-Ranking  CIFAR-100 normalised with CIFAR-10's statistics (mtt-distillation
                           utils.py:122-123, DATM utils/utils_baseline.py:179-180, DD-Ranking
                           ddranking/utils/data.py:85-86); with --zca no Normalize at all: kornia
                           ZCAWhitening(eps=0.1) of [0, 1] pixels (ladd.data.zca)
    GLaD                   generated images (space "wp", GLaD's method) of ImageNet subsets and of
                           CIFAR-100 (whose branch leaves config.mean unset) as
                           (x - (0.4377, 0.4438, 0.4728)) / ImageNet std (glad utils.py:87-88,
                           glad_utils.py:310 and :324-341); CIFAR-10 with CIFAR-10's (utils.py:106-109).
                           Its pixel-space runs (space "p") use the dataset's: load those as mtt.
                           Its test loader normalises the real images otherwise: ImageNet subsets
                           with ImageNet's statistics (utils.py:150-160, :166), CIFAR-100 with
                           0.5/0.5 (utils.py:125-133), CIFAR-10 with CIFAR-10's (utils.py:114-116)
    RDED                   its image folders, of every source, CIFAR included, with ImageNet's
                           statistics, the test split too (RDED validation/main.py:111-113, :126,
                           :157)
    DC / DSA / DM          CIFAR-100 with its own (0.5071, 0.4866, 0.4409) / (0.2673, 0.2564,
                           0.2762) (DatasetCondensation utils.py:61-62)

`convention` picks the one that applies to the set, `evaluation_convention` the one its code's
evaluation applies to the real test images when that is another; `better_fit` warns when the values fit another set of
statistics much better than the applied one (pixels recovered outside [0, 1]); `looks_whitened`
notices ZCA-space images loaded as if they were normalised pixels.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ladd.data import (
    CIFAR10_MEAN,
    CIFAR10_STD,
    CIFAR100_MEAN,
    CIFAR100_STD,
    IMAGENET_MEAN,
    IMAGENET_STD,
    IMAGENET_SUBSETS,
    SourceInfo,
)
from ladd.data.zca import PIXEL_MEAN, PIXEL_STD

GLAD_MEAN = (0.4377, 0.4438, 0.4728)  # GLaD's ImageNet-subset images (with ImageNet's std)


@dataclass(frozen=True)
class Normalisation:
    """Per-channel statistics with a name a user recognises."""

    name: str
    mean: tuple[float, ...]
    std: tuple[float, ...]

    def same_as(self, other: Normalisation, atol: float = 5e-4) -> bool:
        pairs = list(zip(self.mean + self.std, other.mean + other.std, strict=False))
        return len(self.mean) == len(other.mean) and all(abs(a - b) <= atol for a, b in pairs)


CIFAR10_STATS = Normalisation("CIFAR-10 statistics", CIFAR10_MEAN, CIFAR10_STD)
CIFAR100_STATS = Normalisation("CIFAR-100 statistics", CIFAR100_MEAN, CIFAR100_STD)
DC_CIFAR100_STATS = Normalisation(
    "DC's CIFAR-100 statistics", (0.5071, 0.4866, 0.4409), (0.2673, 0.2564, 0.2762)
)
IMAGENET_STATS = Normalisation("ImageNet statistics", IMAGENET_MEAN, IMAGENET_STD)
GLAD_STATS = Normalisation("GLaD's mean with ImageNet's std", GLAD_MEAN, IMAGENET_STD)
PIXELS01 = Normalisation("[0, 1] pixels (ToTensor only)", PIXEL_MEAN, PIXEL_STD)
PLUS_MINUS_ONE = Normalisation("[-1, 1] pixels (mean 0.5, std 0.5)", (0.5,) * 3, (0.5,) * 3)
CANDIDATES = (
    CIFAR10_STATS,
    CIFAR100_STATS,
    DC_CIFAR100_STATS,
    IMAGENET_STATS,
    GLAD_STATS,
    PIXELS01,
    PLUS_MINUS_ONE,
)


def source_stats(info: SourceInfo) -> Normalisation:
    return Normalisation(f"{info.name} statistics", tuple(info.mean), tuple(info.std))


def convention(fmt: str, info: SourceInfo) -> tuple[Normalisation, str | None]:
    """The statistics that format `fmt`'s code normalises source `info` with, and a note
    saying so when they are not the source's own."""
    if info.name == "cifar100" and fmt in ("mtt", "datm", "ddranking"):
        return CIFAR10_STATS, (
            "MTT, DATM and DD-Ranking normalise CIFAR-100 with CIFAR-10's statistics: applied "
            "those (pass --mean/--std to override)"
        )
    if fmt == "glad" and (info.name in IMAGENET_SUBSETS or info.name == "cifar100"):
        return GLAD_STATS, "GLaD normalises its generated images with mean (0.4377, 0.4438, 0.4728)"
    if fmt == "dc" and info.name == "cifar100":
        return DC_CIFAR100_STATS, None
    if fmt == "rded":
        own = source_stats(info)
        if own.same_as(IMAGENET_STATS):
            return own, None
        return IMAGENET_STATS, (
            "RDED normalises its images and the test split with ImageNet statistics, for "
            f"{info.name} too (validation/main.py:111-113): applied those (pass --mean/--std "
            "to override)"
        )
    return source_stats(info), None


def evaluation_convention(fmt: str, info: SourceInfo) -> tuple[Normalisation, str] | None:
    """The statistics that format `fmt`'s own evaluation normalises the real test images of
    `info` with, and a note saying so, when they differ from `convention`'s (None: the same).

    GLaD trains on generated images normalised with GLaD's mean and ImageNet's std but builds
    its test loader with the dataset's transform: ImageNet's statistics on ImageNet subsets
    (glad utils.py:150-160, :166) and 0.5/0.5 on CIFAR-100 (utils.py:125-133, space "wp")."""
    if fmt != "glad":
        return None
    if info.name in IMAGENET_SUBSETS:
        return IMAGENET_STATS, (
            "GLaD tests on ImageNet subsets normalised with ImageNet's statistics (its "
            "utils.py:150-160), not with the set's: the test images get those"
        )
    if info.name == "cifar100":
        return PLUS_MINUS_ONE, (
            "GLaD tests on CIFAR-100 normalised with mean 0.5 / std 0.5 (its utils.py:125-133), "
            "not with the set's: the test images get those"
        )
    return None


def _quantiles(images: torch.Tensor, q: float = 0.001) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel low/high quantiles of (M, C, H, W) images, on at most ~1M values each."""
    per_channel = images.detach().float().transpose(0, 1).reshape(images.shape[1], -1)  # (C, V)
    step = max(1, per_channel.shape[1] // 1_000_000)
    sample = per_channel[:, ::step]
    return torch.quantile(sample, q, dim=1), torch.quantile(sample, 1 - q, dim=1)


def _fit(images: torch.Tensor, norm: Normalisation) -> tuple[float, float, float, float]:
    """(low, high, excess, distance) of the pixels `norm` recovers: their 0.1 % / 99.9 %
    quantiles over all channels, how far those fall outside [0, 1] (summed over channels; 0
    for a consistent normalisation) and how far they are from filling exactly [0, 1]."""
    lo, hi = _quantiles(images)
    std = torch.tensor(norm.std, dtype=torch.float32)
    mean = torch.tensor(norm.mean, dtype=torch.float32)
    lo, hi = lo * std + mean, hi * std + mean  # (C,) each; std > 0 keeps the order
    excess = (-lo).clamp_min(0) + (hi - 1).clamp_min(0)
    distance = lo.abs() + (hi - 1).abs()
    return float(lo.min()), float(hi.max()), float(excess.sum()), float(distance.sum())


def better_fit(
    images: torch.Tensor,
    applied: Normalisation,
    extra: tuple[Normalisation, ...] = (),
    *,
    bad: float = 0.05,
    good: float = 0.02,
) -> str | None:
    """A warning when the applied normalisation recovers pixels outside [0, 1] and another
    known one keeps them inside (of those, the one whose pixels fill [0, 1] most exactly);
    None otherwise. Only clear cases: a trained set whose pixels left [0, 1] under every
    candidate says nothing."""
    if images.ndim != 4 or images.shape[1] != len(applied.mean) or images.numel() == 0:
        return None
    lo, hi, excess, _ = _fit(images, applied)
    if excess <= bad:
        return None
    best: tuple[float, Normalisation, float, float] | None = None
    for cand in (*extra, *CANDIDATES):
        if len(cand.mean) != images.shape[1] or cand.same_as(applied):
            continue
        c_lo, c_hi, c_excess, c_distance = _fit(images, cand)
        if c_excess <= good and (best is None or c_distance < best[0]):
            best = (c_distance, cand, c_lo, c_hi)
    if best is None:
        return None
    _, cand, c_lo, c_hi = best
    return (
        f"the values fit {cand.name} (pixels {c_lo:.2f}..{c_hi:.2f}) better than the applied "
        f"{applied.name} (pixels {lo:.2f}..{hi:.2f}): if the set was normalised with those, "
        "pass --mean/--std or --format"
    )


def whitening_stats(images: torch.Tensor) -> tuple[float, float]:
    """(overall std, mean correlation of horizontally neighbouring values) of (M, C, H, W)."""
    x = images.detach().float()
    a, b = x[..., :, :-1], x[..., :, 1:]  # (M, C, H, W-1) each
    a = a - a.mean(dim=(-1, -2), keepdim=True)
    b = b - b.mean(dim=(-1, -2), keepdim=True)
    denom = ((a * a).sum(dim=(-1, -2)) * (b * b).sum(dim=(-1, -2))).sqrt().clamp_min(1e-12)
    corr = ((a * b).sum(dim=(-1, -2)) / denom).mean()
    return float(x.std()), float(corr)


def looks_unwhitened(images: torch.Tensor) -> str | None:
    """A hint when float images read as ZCA space look like plainly normalised photos instead:
    a spread near 1 and strongly correlated neighbours, which whitening removes (CIFAR-10 in
    ZCA space: std 0.27 / neighbour correlation 0.67; normalised: ~1 / 0.91). Only clear cases
    (std > 0.5 and correlation > 0.85) answer: e.g. a DM/DSA result file given --zca, whose
    images would be used as they are while the test split is whitened."""
    if images.ndim != 4 or images.shape[-1] < 2 or images.shape[0] == 0:
        return None
    spread, corr = whitening_stats(images)
    if spread > 0.5 and corr > 0.85:
        return (
            f"the images do not look ZCA-whitened (std {spread:.2f}, neighbouring values "
            f"correlate {corr:.2f}; ZCA-space CIFAR-10 ~0.27 and ~0.67, normalised photos ~1 "
            "and ~0.9)"
        )
    return None


def looks_whitened(images: torch.Tensor) -> str | None:
    """A hint when float images look ZCA-whitened rather than normalised: small overall spread
    and weakly correlated neighbours (real CIFAR-10, measured: ZCA std 0.27 / neighbour
    correlation 0.67; normalised std ~1 / correlation 0.91)."""
    if images.ndim != 4 or images.shape[-1] < 2 or images.shape[0] == 0:
        return None
    spread, corr = whitening_stats(images)
    if 0.01 < spread < 0.5 and corr < 0.8:  # constant images (spread 0) are not whitened
        return (
            f"the images look ZCA-whitened (std {spread:.2f}, neighbouring values correlate "
            f"{corr:.2f}; normalised photos ~1 and ~0.9): if they come from MTT, DATM or "
            "DD-Ranking run with --zca, load them with --zca"
        )
    return None
