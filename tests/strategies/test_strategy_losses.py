"""ladd.strategies.losses: each dense loss against values worked out by hand from its upstream
definition, with the upstream constants cited (repository @ commit, file:line)."""

from __future__ import annotations

import math

import pytest
import torch

from ladd.strategies import LOSSES, StrategyError, teacher_logits
from ladd.strategies.losses.gift import gift_smoothing


def _one(name: str, z, p, cls=0, **kw) -> float:
    loss = LOSSES.parse(name)
    logits = torch.tensor([z], dtype=torch.float32)
    probs = torch.tensor([p], dtype=torch.float32)
    classes = torch.tensor([cls])
    return float(loss.per_sample(logits, probs, classes, **kw)[0])


def test_soft_ce_is_eq5s_cross_entropy():
    # z = (0, 0): log softmax = -ln 2 each; p = (0.25, 0.75): CE = ln 2
    assert _one("soft_ce", [0.0, 0.0], [0.25, 0.75]) == pytest.approx(math.log(2), abs=1e-6)


def test_kl_at_temperature_two_by_hand():
    """q = softmax(log p / 2) = sqrt(p) / sum sqrt(p): p = (0.2, 0.8) -> (1/3, 2/3); a student
    with equal logits is (1/2, 1/2) at any T: KL = 1/3 ln(2/3) + 2/3 ln(4/3)."""
    want = (1 / 3) * math.log(2 / 3) + (2 / 3) * math.log(4 / 3)
    assert _one("kl:2", [0.0, 0.0], [0.2, 0.8]) == pytest.approx(want, abs=1e-6)
    # scaled = Hinton's T^2 (not SRe2L's: it leaves that line commented out)
    assert _one("kl:t=2,scaled=true", [0.0, 0.0], [0.2, 0.8]) == pytest.approx(4 * want, abs=1e-5)


def test_kl_default_temperature_is_sre2ls_and_gifts_twenty():
    """VILA-Lab/SRe2L @ 8d00cba, SRe2L/validate/train_FKD.sh:12 passes -T 20, and
    SRe2L/validate/train_FKD.py:251 leaves `loss * T * T` commented out (no T^2);
    LINs-lab/GIFT @ 38db552, validate/losses_benchmark.py:40 sets T = 20."""
    kl = LOSSES.parse("kl")
    assert kl.temperature == 20.0 and not kl.scaled and kl.spec == "kl:t=20"


def test_kl_of_the_teacher_against_itself_is_zero():
    z = torch.randn(5, 7)
    p = torch.softmax(z / 3.0, dim=-1)  # the student at T_s = 1 of logits z/3 is this label
    kl = LOSSES.parse("kl:1").per_sample(z / 3.0, p, torch.zeros(5, dtype=torch.long))
    assert kl.abs().max() < 1e-5


def test_gift_by_hand_and_its_constants():
    """LINs-lab/GIFT @ 38db552, validate/losses_benchmark.py: batch_label_smoothing (line 18)
    with alpha = 0.1 (line 48): alpha / (K - 1) off the class, 1 - alpha on it; the target
    normalize(teacher) + 0.1 * normalize(smoothed) (line 50); the loss 1 - mean cosine
    (cosine_loss, line 24)."""
    gift = LOSSES.parse("gift")
    assert (gift.alpha, gift.weight) == (0.1, 0.1)
    s = gift_smoothing(torch.tensor([1]), 3, 0.1)[0]
    assert s.tolist() == pytest.approx([0.05, 0.9, 0.05])
    # a uniform label has no direction (centred logits 0): the target is 0.1 * smooth / |smooth|;
    # a student logit (1, 0, 0) on class 0: cos = 0.9 / sqrt(0.81 + 2 * 0.05^2)
    want = 1 - 0.9 / math.sqrt(0.81 + 2 * 0.05**2)
    assert _one("gift", [1.0, 0.0, 0.0], [1 / 3] * 3, cls=0) == pytest.approx(want, abs=1e-6)
    # a peaked label: teacher logits log p centred = (2/3, -1/3, -1/3) for p ~ (e, 1, 1)
    t = [2 / 3, -1 / 3, -1 / 3]
    tn = [v / math.sqrt(6 / 9) for v in t]
    sm = [0.9 / math.sqrt(0.815), 0.05 / math.sqrt(0.815), 0.05 / math.sqrt(0.815)]
    target = [a + 0.1 * b for a, b in zip(tn, sm, strict=True)]
    z = [0.5, 0.2, -0.1]
    cos = sum(a * b for a, b in zip(z, target, strict=True)) / (
        math.sqrt(sum(a * a for a in z)) * math.sqrt(sum(b * b for b in target))
    )
    p = [math.e / (math.e + 2), 1 / (math.e + 2), 1 / (math.e + 2)]
    assert _one("gift", z, p, cls=0) == pytest.approx(1 - cos, abs=1e-5)


def test_mse_gt_by_hand_and_edcs_ce_weight():
    """shaoshitong/EDC @ 80116a7: Branch_CIFAR_10/train/train_FKD.py:307-308 is
    F.mse_loss(output, soft_label) + F.cross_entropy(output, target) * args.ce_weight, and
    Branch_CIFAR_10/train/train.sh:9 passes --ce-weight 0.025 (every branch does)."""
    assert LOSSES.parse("mse_gt").ce_weight == 0.025
    # a uniform label: teacher logits (0, 0); z = (1, -1), class 0: mse (1 + 1) / 2 = 1,
    # CE = ln(1 + e^-2)
    want = 1.0 + 0.025 * math.log(1 + math.exp(-2))
    assert _one("mse_gt", [1.0, -1.0], [0.5, 0.5], cls=0) == pytest.approx(want, abs=1e-6)


def test_teacher_logits_are_log_probabilities_centred_and_floored():
    p = torch.tensor([[0.5, 0.25, 0.25, 0.0]])
    t = teacher_logits(p)[0]
    logs = [math.log(0.5), math.log(0.25), math.log(0.25), math.log(1e-6)]
    mean = sum(logs) / 4
    assert t.tolist() == pytest.approx([v - mean for v in logs], abs=1e-5)


@pytest.mark.parametrize("name", LOSSES.names())
def test_every_loss_takes_stacked_seeds_and_its_spec_rebuilds_it(name):
    loss = LOSSES.parse(name)
    assert LOSSES.parse(loss.spec) == loss
    z = torch.randn(3, 5, 4)
    p = torch.softmax(torch.randn(3, 5, 4), -1)
    c = torch.randint(0, 4, (3, 5))
    out = loss.per_sample(z, p, c, torch.tensor(2.0), None)
    assert out.shape == (3, 5) and torch.isfinite(out).all()
    one = loss.per_sample(z[1], p[1], c[1], torch.tensor(2.0), None)
    torch.testing.assert_close(out[1], one)


@pytest.mark.parametrize("spec", ["kl:0", "kl:-1", "mse_gt:-0.1", "gift:alpha=2", "nope", "kl:1,2"])
def test_bad_specs_are_one_line_errors(spec):
    with pytest.raises(StrategyError):
        LOSSES.parse(spec)
