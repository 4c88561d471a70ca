"""ladd.trainers.loop: the one training loop (fit), its engines, its hooks object and its one
checkpoint format, the older layouts included (CPU-sized)."""

from __future__ import annotations

import json
import threading
import warnings
from pathlib import Path

import pytest
import torch
from parity import normed_conv_biases
from safetensors import safe_open

from ladd.files import save_tensors
from ladd.trainers import train_models
from ladd.trainers.fast import FastOptions, StackedEngine, _resolve, train_fast
from ladd.trainers.loop import Engine, TrainHooks, fit
from ladd.trainers.reference import train_reference
from ladd.training import (
    TRAIN_STATE_KEY,
    TrainCheckpoint,
    TrainConfig,
    TrainingData,
    TrainingStopped,
    init_model,
    model_spec,
)

K, SIZE = 4, 16


def _data() -> TrainingData:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(40, 3, SIZE, SIZE, generator=g)
    y = torch.softmax(torch.randn(40, K, generator=g), 1)
    return TrainingData(x, y, num_full=40, num_crops=0, num_classes=K, num_images=40)


def _cfg(protocol: str = "mtt", **kw) -> TrainConfig:
    base = dict(
        arch="convnet_d2",
        epochs=4,
        lr=0.05,
        batch_size=16,
        seeds=(0, 1),
        dsa=True,
        protocol=protocol,
        model_options={"width": 4},
    )
    base.update(kw)
    return TrainConfig(**base)


def _same(a, b) -> bool:
    return all(
        torch.equal(p, q)
        for ma, mb in zip(a.models, b.models, strict=True)
        for p, q in zip(ma.state_dict().values(), mb.state_dict().values(), strict=True)
    )


def _max_diff(a, b, skip: set[str] = frozenset()) -> float:
    return max(
        (p - q).abs().max().item()
        for ma, mb in zip(a.models, b.models, strict=True)
        for (k, p), q in zip(ma.state_dict().items(), mb.state_dict().values(), strict=True)
        if k not in skip
    )


class _Killed(Exception):
    pass


def _killer(at: int):
    def kill(ev):
        if not ev.note and ev.step >= at:
            raise _Killed

    return kill


ENGINES = {"reference": FastOptions("sequential"), "stacked": FastOptions("stacked")}


def _train(cfg, engine: str, **kw):
    return train_fast(
        _data(), model_spec(cfg, K, SIZE), cfg, device="cpu", options=ENGINES[engine], **kw
    )


def _killed_state(tmp_path: Path, cfg: TrainConfig, engine: str) -> TrainCheckpoint:
    """The state a run left when killed: seed 1's second pass for the reference engine (seed 0
    finished), the third pass for the stacked engine."""
    ckpt = TrainCheckpoint(tmp_path / "state.safetensors", key="run", seconds=0.0)
    passes = cfg.resolved(SIZE).passes
    with pytest.raises(_Killed):
        _train(
            cfg,
            engine,
            progress=_killer(passes + 2 if engine == "reference" else 2 * 3),
            checkpoint=ckpt,
        )
    return ckpt


# -- each engine runs through the one loop ----------------------------------------------------


def test_every_trainer_runs_its_engine_through_fit(monkeypatch, one_thread):
    import ladd.trainers.fast as fast_mod
    import ladd.trainers.reference as ref_mod

    seen: list[str] = []

    def spy(engine: Engine, data, cfg, hooks=None):
        seen.append(engine.name)
        return fit(engine, data, cfg, hooks)

    monkeypatch.setattr(ref_mod, "fit", spy)
    monkeypatch.setattr(fast_mod, "fit", spy)
    cfg = _cfg(epochs=1)
    spec = model_spec(cfg, K, SIZE)
    train_reference(_data(), spec, cfg, device="cpu")
    _train(cfg, "reference")
    _train(cfg, "stacked")
    assert seen == ["reference", "reference", "stacked"]


class _Pairs(StackedEngine):
    """The stacked engine with seeds trained two at a time: the loop with several groups of
    several seeds (as a distributed engine would shard them)."""

    name = "pairs"

    def groups(self, seeds):
        return [tuple(seeds[i : i + 2]) for i in range(0, len(seeds), 2)]


def _pairs(cfg: TrainConfig, hooks: TrainHooks | None = None):
    spec = model_spec(cfg, K, SIZE)
    dev = torch.device("cpu")
    plan = _resolve(FastOptions("stacked"), dev, init_model(spec, 0), spec)
    engine = _Pairs(spec, cfg, float(cfg.lr), dev, plan, FastOptions("stacked"))
    return fit(engine, _data(), cfg, hooks)


@pytest.mark.parametrize("protocol", ["mtt", "glad", "rded"])
def test_groups_of_several_seeds_give_the_reference_weights_and_resume_exactly(
    tmp_path, protocol, one_thread
):
    """Seeds (0, 1) then (2,) as two stacked groups: the reference loop's weights (the stacked
    engine's tolerance, no DSA), progress counting seed-passes across groups, and a run killed
    in the second group resumes to the uninterrupted run's weights."""
    # under AdamW at SGD's lr 0.05, near-zero gradients' rounding moves weights by ~1e-4
    adamw = {"lr": 0.001} if protocol == "rded" else {}  # RDED's rate for ConvNets
    cfg = _cfg(protocol, seeds=(0, 1, 2), dsa=False, **adamw).resolved(SIZE)
    ref = train_reference(_data(), model_spec(cfg, K, SIZE), cfg, device="cpu")
    events = []
    whole = _pairs(cfg, TrainHooks(progress=events.append))
    # AdamW (rded): the conv biases an instance norm removes drift on rounding noise
    # (tests/test_fast.py, the parity test's docstring); what the models compute is checked
    skip = normed_conv_biases(ref.models[0]) if protocol == "rded" else set()
    assert _max_diff(ref, whole, skip) < 1e-5
    with torch.no_grad():
        x = _data().inputs
        for a, b in zip(ref.models, whole.models, strict=True):
            torch.testing.assert_close(b(x), a(x), rtol=1e-5, atol=1e-5)
    for a, b in zip(ref.loss_curves, whole.loss_curves, strict=True):
        assert a == pytest.approx(b, rel=1e-5)
    passes = cfg.passes
    assert [e.step for e in events] == [2 * p for p in range(1, passes + 1)] + [
        2 * passes + p for p in range(1, passes + 1)
    ]
    assert events[-1].total == 3 * passes and events[-1].message == "seed 2 (fast, stacked)"
    assert events[0].message == "seeds 0, 1 (fast, stacked)"
    ckpt = TrainCheckpoint(tmp_path / "s.safetensors", key="run", seconds=0.0)
    with pytest.raises(_Killed):
        _pairs(cfg, TrainHooks(progress=_killer(2 * passes + 2), checkpoint=ckpt))
    meta = ckpt.saved_meta()
    assert meta["engine"] == "pairs" and meta["group"] == 1 and meta["seeds"] == [2]
    events.clear()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # resumed, not refused and started over
        again = _pairs(cfg, TrainHooks(checkpoint=ckpt, progress=events.append))
    assert events[0].step == 2 * passes + meta["pass"] + 1  # it went on after the saved pass
    assert _same(whole, again) and whole.loss_curves == again.loss_curves


# -- the hooks object -------------------------------------------------------------------------


def test_hooks_object_and_the_old_keywords_are_the_same_run(one_thread):
    cfg = _cfg(epochs=2)
    spec = model_spec(cfg, K, SIZE)
    by_kw, by_hooks = [], []
    a = train_models(_data(), spec, cfg, device="cpu", progress=by_kw.append)
    b = train_models(_data(), spec, cfg, device="cpu", hooks=TrainHooks(progress=by_hooks.append))
    assert (
        _same(a, b)
        and by_kw
        and [(e.step, e.loss) for e in by_kw] == [(e.step, e.loss) for e in by_hooks]
    )
    assert TrainHooks.of(None, monitor_every=3).monitor_every == 3
    stop = threading.Event()
    assert TrainHooks.of(TrainHooks(stop=stop), monitor_every=2) == TrainHooks(
        stop=stop, monitor_every=2
    )
    with pytest.raises(ValueError, match="progress given both"):
        TrainHooks.of(TrainHooks(progress=print), progress=print)
    with pytest.raises(TypeError, match="unknown hook argument"):
        TrainHooks.of(None, **{"on_epoch": print})
    stop.set()
    with pytest.raises(TrainingStopped):
        train_models(_data(), spec, cfg, device="cpu", hooks=TrainHooks(stop=stop))


# -- the one checkpoint format and the old layouts ---------------------------------------------


def _read(path: Path) -> tuple[dict[str, torch.Tensor], dict]:
    with safe_open(str(path), framework="pt") as f:
        meta = json.loads(f.metadata()[TRAIN_STATE_KEY])
        return {k: f.get_tensor(k) for k in f.keys()}, meta  # noqa: SIM118


def _rename(tensors: dict[str, torch.Tensor], rules: list[tuple[str, str]]) -> dict:
    out = {}
    for k, v in tensors.items():
        for old, new in rules:
            if k.startswith(old):
                out[new + k[len(old) :]] = v
                break
        else:
            raise AssertionError(f"no rule for {k}")
    return out


def write_old_layout(path: Path) -> None:
    """Rewrite a state saved by fit in the layout its engine wrote before the one format
    (ladd/trainers/reference.py and fast.py `_train_stacked` of commit 1bea7ed; files those
    wrote were checked to equal this rewrite key for key and value for value):

    reference: tensors `model.*`, `state.opt.<i>`, `state.ema.<i>`, `done<i>.*`, `rng`; JSON
      `seed_index`, `pass`, `curve` (the seed's so far), `curves` (the finished seeds').
    stacked: tensors `p.*`, `b.*`, `opt.<i>`, `ema.<i>`, `rng.<i>`; JSON `pass`, `curves`.
    """
    tensors, meta = _read(path)
    common = {"ema_updates": meta["ema_updates"], "attached": meta["attached"], "key": meta["key"]}
    if meta["engine"] == "reference":
        si = meta["group"]
        rules = [("engine.model.", "model."), ("end.", "state."), ("rng.0", "rng")]
        rules += [(f"done.{i}.", f"done{i}.") for i in range(si)]
        old = _rename(tensors, rules)
        body = {"seed_index": si, "pass": meta["pass"], "curve": meta["curves"][si]}
        body["curves"] = meta["curves"][:si]
    else:
        old = _rename(tensors, [("engine.", ""), ("end.", ""), ("rng.", "rng.")])
        body = {"pass": meta["pass"], "curves": meta["curves"]}
    path.unlink()
    save_tensors(path, old, {TRAIN_STATE_KEY: json.dumps({**body, **common})})


@pytest.mark.parametrize("engine", ["reference", "stacked"])
@pytest.mark.parametrize("protocol", ["mtt", "glad"])
def test_a_state_in_the_old_layout_resumes_to_the_uninterrupted_weights(
    tmp_path, engine, protocol, one_thread
):
    cfg = _cfg(protocol)
    whole = _train(cfg, engine)
    ckpt = _killed_state(tmp_path, cfg, engine)
    _, meta = _read(ckpt.path)
    assert meta["format"] == 2 and meta["engine"] == engine
    write_old_layout(ckpt.path)
    tensors, meta = _read(ckpt.path)
    assert "format" not in meta and ("seed_index" in meta) == (engine == "reference")
    other = "stacked" if engine == "reference" else "reference"  # the other engine is planned:
    events = []
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # resumed, not refused and started over
        again = _train(cfg, other, checkpoint=ckpt, progress=events.append)  # the saver resumes
    assert again.report.engine == ("sequential" if engine == "reference" else "stacked")
    passes = cfg.resolved(SIZE).passes
    if engine == "reference":  # seed-passes: seed_index seeds done, then `pass` of this one
        went_on = passes * meta["seed_index"] + meta["pass"] + 1
    else:  # both seeds at once
        went_on = 2 * (meta["pass"] + 1)
    assert events[0].step == went_on  # the first pass reported is the one after the saved pass
    assert _same(whole, again) and whole.loss_curves == again.loss_curves


def _refused(tmp_path: Path, cfg: TrainConfig, trainer: str, match: str) -> None:
    """Training with the broken state at state.safetensors warns `match`, says so in a progress
    note, starts over (the uninterrupted weights) and replaces the file at its next save."""
    ckpt = TrainCheckpoint(tmp_path / "state.safetensors", key="run", seconds=0.0)
    spec = model_spec(cfg, K, SIZE)
    whole = train_reference(_data(), spec, cfg, device="cpu")
    events = []
    run = train_reference if trainer == "reference" else train_fast
    with pytest.warns(UserWarning, match=match):
        again = run(_data(), spec, cfg, device="cpu", checkpoint=ckpt, progress=events.append)
    notes = [e.message for e in events if e.note]
    assert len(notes) == 1 and "training starts over" in notes[0]
    assert _same(whole, again) and whole.loss_curves == again.loss_curves
    assert ckpt.saved_meta()["format"] == 2


@pytest.mark.parametrize(
    ("damage", "match"),
    [
        ("garbage", "unreadable"),
        ("no metadata", r"unreadable \(KeyError"),
        ("other run", "belongs to another run"),
        ("no rng", "cannot be resumed: it lacks 'rng'"),
        ("narrower", r"cannot be resumed: its model tensor 'model\..*' is \("),
        ("newer", "cannot be resumed: it has format 3"),
    ],
)
def test_a_state_that_cannot_be_resumed_is_reported_and_training_starts_over(
    tmp_path, damage, match, one_thread
):
    cfg = _cfg(dsa=False)
    path = tmp_path / "state.safetensors"
    if damage == "garbage":
        path.write_bytes(b"\x00not a safetensors file at all")
    elif damage == "no metadata":
        save_tensors(path, {"x": torch.zeros(1)})
    else:
        _killed_state(tmp_path, cfg, "reference")
        write_old_layout(path)
        tensors, meta = _read(path)
        if damage == "other run":
            meta["key"] = "another run"
        elif damage == "no rng":
            del tensors["rng"]
        elif damage == "narrower":
            name = next(k for k in tensors if k.startswith("model.") and k.endswith("weight"))
            tensors[name] = tensors[name][:1]
        elif damage == "newer":
            meta["format"] = 3
        path.unlink()
        save_tensors(path, tensors, {TRAIN_STATE_KEY: json.dumps(meta)})
    _refused(tmp_path, cfg, "reference", match)


def test_a_state_of_another_engine_is_refused_saying_which(tmp_path, one_thread):
    """The reference trainer cannot continue the stacked engine's state (old layout or new)."""
    cfg = _cfg(dsa=False)
    _killed_state(tmp_path, cfg, "stacked")
    write_old_layout(tmp_path / "state.safetensors")
    _refused(
        tmp_path,
        cfg,
        "reference",
        "the stacked engine wrote it and this run trains with the reference engine",
    )


def test_a_finished_seed_missing_from_the_state_is_refused(tmp_path, one_thread):
    cfg = _cfg(dsa=False)
    ckpt = _killed_state(tmp_path, cfg, "reference")
    tensors, meta = _read(ckpt.path)
    tensors = {k: v for k, v in tensors.items() if not k.startswith("done.0.")}
    ckpt.path.unlink()
    save_tensors(ckpt.path, tensors, {TRAIN_STATE_KEY: json.dumps(meta)})
    _refused(tmp_path, cfg, "fast", "it lacks the model of finished seed 0")


def test_the_loop_writes_one_format_for_every_engine(tmp_path, one_thread):
    """{engine state, seed group, pass, curves, rng} (+ the optimiser/EMA and finished models),
    whichever engine wrote it."""
    cfg = _cfg("glad")
    for engine in ("reference", "stacked"):
        folder = tmp_path / engine
        folder.mkdir()
        ckpt = _killed_state(folder, cfg, engine)
        tensors, meta = _read(ckpt.path)
        assert {k.split(".")[0] for k in tensors} <= {"engine", "end", "done", "rng"}
        assert meta["format"] == 2 and meta["engine"] == engine
        group = [1] if engine == "reference" else [0, 1]
        assert meta["seeds"] == group and meta["group"] == (1 if engine == "reference" else 0)
        assert sorted(k for k in tensors if k.startswith("rng.")) == [
            f"rng.{j}" for j in range(len(group))
        ]
        assert [len(c) for c in meta["curves"]] == (
            [cfg.resolved(SIZE).passes, meta["pass"]]
            if engine == "reference"
            else [meta["pass"]] * 2
        )
        assert any(k.startswith("end.ema.") for k in tensors)  # GLaD's EMA is in the state
