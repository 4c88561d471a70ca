"""Training targets decoded when a batch is drawn: a stand-in for TrainingData.targets.

`EncodedTargets` holds the rows of a flat target list as segments: float rows kept as they are
(the full images' labels), and encoded dense-label rows (a codec payload). `targets[idx]` for a
long index of any shape decodes only those rows, on the payload's device: (*idx.shape, K).
No [M, N*N, K] float tensor is ever built.
"""

from __future__ import annotations

from collections.abc import Iterator
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


DECODE_CHUNK_FLOATS = 1 << 22  # decoded floats per chunk (16 MB) where a whole set is walked


@dataclass
class EncodedDense:
    """A set's dense labels as a codec stores them: payload tensors with leading dims
    (M, N*N); decoded only where asked (one image, a chunk of images, a batch's rows).

    Examples:
        >>> import torch
        >>> from ladd import EncodedDense, parse_codec
        >>> probs = torch.softmax(torch.randn(4, 25, 10), -1)  # (M, N*N, K)
        >>> enc = EncodedDense.encode(parse_codec("float16"), probs)
        >>> enc.shape, enc.nbytes()  # 2 bytes per probability
        (torch.Size([4, 25, 10]), 2000)
        >>> torch.allclose(enc.decode(1, 2), probs[1:2], atol=1e-3)
        True
    """

    codec: Codec
    payload: Payload
    num_classes: int

    @classmethod
    def encode(cls, codec: Codec, probs: torch.Tensor) -> EncodedDense:
        """probs (M, N*N, K) -> their encoding (on probs' device)."""
        return cls(codec, codec.encode(probs), int(probs.shape[-1]))

    @classmethod
    def concat(cls, parts: list[EncodedDense]) -> EncodedDense:
        """Encodings of consecutive images joined along M (one codec)."""
        first = parts[0]
        payload = {k: torch.cat([p.payload[k] for p in parts]) for k in first.payload}
        return cls(first.codec, payload, first.num_classes)

    @property
    def shape(self) -> torch.Size:
        """(M, N*N, K): the decoded shape."""
        t = next(iter(self.payload.values()))
        return torch.Size((int(t.shape[0]), int(t.shape[1]), self.num_classes))

    @property
    def spec(self) -> str:
        return self.codec.spec

    def nbytes(self) -> int:
        """Raw payload bytes (what a file stores for these labels)."""
        return self.codec.nbytes(self.payload)

    def check(self) -> None:
        """CodecError (one line) on payload tensors of the wrong names, dtypes, shapes or values."""
        self.codec.check(self.payload, self.num_classes)

    def decode(self, start: int = 0, stop: int | None = None) -> torch.Tensor:
        """Images start..stop decoded: float32 (m, N*N, K)."""
        part = {k: v[start:stop] for k, v in self.payload.items()}
        return self.codec.decode_rows(part, self.num_classes)

    def chunks(self, floats: int = DECODE_CHUNK_FLOATS) -> Iterator[tuple[int, torch.Tensor]]:
        """(first image, decoded (m, N*N, K)) over the set, about `floats` decoded at a time."""
        m, crops, k = self.shape
        step = max(1, floats // max(1, crops * k))
        for i in range(0, m, step):
            yield i, self.decode(i, i + step)

    def select(self, index: torch.Tensor) -> EncodedDense:
        """The encoding of images `index` (a long tensor), in that order."""
        return EncodedDense(
            self.codec, {k: v[index] for k, v in self.payload.items()}, self.num_classes
        )

    def to(self, device: str | torch.device) -> EncodedDense:
        return EncodedDense(
            self.codec, {k: v.to(device) for k, v in self.payload.items()}, self.num_classes
        )

    def targets(self, head: torch.Tensor) -> EncodedTargets:
        """Training targets: float rows `head` (H, K), then every crop row of these labels."""
        return EncodedTargets(head, self.codec, self.payload, self.num_classes)
