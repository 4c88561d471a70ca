"""ladd.dsa: the single form (one batch, draws from a generator) and the batched form (a stack
of seeds' batches, draws made ahead), which computes what the single form computes."""

import pytest
import torch

import ladd.dsa as augment
from ladd.dsa import (
    DSA_OPS,
    DSAConfig,
    apply_op,
    batched_dsa,
    crop,
    cutout,
    draw_dsa_epoch,
    draw_dsa_params,
    dsa,
    flip,
)


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


@pytest.mark.parametrize("op", DSA_OPS)
def test_each_op_keeps_shape_and_is_finite(op):
    x = torch.randn(5, 3, 32, 32)
    y = apply_op(x, op, _gen(0))
    assert y.shape == x.shape and torch.isfinite(y).all()


@pytest.mark.parametrize("op", DSA_OPS)
def test_each_op_is_seed_reproducible(op):
    x = torch.randn(4, 3, 16, 16)
    assert torch.equal(apply_op(x, op, _gen(3)), apply_op(x, op, _gen(3)))


def test_dsa_call_is_seed_reproducible_and_varies_with_seed():
    x = torch.randn(8, 3, 32, 32)
    a = [dsa(x, g) for g in [_gen(1)] for _ in range(5)]
    g = _gen(1)
    b = [dsa(x, g) for _ in range(5)]
    for u, v in zip(a, b, strict=True):
        assert torch.equal(u, v)
    outs = {dsa(x, _gen(s)).sum().item() for s in range(10)}
    assert len(outs) > 1


def test_params_are_drawn_per_sample():
    x = torch.ones(16, 3, 16, 16)
    y = cutout(x, _gen(0))
    zero_counts = (y == 0).flatten(1).sum(1)
    # different centres per sample give different numbers of zeroed pixels
    assert len(set(zero_counts.tolist())) > 1


def test_flip_mirrors_or_keeps_each_sample():
    x = torch.randn(32, 3, 8, 8)
    y = flip(x, _gen(0))
    for i in range(32):
        assert torch.equal(y[i], x[i]) or torch.equal(y[i], x[i].flip(-1))


def test_crop_shift_is_bounded_and_zero_filled():
    x = torch.ones(64, 1, 32, 32)
    y = crop(x, _gen(0))
    # at most 4 px of zero fill per axis (round(32 / 8)), at least one sample shifted
    per_sample_zero_rows = (y[:, 0].sum(2) == 0).sum(1)
    assert per_sample_zero_rows.max() <= 4
    assert (y == 0).any()


def test_empty_strategy_is_identity_and_unknown_op_rejected():
    x = torch.randn(2, 3, 8, 8)
    assert torch.equal(dsa(x, _gen(0), DSAConfig(strategy="")), x)
    with pytest.raises(ValueError):
        dsa(x, _gen(0), DSAConfig(strategy="color_blur"))


def test_works_on_crops_batch_too():
    crops = torch.randn(2 * 25, 3, 32, 32)
    assert dsa(crops, _gen(0)).shape == crops.shape


# -- the batched form ---------------------------------------------------------------------


class _Draws:
    """Stand-in for ladd.dsa's random draws: returns prepared tensors in order."""

    def __init__(self, values: list[torch.Tensor]) -> None:
        self.values = list(values)

    def __call__(self, *args, **kwargs) -> torch.Tensor:
        return self.values.pop(0)


@pytest.mark.parametrize("op", DSA_OPS)
def test_batched_form_equals_the_single_form_given_the_same_draws(op, monkeypatch) -> None:
    n, h = 6, 16
    x = torch.randn(n, 3, h, h, generator=torch.Generator().manual_seed(3))
    u = torch.rand(n, 10, generator=torch.Generator().manual_seed(4))
    cfg = DSAConfig()
    s = int(h * cfg.crop_ratio + 0.5)
    draws = {
        "color": ([u[:, i].view(n, 1, 1, 1) for i in range(3)], []),
        "crop": (
            [],
            [
                (u[:, 3] * (2 * s + 1)).floor().long() - s,
                (u[:, 4] * (2 * s + 1)).floor().long() - s,
            ],
        ),
        # an even side (8 of 16): centres 0..16, as DiffAugment draws them
        "cutout": ([], [(u[:, 5] * (h + 1)).floor().long(), (u[:, 6] * (h + 1)).floor().long()]),
        "flip": ([u[:, 7]], []),
        "scale": ([u[:, 8], u[:, 9]], []),
        "rotate": ([u[:, 8]], []),
    }[op]
    monkeypatch.setattr(augment, "_rand", _Draws(draws[0]))
    monkeypatch.setattr(augment, "_randint", _Draws(draws[1]))
    expected = augment.apply_op(x, op, torch.Generator(), cfg)
    code = torch.full((n,), DSA_OPS.index(op))
    got = batched_dsa(x, code, u, cfg)
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)


def test_batched_dsa_mixes_ops_per_sample() -> None:
    x = torch.randn(len(DSA_OPS), 3, 16, 16)
    u = torch.rand(len(DSA_OPS), 10)
    code = torch.arange(len(DSA_OPS))
    mixed = batched_dsa(x, code, u, DSAConfig())
    for i in range(len(DSA_OPS)):
        alone = batched_dsa(x[i : i + 1], code[i : i + 1], u[i : i + 1], DSAConfig())
        torch.testing.assert_close(mixed[i : i + 1], alone)


def test_epoch_draws_are_per_seed_streams_of_the_same_distribution() -> None:
    cfg = DSAConfig()
    gens = [torch.Generator().manual_seed(s) for s in (0, 1)]
    ops, us = draw_dsa_epoch(2, 5, 16, cfg, gens, "cpu")
    assert ops.shape == (2, 5) and us.shape == (2, 5, 16, 10)
    allowed = {DSA_OPS.index(o) for o in cfg.ops}
    assert set(ops.flatten().tolist()) <= allowed and 0 <= us.min() and us.max() < 1
    alone_ops, alone_us = draw_dsa_epoch(1, 5, 16, cfg, [torch.Generator().manual_seed(0)], "cpu")
    torch.testing.assert_close(alone_ops[0], ops[0])  # seed 0 does not depend on seed 1
    torch.testing.assert_close(alone_us[0], us[0])
    op1, u1 = draw_dsa_params(2, 16, cfg, [torch.Generator().manual_seed(s) for s in (0, 1)], "cpu")
    assert op1.shape == (2,) and u1.shape == (2, 16, 10)


def test_a_stack_of_seeds_batches_gives_each_seed_what_its_batch_alone_gets() -> None:
    """The stacked engine's call: S seeds' batches end to end (S*B samples), each seed's op
    repeated over its batch, its uniforms per sample, from the seed's own generator."""
    s, b = 3, 4
    x = torch.randn(s * b, 3, 16, 16, generator=_gen(5))
    gens = [_gen(seed) for seed in range(s)]
    op, u = draw_dsa_params(s, b, DSAConfig(), gens, "cpu")  # (S,), (S, B, 10)
    stacked = batched_dsa(x, op.repeat_interleave(b), u.reshape(s * b, 10), DSAConfig())
    for i in range(s):
        rows = slice(i * b, (i + 1) * b)
        alone = batched_dsa(x[rows], op[i].repeat(b), u[i], DSAConfig())
        torch.testing.assert_close(stacked[rows], alone)
    assert not torch.equal(stacked, x)  # something was augmented
