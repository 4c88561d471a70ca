"""Dense-label codecs: round trips within the stated error, payload checks, lazy targets."""

from __future__ import annotations

import pytest
import torch

from ladd.codecs import STANDARD_SPECS, CodecError, EncodedTargets, parse_codec
from ladd.codecs.topk import index_dtype

SPECS = (*STANDARD_SPECS, "topk:5,uint8,renorm", "topk:3,float16,renorm")


def _probs(kind: str, k: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    scale = 1.0 if kind == "random" else 8.0
    return torch.softmax(torch.randn(4, 9, k, generator=g) * scale, -1)  # (M, n*n, K)


@pytest.mark.parametrize("spec", SPECS)
@pytest.mark.parametrize("k", [10, 1000])
@pytest.mark.parametrize("kind", ["random", "peaked"])
def test_round_trip_within_stated_error(spec: str, k: int, kind: str) -> None:
    codec = parse_codec(spec)
    p = _probs(kind, k)
    out = codec.decode(codec.encode(p), k)
    assert out.shape == p.shape and out.dtype == torch.float32
    assert float((out - p).abs().max()) <= codec.max_abs_error(k) + 1e-7
    assert float((out.sum(-1) - 1).abs().max()) < 1e-2
    assert torch.equal(out.argmax(-1), p.argmax(-1)) or codec.max_abs_error(k) > 0


def test_float32_is_exact() -> None:
    p = _probs("random", 10)
    codec = parse_codec("float32")
    assert torch.equal(codec.decode(codec.encode(p), 10), p)


def test_spec_round_trips_and_bytes() -> None:
    for spec in SPECS:
        c = parse_codec(spec)
        assert parse_codec(c.spec).spec == c.spec
        pay = c.encode(_probs("random", 10))
        assert c.nbytes(pay) == 4 * 9 * c.bytes_per_crop(10)
    # top-5 uint8 at K = 1000: 5 x (2-byte index + 1-byte value) against 1000 x 2 for float16
    assert parse_codec("float16").bytes_per_crop(1000) / parse_codec("topk:5,uint8").bytes_per_crop(
        1000
    ) == pytest.approx(2000 / 15)


def test_index_dtype_is_smallest_that_holds_k() -> None:
    assert index_dtype(10) == torch.uint8 and index_dtype(256) == torch.uint8
    assert index_dtype(1000) == torch.int16 and index_dtype(65536) == torch.int16
    assert index_dtype(70000) == torch.int32


def test_sixteen_bit_indices_read_unsigned() -> None:
    k = 60000
    p = torch.full((1, 1, k), 1e-9)
    p[0, 0, 59999] = 1.0
    p = p / p.sum(-1, keepdim=True)
    c = parse_codec("topk:1,float16")
    assert int(c.decode(c.encode(p), k)[0, 0].argmax()) == 59999


@pytest.mark.parametrize(
    "spec, key, bad, message",
    [
        ("topk:2,uint8", "index", lambda t: t.to(torch.int32), "must be uint8"),
        ("topk:2,uint8", "index", lambda t: t.fill_(200), "out of range"),
        ("topk:2,uint8", "value", lambda t: t[..., :1], "must be (M, N*N, 2)"),
        ("int8:affine", "step", lambda t: t.zero_(), "positive"),
        ("float16", "probs", lambda t: t.fill_(float("nan")), "NaN"),
    ],
)
def test_malformed_payload_refused_in_one_line(spec, key, bad, message) -> None:
    c = parse_codec(spec)
    pay = c.encode(_probs("random", 10))
    pay[key] = bad(pay[key].clone())
    with pytest.raises(CodecError) as info:
        c.decode(pay, 10)
    assert message in str(info.value) and "\n" not in str(info.value)


@pytest.mark.parametrize("spec", ["nope", "topk:abc", "int8:cube", "float16:3", "topk:0"])
def test_bad_spec_refused(spec: str) -> None:
    with pytest.raises(CodecError):
        parse_codec(spec)


def test_encoded_targets_index_equals_materialised_decode() -> None:
    c = parse_codec("topk:3,uint8")
    p = _probs("peaked", 10)
    head = torch.eye(10)[:4]
    t = EncodedTargets(head, c, c.encode(p), 10)
    full = torch.cat([head, c.decode(c.encode(p), 10).reshape(-1, 10)])
    assert len(t) == 4 + 36 and tuple(t.shape) == (40, 10)
    idx = torch.randint(0, 40, (3, 5), generator=torch.Generator().manual_seed(1))
    assert torch.equal(t[idx], full[idx]) and torch.equal(t.materialise(), full)


def test_encoded_targets_hold_payload_bytes_only() -> None:
    """Tensor-size count: a 1000-class set's lazy targets hold ~15 bytes per crop, not 4000."""
    m, k = 100, 1000
    c = parse_codec("topk:5,uint8")
    t = EncodedTargets(torch.zeros(0, k), c, c.encode(_probs("peaked", k).repeat(25, 1, 1)), k)
    held = sum(v.numel() * v.element_size() for v in t.payload.values())
    assert held == m * 9 * 15 < m * 9 * k * 4 / 200
    assert tuple(t[torch.arange(8)].shape) == (8, k)
