"""ladd.training: the protocols point by point against the code the paper defers to, the label
modes of Table 6, the loss scale, the per-architecture lr, the non-finite-loss stop."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest
import torch
import torch.nn.functional as F

from ladd.training import (
    MODES,
    NonFiniteLoss,
    TrainConfig,
    TrainingData,
    WeightEMA,
    build_training_data,
    check_finite,
    default_protocol,
    half_cosine_factor,
    loss_weight,
    make_optimizer,
    make_scheduler,
    rded_batch_size,
    resolve_lr,
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
    from ladd.trainers.reference import train_reference
    from ladd.training import model_spec

    g = torch.Generator().manual_seed(0)
    x = torch.randn(24, 3, 16, 16, generator=g)
    y = torch.softmax(torch.randn(24, 4, generator=g), 1)
    data = TrainingData(x, y, num_full=24, num_crops=0, num_classes=4, num_images=24)
    base = dict(arch="convnet_d1", epochs=6, lr=0.05, batch_size=8, seeds=(0,), dsa=False)
    base["model_options"] = {"width": 4}
    glad = TrainConfig(protocol="glad", **base)
    spec = model_spec(glad, 4, 16)
    snapshots = []
    res = train_reference(
        data,
        spec,
        glad,
        device="cpu",
        monitor=lambda p, seeds, models: snapshots.append(
            [t.detach().clone() for t in models[0].parameters()]
        ),
        monitor_every=1,
    )
    final = [t.detach() for t in res.models[0].parameters()]
    for a, b in zip(final, snapshots[-1], strict=True):  # what was tested = what the monitor saw
        torch.testing.assert_close(a, b)
    plain = train_reference(data, spec, TrainConfig(protocol="mtt", **base), device="cpu")
    assert any(
        not torch.allclose(a, b) for a, b in zip(final, plain.models[0].parameters(), strict=True)
    )


def test_default_protocol_follows_the_set_family():
    assert default_protocol(32) == "mtt" and default_protocol(128) == "glad"
    assert TrainConfig().resolved(32).protocol == "mtt"
    assert TrainConfig().resolved(128).protocol == "glad"
    assert TrainConfig(protocol="mtt").resolved(128).protocol == "mtt"
    with pytest.raises(ValueError, match="protocol"):
        TrainConfig(protocol="dd")
    with pytest.raises(ValueError, match="resolve"):
        _ = TrainConfig().passes


class _Set:
    def __init__(self, lr, arch=None):
        self.lr, self.distill_arch = lr, arch


def test_a_sets_lr_applies_only_to_the_architecture_it_was_distilled_with():
    """MTT/DATM evaluate the distillation model with the learned lr; GLaD's glad_utils.py
    `eval_loop` sets `args.lr_net = eval_pool_dict[model_eval]` (get_eval_lrs, lines 129-143)
    for every model, the distillation model included."""
    from ladd.models import default_lr

    cfg = TrainConfig()
    assert resolve_lr(cfg, _Set(0.03), "convnet_d3", 32) == 0.03
    assert resolve_lr(cfg, _Set(0.03), "vgg11", 32) == default_lr("vgg11", 32)
    assert resolve_lr(cfg, _Set(0.03), "alexnet", 32) == default_lr("alexnet", 32)
    assert resolve_lr(cfg, _Set(0.03, arch="alexnet"), "alexnet", 32) == 0.03
    assert resolve_lr(cfg, _Set(0.03), "convnet_d5", 128) == default_lr("convnet_d5", 128)
    assert resolve_lr(TrainConfig(lr=0.5), _Set(0.03), "vgg11", 32) == 0.5


def _tiny_la():
    from ladd.sets import LabelAugmentedSet

    g = torch.Generator().manual_seed(0)
    m, k, n = 4, 3, 2
    dense = torch.softmax(torch.randn(m, n * n, k, generator=g), -1)
    return LabelAugmentedSet(
        images=torch.randn(m, 3, 8, 8, generator=g),
        labels=torch.tensor([0, 1, 2, 0]),
        dense=dense,
        n=n,
        r=0.5,
        class_names=("a", "b", "c"),
        mean=(0.0, 0.0, 0.0),
        std=(1.0, 1.0, 1.0),
        full_soft=torch.softmax(torch.randn(m, k, generator=g), -1),
    )


def test_table6_modes_build_the_samples_they_describe():
    la = _tiny_la()
    hard = F.one_hot(la.labels, 3).float()
    both = build_training_data(la, "full_hard_soft")
    assert (both.num_full, both.num_crops, len(both)) == (8, 0, 8)
    torch.testing.assert_close(both.inputs[:4], la.images)
    torch.testing.assert_close(both.inputs[4:], la.images)
    torch.testing.assert_close(both.targets[:4], hard)
    torch.testing.assert_close(both.targets[4:], la.full_soft)  # the labeler's full-image label
    crops = build_training_data(la, "crops_hard_dense")
    assert (crops.num_full, crops.num_crops, len(crops)) == (0, 32, 32)
    torch.testing.assert_close(crops.inputs[:16], crops.inputs[16:])
    torch.testing.assert_close(crops.targets[:16], hard.repeat_interleave(4, 0))
    torch.testing.assert_close(crops.targets[16:], la.dense.reshape(16, 3))
    ladd = build_training_data(la, "ladd")
    torch.testing.assert_close(ladd.targets[:4], hard)  # Eq. 5: one-hot full-image labels
    assert {m.name for m in MODES.values()} >= {"full_hard_soft", "crops_hard_dense"}
    assert all(m.description for m in MODES.values())


def test_image_sum_loss_is_the_batch_mean_times_samples_per_image():
    la = _tiny_la()
    data = build_training_data(la, "ladd")  # 4 images + 16 crops: 5 samples per image
    assert loss_weight(TrainConfig(loss="mean"), data) == 1.0
    assert loss_weight(TrainConfig(loss="image_sum"), data) == 5.0
    assert loss_weight(TrainConfig(loss="image_sum"), build_training_data(la, "baseline")) == 1.0
    with pytest.raises(ValueError, match="loss"):
        TrainConfig(loss="sum")


def test_image_sum_scales_the_updates_by_samples_per_image():
    from ladd.trainers.reference import train_reference
    from ladd.training import init_model, model_spec

    la = _tiny_la()
    data = build_training_data(la, "ladd")  # 5 samples per image
    base = dict(arch="convnet_d1", epochs=1, lr=1e-3, batch_size=64, seeds=(0,), dsa=False)
    base.update(momentum=0.0, weight_decay=0.0, model_options={"width": 4}, protocol="mtt")
    spec = model_spec(TrainConfig(**base), 3, 8)
    start = [p.detach().clone() for p in init_model(spec, 0).parameters()]
    moved = {}
    for loss in ("mean", "image_sum"):
        m = train_reference(data, spec, TrainConfig(loss=loss, **base), device="cpu").models[0]
        moved[loss] = torch.cat(
            [(p.detach() - s).flatten() for p, s in zip(m.parameters(), start, strict=True)]
        )
    # two small plain-SGD steps: the move is linear in the loss scale up to second order
    want = 5.0 * moved["mean"]
    assert float((moved["image_sum"] - want).norm() / want.norm()) < 2e-2


def test_a_non_finite_loss_stops_the_run_naming_seed_and_epoch():
    check_finite(torch.tensor([1.0, 2.0]), 3, (0, 1))
    with pytest.raises(NonFiniteLoss, match="seed 1 became nan in epoch 4"):
        check_finite(torch.tensor([1.0, math.nan]), 3, (0, 1))


class _Killed(Exception):
    pass


@pytest.mark.parametrize("engine", ["reference", "stacked"])
@pytest.mark.parametrize("protocol", ["mtt", "glad", "rded"])
def test_a_killed_run_resumes_to_the_same_weights(tmp_path, engine, protocol):
    """Checkpoints hold parameters, momentum, RNG streams, the EMA and the schedule position;
    a run killed after its third pass (seed 1 of 2 for the sequential engine) and started again
    ends with exactly the weights of an uninterrupted run, DSA and all."""
    from ladd.trainers.fast import FastOptions, train_fast
    from ladd.training import TrainCheckpoint, model_spec

    g = torch.Generator().manual_seed(0)
    x = torch.randn(40, 3, 16, 16, generator=g)
    y = torch.softmax(torch.randn(40, 4, generator=g), 1)
    data = TrainingData(x, y, num_full=40, num_crops=0, num_classes=4, num_images=40)
    cfg = TrainConfig(
        arch="convnet_d2",
        epochs=4,
        lr=0.05,
        batch_size=16,
        seeds=(0, 1),
        dsa=True,
        protocol=protocol,
        model_options={"width": 4},
    )
    spec = model_spec(cfg, 4, 16)
    opts = FastOptions("sequential" if engine == "reference" else "stacked")
    whole = train_fast(data, spec, cfg, device="cpu", options=opts)
    ckpt = TrainCheckpoint(tmp_path / "state.safetensors", key="run", seconds=0.0)
    passes = cfg.resolved(16).passes
    kill_at = passes + 3 if engine == "reference" else 2 * 3  # progress steps count seed-passes

    def kill(ev):
        if ev.step >= kill_at:
            raise _Killed

    with pytest.raises(_Killed):
        train_fast(data, spec, cfg, device="cpu", options=opts, progress=kill, checkpoint=ckpt)
    assert ckpt.path.is_file()
    if protocol == "rded":  # AdamW's moments and step count are saved beside the weights
        from safetensors import safe_open

        with safe_open(str(ckpt.path), framework="pt") as f:
            keys = set(f.keys())
        for part in (".exp_avg", ".exp_avg_sq", ".step"):
            assert any(k.endswith(part) and "opt." in k for k in keys), part
    other = TrainCheckpoint(ckpt.path, key="another run", seconds=0.0)
    with pytest.warns(UserWarning, match="belongs to another run"):
        assert other.load() is None  # a state of another run is never resumed, and it is said
    again = train_fast(data, spec, cfg, device="cpu", options=opts, checkpoint=ckpt)
    for a, b in zip(whole.models, again.models, strict=True):
        for p, q in zip(a.state_dict().values(), b.state_dict().values(), strict=True):
            assert torch.equal(p, q)
    assert whole.loss_curves == again.loss_curves


def test_an_unreadable_saved_state_is_reported_not_dropped_silently(tmp_path):
    from ladd.training import TrainCheckpoint

    ckpt = TrainCheckpoint(tmp_path / "state.safetensors", key="run", seconds=0.0)
    assert ckpt.load() is None and ckpt.problem is None  # no file: nothing to say
    ckpt.path.write_bytes(b"torn write")
    assert ckpt.saved_meta() is None
    assert "unreadable" in ckpt.problem and "training starts over" in ckpt.problem
    with pytest.warns(UserWarning, match=r"state\.safetensors is unreadable"):
        assert ckpt.load() is None
    ckpt.save({"x": torch.zeros(2)}, {"pass": 1})  # the next save replaces it
    assert ckpt.load()[1]["pass"] == 1 and ckpt.problem is None


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


def test_rded_rates_and_batch_are_its_arguments():
    """RDED argument.py lines 276-306 (--adamw-lr by student) and 234-258 (--re-batch-size
    when 0: 100 / 50 / 10 at IPC 50 / 10 / 1, x2 at 100 and 1000 classes, <= ipc x classes)."""
    cfg = TrainConfig(protocol="rded")
    assert resolve_lr(cfg, None, "tv_resnet18", 224) == 0.001
    assert resolve_lr(cfg, None, "tv_mobilenet_v2", 224) == 0.0025
    assert resolve_lr(cfg, None, "vgg11", 224) == 0.0005
    assert resolve_lr(replace(cfg, lr=0.01), None, "tv_resnet18", 224) == 0.01

    class LearnedLr:  # a DATM set's SGD rate is not an AdamW rate
        lr, distill_arch = 0.03, "convnet_d3"

    assert resolve_lr(cfg, LearnedLr(), "convnet_d3", 32) == 0.001
    with pytest.raises(ValueError, match="no AdamW lr for 'convnet_d2'.*pass --lr"):
        resolve_lr(cfg, None, "convnet_d2", 32)
    assert rded_batch_size(10, 1000) == 100  # Table 3: ImageNet-1K, IPC 10
    assert rded_batch_size(50, 1000) == 200 and rded_batch_size(1, 1000) == 20
    assert rded_batch_size(10, 10) == 50 and rded_batch_size(1, 10) == 10
    assert rded_batch_size(10, 100) == 100
    assert rded_batch_size(1, 4) == 4  # at most ipc x classes


def test_rded_replaces_dsa_with_its_augmentation():
    assert TrainConfig(protocol="rded").augmentation == "rded"
    assert TrainConfig(protocol="rded", dsa=False).augmentation == ""
    assert TrainConfig(protocol="mtt").augmentation == "dsa"
    assert TrainConfig().augmentation == "dsa"  # "auto" (unresolved): mtt or glad, both DSA
    assert TrainConfig(protocol="glad", dsa_strategy="").augmentation == ""
