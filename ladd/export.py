"""Writing a distilled set as a DD-Ranking folder, the layout ladd.sets reads as "ddranking".

DD-Ranking (ddranking 0.2.0) evaluates a method from a folder of torch files: `images.pt`
(float [M, C, H, W]), `labels.pt` (soft labels [M, K], e.g. DATM's learned logits) and `lr.pt`
(a 0-dim tensor, the learned learning rate) where the method has them (DD-Ranking's
demo_soft.py loads exactly these three). It gives hard labels by position: the images must be
saved class by class, the same number of each (ddranking/metrics/soft_label.py:505-506), so
`save_ddranking` sorts them that way and refuses an unbalanced set.

LADD's dense labels have no place in that layout (DD-Ranking relabels with its own teacher);
export the images (and a set's own soft labels) to compare distillers under its protocol.
"""

from __future__ import annotations

from pathlib import Path

import torch

from ladd.files import torch_save

__all__ = ["save_ddranking"]


def save_ddranking(
    folder: str | Path,
    images: torch.Tensor,
    labels: torch.Tensor,
    *,
    soft_labels: torch.Tensor | None = None,
    lr: float | None = None,
    num_classes: int | None = None,
) -> Path:
    """Write `images` (M, C, H, W), normalised, with hard `labels` (M,) as a DD-Ranking folder;
    `soft_labels` (M, K) go to labels.pt and `lr` to lr.pt. Returns the folder.

    Rows are reordered class by class (stable: the order within a class is kept), as
    DD-Ranking assigns hard labels by position; every class (`num_classes`, default the largest
    label + 1) must hold the same number of images.
    Files are written atomically, on the CPU, readable with torch.load(weights_only=True).

    Examples:
        >>> import tempfile, torch
        >>> from ladd import save_ddranking
        >>> from ladd.sets import load_set
        >>> labels = torch.arange(10).repeat(2)  # 0..9, 0..9: two images of each shapes class
        >>> folder = save_ddranking(tempfile.mkdtemp(), torch.randn(20, 3, 32, 32), labels, lr=0.01)
        >>> sorted(p.name for p in folder.iterdir())
        ['images.pt', 'lr.pt']
        >>> ds = load_set(folder, source="shapes")
        >>> ds.format, ds.labels[:6].tolist(), ds.lr
        ('ddranking', [0, 0, 1, 1, 2, 2], 0.01)
    """
    if images.dim() != 4 or labels.dim() != 1 or labels.shape[0] != images.shape[0]:
        raise ValueError(
            f"expected images (M, C, H, W) and labels (M,), got {tuple(images.shape)} and "
            f"{tuple(labels.shape)}"
        )
    labels = labels.detach().cpu().long()
    counts = torch.bincount(labels, minlength=num_classes or 0)
    if bool((counts != counts.max()).any()):
        raise ValueError(
            f"DD-Ranking assigns hard labels class by class, the same number each; this set "
            f"has {counts.tolist()} images per class"
        )
    order = torch.sort(labels, stable=True).indices  # class-major, each class in its order
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    torch_save(out / "images.pt", images.detach().cpu().float()[order].contiguous())
    if soft_labels is not None:
        if soft_labels.shape[0] != images.shape[0] or soft_labels.dim() != 2:
            raise ValueError(f"soft_labels must be (M, K), got {tuple(soft_labels.shape)}")
        torch_save(out / "labels.pt", soft_labels.detach().cpu().float()[order].contiguous())
    if lr is not None:
        torch_save(out / "lr.pt", torch.tensor(float(lr), dtype=torch.float64))
    return out
