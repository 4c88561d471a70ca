"""ladd.training.optim: each protocol's optimiser, lr schedule and weight EMA point by point
against the code the paper defers to, the pass end's tested weights, the non-finite-loss stop."""

from __future__ import annotations

import math

import pytest
import torch
from plans import plan

from ladd.trainers.loop import TrainHooks
from ladd.trainers.reference import train_reference
from ladd.training import (
    NonFiniteLoss,
    TrainConfig,
    TrainingData,
    WeightEMA,
    check_finite,
    half_cosine_factor,
    make_optimizer,
    make_scheduler,
)


def _lrs(cfg: TrainConfig, lr: float = 1.0) -> list[float]:
    """The lr each pass trains at under our schedule."""
    w = torch.nn.Parameter(torch.zeros(1))
    opt = make_optimizer([w], cfg, lr)
    sched = make_scheduler(opt, cfg)
    out = []
    for p in range(cfg.passes):
        out.append(sched.lr())
        sched.end_of_pass(p)
    return out


def _glad_reference_lrs(epochs: int, lr: float = 1.0) -> list[float]:
    """GLaD utils.py `evaluate_synset` (lines 432-466 of georgecazenavette/glad): LinearLR and
    CosineAnnealingLR built at the start on one SGD, `for ep in range(Epoch)`: train, ema.update(),
    sched.step(); `if ep == Epoch // 2: sched = sched2`. Replayed here with torch's schedulers."""
    w = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([w], lr=lr, momentum=0.9, weight_decay=0.0005)
    sched1 = torch.optim.lr_scheduler.LinearLR(
        opt, start_factor=0.0000001, end_factor=1.0, total_iters=epochs // 2
    )
    sched2 = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=epochs // 2)
    sched = sched1
    out = []
    for ep in range(epochs):
        out.append(opt.param_groups[0]["lr"])
        sched.step()
        if ep == epochs // 2:
            sched = sched2
    return out


@pytest.mark.parametrize("epochs", [10, 11, 1000])
def test_glad_schedule_is_linear_warmup_then_cosine_as_glad_steps_it(epochs):
    cfg = TrainConfig(protocol="glad", epochs=epochs)
    ours = _lrs(cfg)
    assert cfg.passes == epochs  # GLaD loops range(Epoch)
    assert ours == pytest.approx(_glad_reference_lrs(epochs), rel=1e-9, abs=1e-15)
    half = epochs // 2
    assert ours[0] == pytest.approx(1e-7)  # from ~0
    assert ours[half] == pytest.approx(1.0)  # full lr at the half
    assert ours[half + 1] == pytest.approx(1.0)  # the first cosine step is taken after this pass
    if epochs >= 100:
        assert ours[-1] < 0.01  # decayed towards 0 by the end


def test_mtt_schedule_drops_after_pass_half_plus_one_with_a_fresh_optimiser():
    """MTT utils.py `evaluate_synset` (lines 356-379 of GeorgeCazenavette/mtt-distillation):
    `lr_schedule = [Epoch//2+1]`, `for ep in range(Epoch+1)`: train, then `if ep in lr_schedule:
    lr *= 0.1; optimizer = torch.optim.SGD(...)` (momentum buffers start over)."""
    cfg = TrainConfig(protocol="mtt", epochs=10)
    assert cfg.passes == 11
    assert _lrs(cfg) == pytest.approx([1.0] * 7 + [0.1] * 4)  # passes 0..6 at lr, 7..10 at lr/10
    w = torch.nn.Parameter(torch.ones(1))
    opt = make_optimizer([w], cfg, 1.0)
    sched = make_scheduler(opt, cfg)
    for p in range(cfg.passes):
        w.grad = torch.ones(1)
        opt.step()
        had = "momentum_buffer" in opt.state[w]
        sched.end_of_pass(p)
        if p == 6:
            assert had and "momentum_buffer" not in opt.state[w]  # reset, as a new optimiser


def test_ema_decay_warms_up_as_ema_pytorch_and_caps_at_beta():
    """ema_pytorch `EMA(net, beta=0.995, power=1, update_after_step=0, update_every=1)`, as GLaD
    builds it (utils.py line 446): `update()` copies the weights at step 0, initialises (a copy)
    at step 1, then blends with `get_current_decay` = 1 - (1 + e) ** -1 (e = step - 1 after the
    increment), clamped to beta."""
    ema = WeightEMA([torch.zeros(3)], beta=0.995)
    assert [ema.decay(u) for u in (0, 1, 2, 3, 99)] == pytest.approx([0, 0.5, 2 / 3, 3 / 4, 0.99])
    assert ema.decay(199) == pytest.approx(0.995) and ema.decay(10_000) == pytest.approx(0.995)
    values = [torch.full((3,), float(v)) for v in (5, 7, 1, 4)]
    for v in values:
        ema.update([v])
    # u=0 copy 5; u=1 copy 7; u=2: 2/3*7 + 1/3*1 = 5; u=3: 3/4*5 + 1/4*4 = 4.75
    torch.testing.assert_close(ema.shadow[0], torch.full((3,), 4.75))


def test_glad_protocol_tests_the_ema_weights():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(24, 3, 16, 16, generator=g)
    y = torch.softmax(torch.randn(24, 4, generator=g), 1)
    data = TrainingData(x, y, num_full=24, num_crops=0, num_classes=4, num_images=24)
    base = dict(arch="convnet_d1", epochs=6, lr=0.05, batch_size=8, seeds=(0,), dsa=False)
    base["model_options"] = {"width": 4}
    glad = TrainConfig(protocol="glad", **base)
    snapshots = []

    def watch(p, seeds, models):
        snapshots.append([t.detach().clone() for t in models[0].parameters()])

    res = train_reference(data, plan(data, glad), TrainHooks(monitor=watch, monitor_every=1))
    final = [t.detach() for t in res.models[0].parameters()]
    for a, b in zip(final, snapshots[-1], strict=True):  # what was tested = what the monitor saw
        torch.testing.assert_close(a, b)
    plain = train_reference(data, plan(data, TrainConfig(protocol="mtt", **base)))
    assert any(
        not torch.allclose(a, b) for a, b in zip(final, plain.models[0].parameters(), strict=True)
    )


def test_a_non_finite_loss_stops_the_run_naming_seed_and_epoch():
    check_finite(torch.tensor([1.0, 2.0]), 3, (0, 1))
    with pytest.raises(NonFiniteLoss, match="seed 1 became nan in epoch 4"):
        check_finite(torch.tensor([1.0, math.nan]), 3, (0, 1))


# -- the rded protocol (LINs-lab/RDED, commit 3f6453d) -----------------------------------------


def test_rded_schedule_is_rdeds_lambda_stepped_once_per_epoch():
    """RDED validation/main.py lines 95-102: LambdaLR(lambda step: 0.5 * (1 + cos(pi * step /
    re_epochs / 2)) if step <= re_epochs else 0), stepped after every epoch (line 187): the lr
    of epoch e is base x that factor at e, from 1 down to ~0.5 at the last epoch."""
    epochs = 7
    cfg = TrainConfig(protocol="rded", epochs=epochs, lr=0.001)
    assert cfg.passes == epochs  # range(args.re_epochs), no extra pass
    w = torch.nn.Parameter(torch.zeros(3, 3))
    opt = make_optimizer([w], cfg, 0.001, names=["weight"])
    sched = make_scheduler(opt, cfg)
    seen = []
    for p in range(epochs):
        seen.append(sched.lr())
        opt.step()
        sched.end_of_pass(p)
    want = [0.001 * 0.5 * (1 + math.cos(math.pi * e / epochs / 2)) for e in range(epochs)]
    assert seen == pytest.approx(want, rel=1e-12)
    assert seen[0] == 0.001 and seen[-1] > 0.0005
    assert half_cosine_factor(epochs + 1, epochs) == 0.0


def test_rded_optimiser_is_adamw_with_decay_on_weight_matrices_only():
    """RDED main.py lines 87-92 (AdamW, betas [0.9, 0.999], --adamw-weight-decay 0.01,
    argument.py line 153) over validation/utils.py get_parameters (lines 67-84): decay on
    parameters named "weight" with more than one dimension, 0 on the rest."""
    from ladd.models import create_model

    model = create_model("vit", 4, 32, seed=0)
    cfg = TrainConfig(protocol="rded", arch="vit")
    named = list(model.named_parameters())
    opt = make_optimizer([p for _, p in named], cfg, 1e-4, names=[n for n, _ in named])
    assert isinstance(opt, torch.optim.AdamW)
    decay, rest = opt.param_groups
    assert decay["weight_decay"] == 0.01 and rest["weight_decay"] == 0.0
    assert decay["betas"] == rest["betas"] == (0.9, 0.999) and decay["lr"] == 1e-4
    by_id = {id(p): n for n, p in named}
    got = {by_id[id(p)] for p in decay["params"]}
    assert got == {n for n, p in named if "weight" in n and p.dim() > 1}
    assert not any("bias" in by_id[id(p)] for p in decay["params"])
    rest_names = {by_id[id(p)] for p in rest["params"]}
    assert {"cls", "pos"} <= rest_names  # ViT's class token and positions: 3-d, not "weight"
    # a stacked tensor's seed axis is not one of its own dimensions
    stacked = [torch.nn.Parameter(torch.zeros(2, 5)), torch.nn.Parameter(torch.zeros(2, 5, 3))]
    opt = make_optimizer(stacked, cfg, 1e-3, names=["a.weight", "b.weight"], stacked=True)
    assert [len(g["params"]) for g in opt.param_groups] == [1, 1]
    assert opt.param_groups[0]["params"][0] is stacked[1]
    with pytest.raises(ValueError, match="name of every parameter"):
        make_optimizer(stacked, cfg, 1e-3)
    # the SGD protocols are untouched
    assert isinstance(make_optimizer(stacked, TrainConfig(protocol="mtt"), 0.1), torch.optim.SGD)
