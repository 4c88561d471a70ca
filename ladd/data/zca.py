"""ZCA whitening exactly as the MTT / DATM / DD-Ranking code applies it on CIFAR.

Those codes load images with `ToTensor()` only (no Normalize: [0, 1] pixels) and fit kornia's
`ZCAWhitening(eps=0.1, compute_inv=True)` on the whole train split. kornia's maths
(kornia/enhance/zca.py, `zca_mean` and `linear_transform`): flatten each image to D = C*H*W
features, mean mu over the images, unbiased covariance Sigma = Xc^T Xc / (N - 1), its SVD
U diag(S) U^T (an eigen-decomposition: Sigma is symmetric PSD), T = U diag(1/sqrt(S + eps)) U^T,
T_inv = U diag(sqrt(S + eps)) U^T; whiten: (x - mu) @ T; inverse: y @ T_inv + mu.

Here the covariance is accumulated in float64 (kornia accumulates in float32; the two agree to
~4e-6 on CIFAR-10) and the matrices are kept in float32. A ZCA therefore works on [0, 1] pixels:
a ZCA-space set has mean 0 / std 1 as its "normalisation", so `normalise(uint8, 0, 1)` followed
by `apply` puts real images into the set's space, and `invert` gives [0, 1] pixels back.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors.torch import load_file

from ladd.files import save_tensors

ZCA_MAX_FEATURES = 16384  # a (D, D) float32 matrix of 1 GB; 128 px images are out of reach
ZCA_SPACE = "pixels01"  # what a ZCA is fitted on: ToTensor() pixels in [0, 1], no Normalize
PIXEL_MEAN = (0.0, 0.0, 0.0)  # the "normalisation" of a ZCA-space set: x / 255
PIXEL_STD = (1.0, 1.0, 1.0)


@dataclass
class ZCA:
    """A fitted whitening; apply/invert work on [0, 1] pixel images (N, C, H, W)."""

    mean: torch.Tensor  # (1, D)
    transform: torch.Tensor  # (D, D)
    inverse: torch.Tensor  # (D, D)
    eps: float

    @property
    def num_features(self) -> int:
        return int(self.mean.shape[1])

    def _check(self, x: torch.Tensor) -> None:
        features = x[0].numel() if x.ndim == 4 and x.shape[0] else -1
        if x.ndim != 4 or (x.shape[0] and features != self.num_features):
            raise ValueError(
                f"ZCA fitted on {self.num_features} features per image, got images {tuple(x.shape)}"
            )

    def apply(self, x: torch.Tensor) -> torch.Tensor:
        """Whiten (N, C, H, W) [0, 1] pixel images (kornia's `forward`)."""
        self._check(x)
        mean = self.mean.to(x.device, x.dtype)
        transform = self.transform.to(x.device, x.dtype)
        return ((x.flatten(1) - mean) @ transform).reshape(x.shape)

    def invert(self, x: torch.Tensor) -> torch.Tensor:
        """Undo `apply`: ZCA-space (N, C, H, W) images back to [0, 1] pixels (kornia's
        `inverse_transform`, whose (x + mu T) T_inv equals x T_inv + mu)."""
        self._check(x)
        mean = self.mean.to(x.device, x.dtype)
        inverse = self.inverse.to(x.device, x.dtype)
        return (x.flatten(1) @ inverse + mean).reshape(x.shape)

    def to(self, device: str | torch.device) -> ZCA:
        return ZCA(
            self.mean.to(device), self.transform.to(device), self.inverse.to(device), self.eps
        )

    def save(self, path: str | Path) -> Path:
        """Write to a safetensors file (atomically; the eps rides along as a 0-dim tensor)."""
        tensors = {
            "mean": self.mean.cpu().contiguous(),
            "transform": self.transform.cpu().contiguous(),
            "inverse": self.inverse.cpu().contiguous(),
            "eps": torch.tensor(float(self.eps), dtype=torch.float64),
        }
        return save_tensors(path, tensors, {"space": ZCA_SPACE})

    @classmethod
    def load(cls, path: str | Path) -> ZCA:
        """Read a file written by `save` (ValueError when it is not one)."""
        tensors = load_file(str(path))
        try:
            mean, transform, inverse = tensors["mean"], tensors["transform"], tensors["inverse"]
            eps = float(tensors["eps"])
        except (KeyError, TypeError, RuntimeError) as err:
            raise ValueError(f"{path}: not a ZCA file ({err})") from None
        d = mean.shape[-1] if mean.ndim == 2 else -1
        if transform.shape != (d, d) or inverse.shape != (d, d):
            raise ValueError(f"{path}: ZCA matrices do not match the mean's {d} features")
        return cls(mean, transform, inverse, eps)


def _check_features(n: int, features: int) -> None:
    if n < 2:
        raise ValueError(f"fitting ZCA needs at least 2 images, got {n}")
    if features > ZCA_MAX_FEATURES:
        raise ValueError(
            f"ZCA on {features} features per image needs a {features}x{features} matrix: "
            f"only images up to {ZCA_MAX_FEATURES} values (e.g. 3x64x64) are supported"
        )


@torch.no_grad()
def fit_zca(images: torch.Tensor, eps: float = 0.1, *, chunk: int = 8192) -> ZCA:
    """Fit ZCA on float images (N, C, H, W) with kornia's maths (unbiased covariance).

    Pass [0, 1] pixels to whiten as MTT/DATM do (`fit_zca_on_pixels` takes uint8 directly).
    The mean and covariance are accumulated in float64 in chunks on the images' device; the
    eigen-decomposition runs in float64. Returns float32 matrices on the CPU.
    """
    if images.ndim != 4:
        raise ValueError(f"fit_zca needs (N, C, H, W) images, got {tuple(images.shape)}")
    return _fit(images.flatten(1), 1.0, eps, chunk)


@torch.no_grad()
def fit_zca_on_pixels(images_uint8: torch.Tensor, eps: float = 0.1, *, chunk: int = 8192) -> ZCA:
    """Fit ZCA on uint8 images (N, C, H, W) seen as x / 255, MTT's `ToTensor()` pixels.

    Converts chunk by chunk, so a 50,000-image split never exists as one float64 copy.
    """
    if images_uint8.ndim != 4:
        raise ValueError(f"fit_zca needs (N, C, H, W) images, got {tuple(images_uint8.shape)}")
    return _fit(images_uint8.flatten(1), 255.0, eps, chunk)


def _fit(flat: torch.Tensor, scale: float, eps: float, chunk: int) -> ZCA:
    """kornia's zca_mean on flat (N, D) rows divided by `scale`, float64 throughout."""
    n, features = flat.shape
    _check_features(n, features)
    if not eps > 0:  # also refuses NaN
        raise ValueError(f"ZCA eps must be > 0, got {eps}")
    dtype = torch.float64
    total = torch.zeros(1, features, dtype=dtype, device=flat.device)
    for start in range(0, n, chunk):
        total += flat[start : start + chunk].to(dtype).sum(dim=0, keepdim=True)
    mean = total / (n * scale)  # (1, D)
    cov = torch.zeros(features, features, dtype=dtype, device=flat.device)
    for start in range(0, n, chunk):
        centred = flat[start : start + chunk].to(dtype) / scale - mean  # (b, D)
        cov.addmm_(centred.T, centred)
    cov = cov / (n - 1)  # unbiased, as kornia's default
    if not torch.isfinite(cov).all():
        raise ValueError("cannot fit ZCA: the images contain NaN or Inf")
    cov = (cov + cov.T) / 2  # exact symmetry for eigh
    eigenvalues, eigenvectors = torch.linalg.eigh(cov)  # U diag(S) U^T, S ascending
    eigenvalues = eigenvalues.clamp_min(0.0) + eps
    transform = (eigenvectors * eigenvalues.rsqrt()) @ eigenvectors.T  # U S^-1/2 U^T
    inverse = (eigenvectors * eigenvalues.sqrt()) @ eigenvectors.T  # U S^1/2 U^T
    return ZCA(mean.float().cpu(), transform.float().cpu(), inverse.float().cpu(), float(eps))
