"""ZCA whitening as the MTT/DATM code lineage applies it on CIFAR.

Same maths as kornia's ZCAWhitening(eps=0.1) fitted on the whole normalised train set: flatten
each image to D = C*H*W features, take the unbiased covariance, and with its eigen-decomposition
U diag(S) U^T form T = U diag(1/sqrt(S + eps)) U^T and T_inv = U diag(sqrt(S + eps)) U^T.
apply: (x - mean) @ T;  invert: y @ T_inv + mean.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors.torch import load_file

from ladd.files import save_tensors

ZCA_MAX_FEATURES = 16384  # a (D, D) float32 matrix of 1 GB; 128 px images are out of reach


@dataclass
class ZCA:
    """A fitted whitening; apply/invert work on normalised float images (N, C, H, W)."""

    mean: torch.Tensor  # (1, D)
    transform: torch.Tensor  # (D, D)
    inverse: torch.Tensor  # (D, D)
    eps: float

    @property
    def num_features(self) -> int:
        return int(self.mean.shape[1])

    def _check(self, x: torch.Tensor) -> None:
        features = x[0].numel() if x.ndim == 4 else 0
        if features != self.num_features:
            raise ValueError(
                f"ZCA fitted on {self.num_features} features per image, got images {tuple(x.shape)}"
            )

    def apply(self, x: torch.Tensor) -> torch.Tensor:
        """Whiten (N, C, H, W) normalised images."""
        self._check(x)
        mean = self.mean.to(x.device, x.dtype)
        transform = self.transform.to(x.device, x.dtype)
        return ((x.flatten(1) - mean) @ transform).reshape(x.shape)

    def invert(self, x: torch.Tensor) -> torch.Tensor:
        """Undo `apply`: ZCA-space (N, C, H, W) images back to normalised pixel space."""
        self._check(x)
        mean = self.mean.to(x.device, x.dtype)
        inverse = self.inverse.to(x.device, x.dtype)
        return (x.flatten(1) @ inverse + mean).reshape(x.shape)

    def to(self, device: str | torch.device) -> ZCA:
        return ZCA(
            self.mean.to(device), self.transform.to(device), self.inverse.to(device), self.eps
        )

    def save(self, path: str | Path) -> Path:
        """Write to a safetensors file (the eps rides along as a 0-dim tensor)."""
        path = Path(path)
        tensors = {
            "mean": self.mean.cpu().contiguous(),
            "transform": self.transform.cpu().contiguous(),
            "inverse": self.inverse.cpu().contiguous(),
            "eps": torch.tensor(float(self.eps), dtype=torch.float64),
        }
        return save_tensors(path, tensors)

    @classmethod
    def load(cls, path: str | Path) -> ZCA:
        tensors = load_file(str(path))
        return cls(tensors["mean"], tensors["transform"], tensors["inverse"], float(tensors["eps"]))


@torch.no_grad()
def fit_zca(images: torch.Tensor, eps: float = 0.1) -> ZCA:
    """Fit ZCA whitening on normalised float images (N, C, H, W) (kornia's maths, unbiased cov).

    The covariance is accumulated in chunks on the images' device; the eigen-decomposition
    runs in float64 for accuracy. Returns float32 matrices on the CPU.
    """
    if images.ndim != 4 or images.shape[0] < 2:
        raise ValueError(f"fit_zca needs (N>=2, C, H, W) images, got {tuple(images.shape)}")
    n, features = images.shape[0], images[0].numel()
    if features > ZCA_MAX_FEATURES:
        raise ValueError(
            f"ZCA on {features} features per image needs a {features}x{features} matrix: "
            f"only images up to {ZCA_MAX_FEATURES} values (e.g. 3x64x64) are supported"
        )
    # float64 on a GPU (cheap there, and immune to TF32 matmul settings); float32 on a CPU
    dtype = torch.float64 if images.is_cuda else torch.float32
    flat = images.flatten(1)
    mean = flat.to(dtype).mean(dim=0, keepdim=True)  # (1, D)
    cov = torch.zeros(features, features, dtype=dtype, device=images.device)
    for start in range(0, n, 8192):
        chunk = flat[start : start + 8192].to(dtype) - mean  # (b, D)
        cov.addmm_(chunk.T, chunk)
    cov = (cov / (n - 1)).double()
    cov = (cov + cov.T) / 2  # exact symmetry for eigh
    eigenvalues, eigenvectors = torch.linalg.eigh(cov)  # ascending; U diag(S) U^T
    eigenvalues = eigenvalues.clamp_min(0.0) + eps
    transform = (eigenvectors * eigenvalues.rsqrt()) @ eigenvectors.T
    inverse = (eigenvectors * eigenvalues.sqrt()) @ eigenvectors.T
    return ZCA(mean.float().cpu(), transform.float().cpu(), inverse.float().cpu(), float(eps))
