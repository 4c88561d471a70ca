"""generate_dense_labels' fast paths (bf16 forward, compiled forward with one static batch shape,
large crop batches) compute the fp32 labels: for fp32 to float32 rounding (1e-5 relative, 1e-6
absolute: other batch shapes take other BLAS paths), within a stated tolerance for bf16.
"""

from __future__ import annotations

import pytest
import torch

import ladd.trainers.compile as compile_mod
from ladd.dense import generate_dense_labels
from ladd.models import create_model

N, R = 3, 0.625


def _labeler(scale: float = 1.0) -> torch.nn.Module:
    """A small random ConvNet-D3 labeler; `scale` sharpens its logits (more confident labels)."""
    m = create_model("convnet_d3", 10, 32, seed=0, width=16)
    with torch.no_grad():
        m.classifier.weight.mul_(scale)
        m.classifier.bias.mul_(scale)
    return m


def _images(m: int = 7) -> torch.Tensor:
    return torch.randn(m, 3, 32, 32, generator=torch.Generator().manual_seed(0))


def test_crop_batch_size_does_not_change_the_labels(one_thread) -> None:
    lab, x = _labeler(), _images()
    one = generate_dense_labels(x, lab, N, R, batch_size=N * N, device="cpu")  # 1 image a pass
    big = generate_dense_labels(x, lab, N, R, batch_size=4096, device="cpu")  # all at once
    odd = generate_dense_labels(x, lab, N, R, batch_size=2 * N * N + 1, device="cpu")
    assert one.shape == (7, N * N, 10) and one.device.type == "cpu"
    torch.testing.assert_close(big, one, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(odd, one, rtol=1e-5, atol=1e-6)


def test_bf16_labels_stay_within_the_stated_tolerance_of_fp32(one_thread) -> None:
    """bf16 autocast of the labeler (softmax in fp32) against fp32, on the CPU's bf16 kernels.

    Stated tolerance: max |p_bf16 - p_fp32| <= 3e-2 and mean <= 2e-3 for a labeler whose labels
    average ~0.6 confidence; measured here ~1.5e-2 max and ~9e-4 mean (~8e-4 max for an
    unconfident one). The issue's 1e-3 in probability holds for the fp32 path (compiled or
    not), not for bf16 once labels are confident; so dense labels default to fp32.
    """
    x = _images()
    for scale, max_tol, mean_tol in ((1.0, 2e-3, 3e-4), (10.0, 3e-2, 2e-3)):
        lab = _labeler(scale)
        ref = generate_dense_labels(x, lab, N, R, device="cpu")
        low = generate_dense_labels(x, lab, N, R, device="cpu", precision="bf16")
        diff = (low - ref).abs()
        assert diff.max() <= max_tol and diff.mean() <= mean_tol, (scale, diff.max(), diff.mean())
        assert (low.argmax(-1) == ref.argmax(-1)).float().mean() >= 0.9
        torch.testing.assert_close(low.sum(-1), torch.ones(7, N * N))  # still distributions


def test_compiled_forward_sees_one_batch_shape_and_drops_the_padding(monkeypatch, one_thread):
    """With a stand-in compiler (the real one is exercised on the GPU): every call gets the same
    crop batch shape, the last batch is padded, and the padding never reaches the labels."""
    shapes = []

    def fake_compile(fn, mode, *, layout_optimization=False):
        def compiled(crops):
            shapes.append(tuple(crops.shape))
            return fn(crops)

        return compiled

    monkeypatch.setattr(compile_mod, "compile_fn", fake_compile)
    lab, x = _labeler(), _images(7)
    ref = generate_dense_labels(x, lab, N, R, batch_size=3 * N * N, device="cpu")
    got = generate_dense_labels(x, lab, N, R, batch_size=3 * N * N, device="cpu", compile="default")
    assert set(shapes) == {(3 * N * N, 3, 32, 32)} and len(shapes) == 3  # 3 + 3 + (1 + 2 pad)
    torch.testing.assert_close(got, ref, rtol=1e-5, atol=1e-6)


def test_auto_compile_stays_off_on_the_cpu_and_for_small_sets(monkeypatch) -> None:
    called = []
    monkeypatch.setattr(compile_mod, "compile_fn", lambda *a, **k: called.append(a) or a[0])
    generate_dense_labels(_images(2), _labeler(), N, R, device="cpu")
    assert not called
    with pytest.raises(ValueError, match="unknown precision"):
        generate_dense_labels(_images(2), _labeler(), N, R, device="cpu", precision="fp16")
