"""ladd.training's protocol pieces against the packages the field's code runs them with.

- WeightEMA against ema_pytorch's EMA (0.2.3, pinned: its update() is the one of GLaD's time, up
  to 0.5.0 at least; 0.8.x initialises on the first update and already blends on the second), the package GLaD's `evaluate_synset` builds its EMA with
  (`EMA(net, beta=0.995, power=1, update_after_step=0, update_every=1)` at GLaD utils.py:446,
  `ema.update()` once per pass at utils.py:464, GeorgeCazenavette/glad at fe62863).
- soft_cross_entropy against torch's own cross-entropy with probability targets
  (`torch.nn.functional.cross_entropy`, targets of shape (B, K)) and against DD-Ranking's
  SoftCrossEntropyLoss at temperature 1 (`ddranking/loss/sce.py` of ddranking 0.2.0, loaded by
  path from `.venv/upstream` as tests/test_dsa_upstream.py explains; skipped without it).
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from ladd.training import WeightEMA, soft_cross_entropy

ema_pytorch = pytest.importorskip("ema_pytorch")


def _net(seed: int) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Conv2d(3, 4, 3), nn.Flatten(), nn.Linear(4 * 6 * 6, 5))


def test_weight_ema_follows_ema_pytorch_update_for_update() -> None:
    net = _net(0)
    theirs = ema_pytorch.EMA(net, beta=0.995, power=1, update_after_step=0, update_every=1)
    ours = WeightEMA([p for p in net.parameters()], beta=0.995)
    g = torch.Generator().manual_seed(1)
    for _ in range(40):  # past the warm-up: the decay reaches min(u / (u + 1), beta)
        with torch.no_grad():
            for p in net.parameters():
                p.add_(torch.randn(p.shape, generator=g) * 0.1)
        theirs.update()
        ours.update([p for p in net.parameters()])
    for mine, ref in zip(ours.shadow, theirs.ema_model.parameters(), strict=True):
        torch.testing.assert_close(mine, ref, rtol=1e-6, atol=1e-7)


def test_weight_ema_reaches_beta_as_ema_pytorch_does() -> None:
    net = _net(2)
    theirs = ema_pytorch.EMA(net, beta=0.9, power=1, update_after_step=0, update_every=1)
    ours = WeightEMA(list(net.parameters()), beta=0.9)
    for k in range(1, 30):  # after k updates, ema_pytorch reports the decay update k - 1 used
        theirs.update()
        ours.update(list(net.parameters()))
        assert ours.decay(k - 1) == pytest.approx(theirs.get_current_decay(), abs=1e-6)
    assert ours.decay(28) == 0.9


def test_soft_cross_entropy_is_torch_cross_entropy_with_probability_targets() -> None:
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(32, 10, generator=g)
    target = torch.softmax(torch.randn(32, 10, generator=g) * 3, 1)
    torch.testing.assert_close(soft_cross_entropy(logits, target), F.cross_entropy(logits, target))
    stacked = soft_cross_entropy(torch.stack([logits, logits * 2]), torch.stack([target] * 2))
    torch.testing.assert_close(stacked[1], F.cross_entropy(logits * 2, target))


def test_soft_cross_entropy_is_dd_rankings_sce_at_temperature_one() -> None:
    path = Path(sys.prefix) / "upstream" / "ddranking" / "loss" / "sce.py"
    if not path.is_file():
        pytest.skip(f"ddranking 0.2.0 is not installed under {path.parents[2]}")
    spec = importlib.util.spec_from_file_location("ddranking_loss_sce", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    g = torch.Generator().manual_seed(3)
    student, teacher = torch.randn(16, 7, generator=g), torch.randn(16, 7, generator=g)
    theirs = module.SoftCrossEntropyLoss(temperature=1.0)(student, teacher)
    ours = soft_cross_entropy(student, torch.softmax(teacher, 1))
    torch.testing.assert_close(ours, theirs, rtol=1e-6, atol=1e-6)
