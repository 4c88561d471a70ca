"""ladd.trainers.stacked: the stacked engine computes what the reference loop computes
(CPU-sized; CUDA checks marked)."""

from __future__ import annotations

import threading
from dataclasses import replace

import pytest
import torch
from parity import normed_conv_biases
from plans import Killed, killer, plan

from ladd.trainers import ENGINE_RUNNERS, train_models
from ladd.trainers.compile import CompilePolicy
from ladd.trainers.loop import TrainHooks
from ladd.trainers.reference import train_reference
from ladd.trainers.stacked import FastOptions, _levers, _StackedStep, train_stacked
from ladd.trainers.stacking import stack_models, stacked_loss
from ladd.training import (
    TrainCheckpoint,
    TrainConfig,
    TrainingData,
    TrainingStopped,
    init_model,
    soft_cross_entropy,
)

K, SIZE = 4, 16


def _data(t: int = 40, seed: int = 0) -> TrainingData:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(t, 3, SIZE, SIZE, generator=g)
    y = torch.softmax(torch.randn(t, K, generator=g) * 2, dim=1)
    return TrainingData(x, y, num_full=t, num_crops=0, num_classes=K)


def _cfg(**kw) -> TrainConfig:
    base = dict(
        arch="convnet_d2",
        epochs=2,
        lr=0.01,
        batch_size=16,
        seeds=(0, 1, 2),
        dsa=False,
        model_options={"width": 8},
    )
    base.update(kw)
    return TrainConfig(**base)


def _spec(cfg: TrainConfig, size: int = SIZE, k: int = K):
    return plan(_data(t=4) if size == SIZE else _sized(size, k), cfg).spec


def _sized(size: int, k: int) -> TrainingData:
    x = torch.zeros(2, 3, size, size)
    return TrainingData(x, torch.full((2, k), 1.0 / k), num_full=2, num_crops=0, num_classes=k)


def _stacked(data: TrainingData, cfg: TrainConfig, hooks=None, **opts):
    return train_stacked(data, plan(data, cfg, "stacked"), hooks, options=FastOptions(**opts))


def _reference(data: TrainingData, cfg: TrainConfig):
    return train_reference(data, plan(data, cfg))


def _max_diff(
    a: list[torch.nn.Module], b: list[torch.nn.Module], skip: set[str] = frozenset()
) -> float:
    return max(
        (p - q).abs().max().item()
        for ma, mb in zip(a, b, strict=True)
        for (k, p), q in zip(ma.state_dict().items(), mb.state_dict().values(), strict=True)
        if k not in skip
    )


@pytest.mark.parametrize("padded", [False, True])
def test_stacked_step_matches_reference_loss_and_gradients(padded: bool) -> None:
    cfg = _cfg()
    spec = _spec(cfg)
    models = [init_model(spec, s) for s in cfg.seeds]
    base, params, buffers = stack_models(models)
    data = _data(t=3 * 12)
    x = data.inputs.reshape(3, 12, 3, SIZE, SIZE)  # each seed its own batch
    y = data.targets.reshape(3, 12, K)
    weight = None
    real = 12
    if padded:  # the last 4 samples of every batch are padding
        real = 8
        weight = torch.ones(3, 12)
        weight[:, real:] = 0.0
    loss, per_seed = stacked_loss(base, params, buffers, x, y, weight)
    loss.backward()
    for s, model in enumerate(models):
        ref = soft_cross_entropy(model(x[s, :real]), y[s, :real])
        ref.backward()
        torch.testing.assert_close(per_seed[s], ref.detach(), rtol=1e-5, atol=1e-6)
        for name, p in model.named_parameters():
            torch.testing.assert_close(params[name].grad[s], p.grad, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize(
    ("arch", "options"),
    [
        ("alexnet", {}),
        ("vgg11", {}),
        ("resnet18", {}),
        ("vit", {"dropout": 0.0}),  # dropout draws differ between the two paths by design
    ],
)
def test_stacked_step_matches_reference_for_the_cross_architecture_models(arch, options) -> None:
    """Part 6 of the study trains these with the stacked engine on a GPU: same losses and
    gradients as each seed's own model, at the study's 32 px. In float64: in float32 the deep
    instance-normalised nets (ResNet18) amplify rounding differences between grouped and
    separate convolutions to ~10 % of some gradients at random init, which hides nothing and
    proves nothing; in float64 the two paths agree to ~1e-14."""
    cfg = _cfg(arch=arch, seeds=(0, 1), model_options=options)
    spec = _spec(cfg, 32)
    models = [init_model(spec, s).double() for s in cfg.seeds]
    base, params, buffers = stack_models(models)
    g = torch.Generator().manual_seed(1)
    x = torch.randn(2, 4, 3, 32, 32, generator=g, dtype=torch.float64)
    y = torch.softmax(torch.randn(2, 4, K, generator=g, dtype=torch.float64), dim=-1)
    loss, per_seed = stacked_loss(base, params, buffers, x, y)
    loss.backward()
    for s, model in enumerate(models):
        ref = soft_cross_entropy(model(x[s]), y[s])
        ref.backward()
        torch.testing.assert_close(per_seed[s], ref.detach(), rtol=1e-10, atol=1e-12)
        for name, p in model.named_parameters():
            torch.testing.assert_close(params[name].grad[s], p.grad, rtol=1e-8, atol=1e-12)


@pytest.mark.parametrize(
    ("engine", "options"),
    [
        ("stacked", {}),
        ("stacked", {"pad_last": True}),
        ("sequential", {}),
        ("stacked", {"channels_last": True}),
    ],
    ids=["stacked", "stacked-padded", "sequential", "stacked-nhwc"],
)
@pytest.mark.parametrize("protocol", ["mtt", "glad", "rded"])
def test_same_weights_as_reference_after_a_few_steps_without_dsa(
    engine: str, options: dict, protocol: str, one_thread
) -> None:
    """Every engine and lever under every protocol: MTT's lr drop with a fresh optimiser after
    pass E//2 + 1 (5 passes for 4 epochs), GLaD's warm-up, cosine decay and EMA, RDED's AdamW
    and half-cosine.

    Under AdamW the conv biases that feed an instance norm are left out of the weight check: the
    norm removes them, so their gradient is zero but for float rounding (~1e-9), and Adam divides
    that noise by its own size, moving them by ~lr a step in a direction rounding picks. They
    change nothing the model computes: the outputs are checked instead."""
    data = _data()  # 40 samples, batches of 16: a partial last batch every epoch
    cfg = _cfg(epochs=4, protocol=protocol)
    ref = _reference(data, cfg)
    if engine == "stacked":
        fast = _stacked(data, cfg, **options)
    else:
        fast = train_models(data, plan(data, cfg, engine))
    skip = normed_conv_biases(ref.models[0]) if protocol == "rded" else set()
    assert _max_diff(ref.models, fast.models, skip) < 1e-5
    with torch.no_grad():
        for a, b in zip(ref.models, fast.models, strict=True):
            torch.testing.assert_close(b(data.inputs), a(data.inputs), rtol=1e-5, atol=1e-5)
    for a, b in zip(ref.loss_curves, fast.loss_curves, strict=True):
        assert a == pytest.approx(b, rel=1e-5)


def test_fast_trainer_lowers_the_loss_with_dsa() -> None:
    data = _data(t=32)
    cfg = _cfg(epochs=12, seeds=(0, 1), dsa=True, lr=0.05, batch_size=32, protocol="mtt")
    res = _stacked(data, cfg)
    assert len(res.models) == 2 and all(not m.training for m in res.models)
    for curve in res.loss_curves:
        assert len(curve) == 13  # MTT's protocol (auto at 16 px) runs epochs + 1 passes
        assert curve[-1] < curve[0]
    assert res.seconds > 0  # FLOPs are counted once, by train_models (tested below)


@pytest.mark.parametrize("engine", ["stacked", "sequential"])
def test_stop_event_is_honoured(engine: str) -> None:
    stop = threading.Event()
    stop.set()
    data = _data()
    with pytest.raises(TrainingStopped):
        train_models(data, plan(data, _cfg(), engine), TrainHooks(stop=stop))


def test_progress_reports_every_epoch() -> None:
    events = []
    _stacked(_data(), _cfg(epochs=3), TrainHooks(progress=events.append))
    assert [e.step for e in events] == [3, 6, 9, 12]  # 3 seeds x (3 epochs + MTT's extra pass)
    assert all(e.total == 12 and e.loss is not None for e in events)
    assert events[-1].metrics == {
        "epoch": 4,
        "seeds": [0, 1, 2],
        "loss": pytest.approx(
            [c[-1] for c in [[e.metrics["loss"][s] for e in events] for s in range(3)]]
        ),
    }


def test_train_models_runs_the_plans_engine_and_counts_flops_once(monkeypatch) -> None:
    calls = []
    real = ENGINE_RUNNERS["stacked"]

    def spy(data, p, hooks):
        assert isinstance(hooks, TrainHooks)  # one hooks object, not five keywords
        calls.append((p.engine, p.lr))
        return real(data, p, hooks)

    monkeypatch.setitem(ENGINE_RUNNERS, "stacked", spy)
    data, cfg = _data(), _cfg(epochs=1)
    events = []
    res = train_models(data, plan(data, cfg, "stacked"), TrainHooks(progress=events.append))
    assert len(res.models) == 3 and calls == [("stacked", cfg.lr)] and events
    assert res.flops > 0  # counted by train_models, not by the engine
    assert res.engine["engine"] == "stacked" and res.engine["layout"] == "grouped"
    ref = train_models(data, plan(data, cfg, "reference"))
    assert len(calls) == 1  # the reference engine is its own entry
    assert ref.flops == res.flops  # the same work, whichever engine issues it
    with pytest.raises(ValueError, match="unknown engine 'nope'"):
        plan(data, cfg, "nope")
    with pytest.raises(ValueError, match="unknown trainer 'nope'"):
        _cfg(trainer="nope")


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_compiled_bf16_step_matches_fp32_reference_on_cuda() -> None:
    cfg = _cfg(seeds=(0, 1))
    spec = _spec(cfg)
    models = [init_model(spec, s).cuda() for s in cfg.seeds]
    base, params, buffers = stack_models(models)
    data = _data(t=2 * 16).to("cuda")
    x = data.inputs.reshape(2, 16, 3, SIZE, SIZE)
    y = data.targets.reshape(2, 16, K)
    step = torch.compile(lambda xx, yy: stacked_loss(base, params, buffers, xx, yy, bf16=True))
    _, per_seed = step(x, y)
    for s, model in enumerate(models):
        ref = soft_cross_entropy(model(x[s]), y[s])
        torch.testing.assert_close(per_seed[s], ref.detach(), rtol=2e-2, atol=2e-2)


# -- levers ----------------------------------------------------------------------------------


def _step(models, spec, cfg, data, **opts) -> _StackedStep:
    p = plan(data, cfg, "stacked")
    levers = _levers(FastOptions(**opts), p, torch.device("cpu"))
    return _StackedStep(models, data, cfg, levers, spec, torch.device("cpu"), None, CompilePolicy())


@pytest.mark.parametrize(
    ("arch", "size", "options", "levers"),
    [
        ("convnet_d2", 16, {"width": 8}, {}),
        ("convnet_d2", 16, {"width": 8}, {"channels_last": True}),
        ("alexnet", 16, {}, {}),
        ("vgg11", 32, {}, {}),
        ("resnet18", 16, {}, {"channels_last": True}),
    ],
    ids=["convnet", "convnet-nhwc", "alexnet", "vgg11", "resnet18-nhwc"],
)
def test_the_step_gives_every_seed_its_own_loss_and_gradients(
    arch, size, options, levers, one_thread
) -> None:
    """The step as the engine runs it (gathered batch, padding weights, grouped forward), in
    float64 against each seed's own model: seeds along the channel axis and channels-last
    memory compute exactly what separate models compute."""
    cfg = _cfg(arch=arch, seeds=(0, 1), batch_size=4, model_options=options)
    spec = _spec(cfg, size)
    models = [init_model(spec, s).double() for s in cfg.seeds]
    refs = [init_model(spec, s).double() for s in cfg.seeds]
    g = torch.Generator().manual_seed(1)
    x = torch.randn(8, 3, size, size, generator=g, dtype=torch.float64)
    y = torch.softmax(torch.randn(8, K, generator=g, dtype=torch.float64), dim=-1)
    data = TrainingData(x, y, 8, 0, K)
    step = _step(models, spec, cfg, data, **levers)
    idx = torch.tensor([[0, 1, 2, 3], [4, 5, 6, 7]])
    weight = torch.tensor([[1.0, 1.0, 1.0, 0.0], [1.0, 1.0, 1.0, 0.0]], dtype=torch.float64)
    loss, per_seed = step.loss(step.inputs[idx.reshape(-1)], y[idx], weight, None, None)
    loss.backward()
    for s, model in enumerate(refs):
        ref = soft_cross_entropy(model(x[idx[s, :3]]), y[idx[s, :3]])  # the 3 real samples
        ref.backward()
        torch.testing.assert_close(per_seed[s], ref.detach(), rtol=1e-10, atol=1e-12)
        for name, p in model.named_parameters():
            torch.testing.assert_close(step.params[name].grad[s], p.grad, rtol=1e-8, atol=1e-12)


def test_levers_follow_the_plan_and_the_options(monkeypatch) -> None:
    """The compile mode is the plan's unless FastOptions names one; "policy" is eager off CUDA
    unless LADD_FAST_COMPILE names a mode; padding follows compiling; precision is the plan's
    on CUDA and fp32 on the CPU."""
    cpu = torch.device("cpu")
    data = _data(t=4)
    p = plan(data, _cfg(), "stacked")
    assert p.compile == "off"  # a CPU plan
    assert _levers(FastOptions(), p, cpu).mode == "off"
    on_cuda = replace(p, compile="policy")
    lev = _levers(FastOptions(), on_cuda, cpu)
    assert (lev.mode, lev.pad, lev.precision) == ("off", False, "fp32")
    monkeypatch.setenv("LADD_FAST_COMPILE", "default")
    lev = _levers(FastOptions(), on_cuda, cpu)
    assert (lev.mode, lev.pad) == ("default", True)
    monkeypatch.setenv("LADD_FAST_COMPILE", "fastest")
    with pytest.raises(ValueError, match="LADD_FAST_COMPILE='fastest'"):
        _levers(FastOptions(), on_cuda, cpu)
    monkeypatch.delenv("LADD_FAST_COMPILE")
    asked = _levers(FastOptions(compile="reduce-overhead", pad_last=False), p, cpu)
    assert (asked.mode, asked.pad) == ("default", False)  # CUDA graphs need CUDA
    with pytest.raises(ValueError, match="unknown compile mode"):
        FastOptions(compile="fastest")
    with pytest.raises(ValueError, match="unknown dsa_draws"):
        FastOptions(dsa_draws="never")


@pytest.mark.parametrize("draws", ["epoch", "step"])
def test_both_dsa_draw_schedules_train(draws: str, one_thread) -> None:
    data = _data(t=40)
    cfg = _cfg(epochs=8, seeds=(0, 1), dsa=True, lr=0.05)
    res = _stacked(data, cfg, dsa_draws=draws)
    assert res.report.dsa_draws == draws and res.report.tail == "exact"
    for curve in res.loss_curves:
        assert curve[-1] < curve[0]


def test_policy_keeps_a_short_run_eager_after_timing_it(one_thread, tmp_path) -> None:
    """The policy path as it runs on CUDA, on the CPU: a few eager steps are timed, the cold
    estimate says compiling cannot pay for 2 epochs, so nothing is compiled."""
    from dataclasses import replace

    cfg = _cfg(epochs=2)
    spec = _spec(cfg)
    models = [init_model(spec, s) for s in cfg.seeds]
    step = _step(models, spec, cfg, _data())
    step.plan = replace(step.plan, mode="policy")
    step.cache_dir = str(tmp_path / "cc")
    step.prepare(2 * 3)
    assert step.mode == "off" and step.compiled is None
    assert step.seconds_probe > 0 and step.decision.startswith("eager")
    assert all(p.grad is None for p in step.params.values())  # the probe leaves no gradients


@pytest.mark.parametrize("fails_at", [1, 5])
def test_a_compiled_step_that_fails_leaves_the_run_eager_with_the_reference_weights(
    monkeypatch, one_thread, tmp_path, fails_at
):
    """A compiled step that raises (at its first call: while compiling; at a later one: in the
    middle of training) is dropped with a warning and the run goes on eager: the failed call
    leaves no gradient behind, so the weights still equal the reference's."""
    import ladd.trainers.stacked as fast

    calls = {"n": 0}

    def failing_compile(fn, mode, *, layout_optimization=False):
        def compiled(*args):  # the step's (x, y, weight, DSA op, uniforms, sample kinds)
            calls["n"] += 1
            if calls["n"] == fails_at:  # gradients accumulated, then the failure
                fn(*args)[0].backward()
                raise RuntimeError("inductor stand-in failure")
            return fn(*args)

        return compiled

    monkeypatch.setattr(fast, "compile_fn", failing_compile)
    monkeypatch.delenv("TORCHINDUCTOR_CACHE_DIR", raising=False)
    data = _data()
    cfg = _cfg(epochs=2)
    expected = "compiling the step failed" if fails_at == 1 else "compiled step failed"
    with pytest.warns(UserWarning, match=f"{expected} .*inductor stand-in failure"):
        res = _stacked(data, cfg, compile="default", cache_dir=str(tmp_path / "cc"))
    assert calls["n"] == fails_at  # never called again once it failed
    # never silently: the failure is in the engine report, which the run records
    assert res.report.compile_failure.startswith(expected)
    assert "inductor stand-in failure" in res.report.compile_failure
    assert res.report.compile_mode == "off"
    ref = _reference(data, cfg)
    assert _max_diff(ref.models, res.models) < 1e-5


def test_compiled_step_runs_full_batches_and_an_eager_tail(monkeypatch, one_thread, tmp_path):
    """With a stand-in compiler: full batches go through the compiled function, the last
    partial batch (pad_last=False) runs eager at its own size, the compile is recorded in the
    cache index and reported apart from training; the weights still equal the reference's."""
    import ladd.trainers.stacked as fast
    from ladd.trainers.compile import read_index

    calls = {"compiled": 0, "shapes": set()}

    def fake_compile(fn, mode, *, layout_optimization=False):
        def compiled(x, y, *rest):  # then weight, DSA op, uniforms, sample kinds
            calls["compiled"] += 1
            calls["shapes"].add(tuple(y.shape))
            return fn(x, y, *rest)

        return compiled

    monkeypatch.setattr(fast, "compile_fn", fake_compile)
    monkeypatch.delenv("TORCHINDUCTOR_CACHE_DIR", raising=False)
    data = _data()  # 40 samples, batches of 16: 2 full + a tail of 8
    cfg = _cfg(epochs=2)
    opts = dict(compile="default", pad_last=False, cache_dir=str(tmp_path / "cc"))
    res = _stacked(data, cfg, **opts)
    assert calls["shapes"] == {(3, 16, K)}  # never the tail's (3, 8, K)
    passes = plan(data, cfg).config.passes  # MTT protocol (auto at 16 px): epochs + 1
    assert calls["compiled"] == 2 + 2 * passes  # warm-up calls + 2 full batches per pass
    rep = res.report
    assert rep.compile_mode == "default" and rep.tail == "eager"
    assert rep.compiled_loss_diff == 0.0  # the self-check: the stand-in computes the same
    assert rep.seconds_compile >= 0 and rep.seconds_train > 0
    assert rep.cache_dir == str((tmp_path / "cc").resolve())
    (entry,) = read_index(tmp_path / "cc").values()
    assert entry.description["seeds"] == 3 and entry.description["mode"] == "default"
    assert entry.loss_diff == 0.0
    ref = _reference(data, cfg)
    assert _max_diff(ref.models, res.models) < 1e-5


def test_a_saved_state_is_resumed_by_the_engine_that_saved_it(one_thread, tmp_path):
    """A run of the sequential engine that was killed resumes on that engine even when its plan
    says stacked now (the stacked step cannot read a per-seed state), says why in the engine
    report, and ends with the uninterrupted run's weights."""
    data = _data()
    cfg = _cfg(epochs=3, seeds=(0, 1))
    ckpt = TrainCheckpoint(tmp_path / "state.safetensors", key="run", seconds=0.0)
    passes = plan(data, cfg).config.passes
    with pytest.raises(Killed):  # seed 1's first pass
        train_models(
            data,
            plan(data, cfg, "sequential"),
            TrainHooks(progress=killer(passes + 1), checkpoint=ckpt),
        )
    assert ckpt.saved_meta() is not None and ckpt.saved_meta()["engine"] == "reference"
    again = train_models(data, plan(data, cfg, "stacked"), TrainHooks(checkpoint=ckpt))
    assert again.engine["engine"] == "sequential"
    assert "resuming the state the sequential engine saved" in again.engine["decision"]
    ref = _reference(data, cfg)
    assert _max_diff(again.models, ref.models) == 0.0
    assert again.loss_curves == ref.loss_curves
