"""ladd.training.checkpoint: a run's training state in one file and one format, written by the
loop for every engine; a killed run resumes to the uninterrupted weights on every protocol; the
layouts earlier versions wrote still resume (with a DeprecationWarning naming the format); a
state that cannot be resumed is reported and training starts over (CPU-sized)."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import pytest
import torch
from plans import Killed, killer, plan, same_weights, toy_data
from safetensors import safe_open

from ladd.files import save_tensors
from ladd.trainers import train_models
from ladd.trainers.loop import TrainHooks
from ladd.trainers.reference import train_reference
from ladd.training import FORMAT, SavedState, TrainCheckpoint, TrainConfig, saved_engine
from ladd.training.checkpoint import TRAIN_STATE_KEY

K, SIZE = 4, 16
# the fast trainer's two engines; the sequential one runs (and saves as) the reference engine
SAVED_AS = {"sequential": "reference", "stacked": "stacked"}


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


def _train(cfg: TrainConfig, engine: str, **hooks):
    data = toy_data()
    return train_models(data, plan(data, cfg, engine), TrainHooks(**hooks))


def _killed_state(tmp_path: Path, cfg: TrainConfig, engine: str) -> TrainCheckpoint:
    """The state a run left when killed: seed 1's second pass for the sequential engine (seed 0
    finished), the third pass for the stacked engine."""
    ckpt = TrainCheckpoint(tmp_path / "state.safetensors", key="run", seconds=0.0)
    at = cfg.passes + 2 if engine == "sequential" else 2 * 3  # progress counts seed-passes
    with pytest.raises(Killed):
        _train(cfg, engine, progress=killer(at), checkpoint=ckpt)
    return ckpt


@pytest.mark.parametrize("engine", ["sequential", "stacked"])
@pytest.mark.parametrize("protocol", ["mtt", "glad", "rded"])
def test_a_killed_run_resumes_to_the_same_weights(tmp_path, engine, protocol, one_thread):
    """Checkpoints hold parameters, momentum, RNG streams, the EMA and the schedule position;
    a run killed after its third pass (seed 1 of 2 for the sequential engine) and started again
    ends with exactly the weights of an uninterrupted run, DSA and all."""
    cfg = _cfg(protocol)
    whole = _train(cfg, engine)
    ckpt = TrainCheckpoint(tmp_path / "state.safetensors", key="run", seconds=0.0)
    at = cfg.passes + 3 if engine == "sequential" else 2 * 3
    with pytest.raises(Killed):
        _train(cfg, engine, progress=killer(at), checkpoint=ckpt)
    assert ckpt.path.is_file()
    if protocol == "rded":  # AdamW's moments and step count are saved beside the weights
        with safe_open(str(ckpt.path), framework="pt") as f:
            keys = set(f.keys())
        for part in (".exp_avg", ".exp_avg_sq", ".step"):
            assert any(k.endswith(part) and "opt." in k for k in keys), part
    other = TrainCheckpoint(ckpt.path, key="another run", seconds=0.0)
    assert other.read() is None  # a state of another run is never resumed, and it is said
    assert "belongs to another run" in other.problem
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # resumed, not refused and started over
        again = _train(cfg, engine, checkpoint=ckpt)
    assert same_weights(whole, again) and whole.loss_curves == again.loss_curves


def test_an_unreadable_saved_state_is_reported_not_dropped_silently(tmp_path):
    ckpt = TrainCheckpoint(tmp_path / "state.safetensors", key="run", seconds=0.0)
    assert ckpt.read() is None and ckpt.problem is None  # no file: nothing to say
    ckpt.path.write_bytes(b"torn write")
    assert ckpt.saved_meta() is None
    assert "unreadable" in ckpt.problem and "training starts over" in ckpt.problem
    assert ckpt.read() is None and r"state.safetensors is unreadable" in ckpt.problem
    ckpt.save({"x": torch.zeros(2)}, {"pass": 1})  # the next save replaces it
    assert ckpt.read()[1]["pass"] == 1 and ckpt.problem is None


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


@pytest.mark.parametrize("engine", ["sequential", "stacked"])
@pytest.mark.parametrize("protocol", ["mtt", "glad"])
def test_a_state_in_the_old_layout_resumes_to_the_uninterrupted_weights(
    tmp_path, engine, protocol, one_thread
):
    """A file in the layout its engine wrote before FORMAT 2 resumes (it is read with a
    DeprecationWarning naming the format, and nothing else is said) on the engine that wrote
    it, even where the plan names the fast trainer's other engine, to the uninterrupted
    weights."""
    cfg = _cfg(protocol)
    whole = _train(cfg, engine)
    ckpt = _killed_state(tmp_path, cfg, engine)
    _, meta = _read(ckpt.path)
    assert meta["format"] == FORMAT == 2 and meta["engine"] == SAVED_AS[engine]
    write_old_layout(ckpt.path)
    tensors, meta = _read(ckpt.path)
    assert "format" not in meta and ("seed_index" in meta) == (engine == "sequential")
    assert saved_engine(meta) == SAVED_AS[engine]
    other = "stacked" if engine == "sequential" else "sequential"  # the other engine is planned:
    events = []
    with warnings.catch_warnings(record=True) as said:
        warnings.simplefilter("always")
        again = _train(cfg, other, checkpoint=ckpt, progress=events.append)  # the saver resumes
    assert [type(w.message) for w in said] == [DeprecationWarning], [str(w.message) for w in said]
    assert "older than format 2" in str(said[0].message)
    assert "saved in format 2 at the next save" in str(said[0].message)
    assert again.engine["engine"] == engine
    assert f"resuming the state the {engine} engine saved" in again.engine["decision"]
    passes = cfg.passes
    if engine == "sequential":  # seed-passes: seed_index seeds done, then `pass` of this one
        went_on = passes * meta["seed_index"] + meta["pass"] + 1
    else:  # both seeds at once
        went_on = 2 * (meta["pass"] + 1)
    assert events[0].step == went_on  # the first pass reported is the one after the saved pass
    assert same_weights(whole, again) and whole.loss_curves == again.loss_curves
    assert ckpt.saved_meta()["format"] == FORMAT  # rewritten in the one format at its next save


def test_reading_an_old_layout_warns_and_names_the_new_format(tmp_path, one_thread):
    """SavedState.from_file on each old layout: a DeprecationWarning (the deprecation is
    tested, not just tolerated), the same state as the new format's."""
    cfg = _cfg("glad")
    for engine in ("sequential", "stacked"):
        folder = tmp_path / engine
        folder.mkdir()
        ckpt = _killed_state(folder, cfg, engine)
        new = SavedState.from_file(*_read(ckpt.path))
        write_old_layout(ckpt.path)
        with pytest.warns(DeprecationWarning, match="layout older than format 2"):
            old = SavedState.from_file(*_read(ckpt.path))
        assert (old.engine, old.group, old.passes, old.curves) == (
            new.engine, new.group, new.passes, new.curves,
        )  # fmt: skip
        for a, b in ((old.engine_state, new.engine_state), (old.pass_end, new.pass_end)):
            assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
        assert all(torch.equal(a, b) for a, b in zip(old.rng, new.rng, strict=True))


def _refused(tmp_path: Path, cfg: TrainConfig, engine: str, match: str) -> None:
    """Training with the broken state at state.safetensors warns `match`, says so in a progress
    note, starts over (the uninterrupted weights) and replaces the file at its next save."""
    ckpt = TrainCheckpoint(tmp_path / "state.safetensors", key="run", seconds=0.0)
    data = toy_data()
    whole = train_reference(data, plan(data, cfg))
    events = []
    hooks = TrainHooks(checkpoint=ckpt, progress=events.append)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # an old layout, read then refused
        with pytest.warns(UserWarning, match=match):
            if engine == "reference":
                again = train_reference(data, plan(data, cfg), hooks)
            else:
                again = train_models(data, plan(data, cfg, engine), hooks)
    notes = [e.message for e in events if e.note]
    assert len(notes) == 1 and "training starts over" in notes[0]
    assert same_weights(whole, again) and whole.loss_curves == again.loss_curves
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
        _killed_state(tmp_path, cfg, "sequential")
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
    ckpt = _killed_state(tmp_path, cfg, "sequential")
    tensors, meta = _read(ckpt.path)
    tensors = {k: v for k, v in tensors.items() if not k.startswith("done.0.")}
    ckpt.path.unlink()
    save_tensors(ckpt.path, tensors, {TRAIN_STATE_KEY: json.dumps(meta)})
    _refused(tmp_path, cfg, "sequential", "it lacks the model of finished seed 0")


def test_the_loop_writes_one_format_for_every_engine(tmp_path, one_thread):
    """{engine state, seed group, pass, curves, rng} (+ the optimiser/EMA and finished models),
    whichever engine wrote it."""
    cfg = _cfg("glad")
    for engine in ("sequential", "stacked"):
        folder = tmp_path / engine
        folder.mkdir()
        ckpt = _killed_state(folder, cfg, engine)
        tensors, meta = _read(ckpt.path)
        assert {k.split(".")[0] for k in tensors} <= {"engine", "end", "done", "rng"}
        assert meta["format"] == 2 and meta["engine"] == SAVED_AS[engine]
        group = [1] if engine == "sequential" else [0, 1]
        assert meta["seeds"] == group and meta["group"] == (1 if engine == "sequential" else 0)
        assert sorted(k for k in tensors if k.startswith("rng.")) == [
            f"rng.{j}" for j in range(len(group))
        ]
        assert [len(c) for c in meta["curves"]] == (
            [cfg.passes, meta["pass"]] if engine == "sequential" else [meta["pass"]] * 2
        )
        assert any(k.startswith("end.ema.") for k in tensors)  # GLaD's EMA is in the state
