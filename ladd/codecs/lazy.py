"""Training targets decoded when a batch is drawn: a stand-in for TrainingData.targets.

`EncodedTargets` holds the rows of a flat target list as segments: float rows kept as they are
(the full images' labels), and encoded dense-label rows (a codec payload). `targets[idx]` for a
long index of any shape decodes only those rows, on the payload's device: (*idx.shape, K).
No [M, N*N, K] float tensor is ever built.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ladd.codecs.base import Codec, Payload


@dataclass
class EncodedTargets:
    """Float rows `head` (H, K) followed by `rows` encoded crop rows (payload (M, N*N, ...))."""

    head: torch.Tensor  # float (H, K)
    codec: Codec
    payload: Payload  # leading dims (M, N*N)
    num_classes: int

    @property
    def num_encoded(self) -> int:
        t = next(iter(self.payload.values()))
        return int(t.shape[0] * t.shape[1])

    @property
    def shape(self) -> torch.Size:
        return torch.Size((len(self), self.num_classes))

    @property
    def device(self) -> torch.device:
        return self.head.device

    def __len__(self) -> int:
        return int(self.head.shape[0]) + self.num_encoded

    def to(self, device: str | torch.device) -> EncodedTargets:
        return EncodedTargets(
            self.head.to(device),
            self.codec,
            {k: v.to(device) for k, v in self.payload.items()},
            self.num_classes,
        )

    def __getitem__(self, idx: torch.Tensor) -> torch.Tensor:
        """Decoded float32 rows (*idx.shape, K); no host sync (both parts decoded, then where)."""
        idx = torch.as_tensor(idx, device=self.head.device).long()
        h = int(self.head.shape[0])
        in_head = idx < h
        from_head = self.head.float()[idx.clamp(0, max(h - 1, 0))] if h else None
        crop_rows = (idx - h).clamp(0, max(self.num_encoded - 1, 0))
        part = self.codec.gather(self.payload, crop_rows, 0)
        decoded = self.codec.decode_rows(part, self.num_classes)  # (*idx.shape, K)
        if from_head is None:
            return decoded
        return torch.where(in_head[..., None], from_head, decoded)

    def materialise(self) -> torch.Tensor:
        """Every row decoded: (T, K) float32 (what the default path builds)."""
        return self[torch.arange(len(self), device=self.head.device)]
