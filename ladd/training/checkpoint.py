"""The training state of a run, in one file and one format.

`TrainCheckpoint` is the file: one safetensors file written atomically at most every `seconds`,
named by the run's key (its plan), so that a killed run resumes where it stopped and ends with
the same weights as an uninterrupted one. `SavedState` is what is in it: the one format
(FORMAT) the training loop (ladd.trainers.loop.fit) writes and reads. Files of the two layouts
earlier versions wrote (before FORMAT 2: the reference loop's and the stacked engine's) are still
read, with a DeprecationWarning naming the new format: they are rewritten in it at the next save.
"""

from __future__ import annotations

import json
import re
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

__all__ = [
    "FORMAT",
    "TRAIN_STATE_KEY",
    "SavedState",
    "TrainCheckpoint",
    "checkpoint_path",
    "saved_engine",
]

FORMAT = 2  # the checkpoint format fit writes; files without "format" are the older layouts
TRAIN_STATE_KEY = "ladd_train_state"


class TrainCheckpoint:
    """The file of a run's training state: one safetensors file written atomically at most every
    `seconds` (0: every pass), so that a killed run resumes where it stopped and ends with the
    same weights as an uninterrupted one. `key` names the run (its plan's key): a file of
    another run is never resumed.

    This class is the file (atomic write, the run's key, callers' attached state); what is in it
    is a `SavedState`. A file that exists but cannot be used is never dropped without a word:
    `problem` says why, and the loop reports it once (a warning and a progress note).
    """

    def __init__(self, path: str | Path, key: str, seconds: float = 60.0) -> None:
        self.path, self.key, self.seconds = Path(path), key, float(seconds)
        self._last = time.monotonic()
        self._attached: dict[str, tuple[Callable[[], Any], Callable[[Any], None]]] = {}
        self.problem: str | None = None  # why the last read found no usable state in the file

    def attach(self, name: str, get: Callable[[], Any], put: Callable[[Any], None]) -> None:
        """Keep a caller's own state (JSON-able, e.g. the live view's accuracy points) in every
        save, and hand it back through `put` when a saved state is resumed, so that what was
        gathered before a crash is not lost with it."""
        self._attached[name] = (get, put)

    def due(self, last_pass: bool) -> bool:
        return not last_pass and time.monotonic() - self._last >= self.seconds

    def save(self, tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> None:
        from ladd.files import save_tensors

        attached = {name: get() for name, (get, _) in self._attached.items()}
        body = json.dumps({**meta, "attached": attached, "key": self.key})
        save_tensors(self.path, tensors, {TRAIN_STATE_KEY: body})
        self._last = time.monotonic()

    def read(self, tensors: bool = True) -> tuple[dict[str, torch.Tensor], dict[str, Any]] | None:
        """The saved tensors and metadata of this run, or None: no file, or one that cannot be
        used (unreadable, or another run's), `problem` then says which. Nothing is handed back
        (see `hand_back`)."""
        from safetensors import safe_open

        self.problem = None
        if not self.path.is_file():
            return None
        try:
            with safe_open(str(self.path), framework="pt") as f:
                meta = json.loads((f.metadata() or {})[TRAIN_STATE_KEY])
                found = {k: f.get_tensor(k) for k in f.keys()} if tensors else {}  # noqa: SIM118
        except Exception as err:  # a torn or foreign file: reported, replaced at the next save
            why = f"{type(err).__name__}: {err}" if str(err) else type(err).__name__
            self.problem = (
                f"the saved training state {self.path} is unreadable ({why}): training starts over"
            )
            return None
        if not isinstance(meta, dict) or meta.get("key") != self.key:
            self.problem = (
                f"the saved training state {self.path} belongs to another run: training starts over"
            )
            return None
        return found, meta

    def hand_back(self, meta: dict[str, Any]) -> None:
        """Give each attached caller its part of a saved state that is being resumed."""
        for name, (_, put) in self._attached.items():
            if name in (meta.get("attached") or {}):
                put(meta["attached"][name])

    def saved_meta(self) -> dict[str, Any] | None:
        """The saved state's metadata when there is one of this run (no tensors read, nothing
        handed back): which engine wrote it, how far it got."""
        saved = self.read(tensors=False)
        return None if saved is None else saved[1]

    def remove(self) -> None:
        self.path.unlink(missing_ok=True)


def checkpoint_path(folder: str | Path, key: str) -> Path:
    """Where the training state of the run `key` is kept in a workspace's checkpoint folder."""
    return Path(folder) / f"train-{key}.safetensors"


@dataclass
class SavedState:
    """A training state at a pass boundary: the one checkpoint format (FORMAT).

    engine: the engine that wrote it; group: the index of the seed group in training, `seeds`
    its seeds (None in the old layouts); passes: passes that group has done; curves: per seed
    started so far (in cfg.seeds order), its mean loss per pass; rng: the group's generator
    states, one per seed; engine_state: Group.state(); pass_end and pass_end_meta: the
    optimiser's momentum and the EMA (PassEnd.state); done: the finished seeds' models (state
    dicts) by index in cfg.seeds.
    """

    engine: str
    group: int
    seeds: tuple[int, ...] | None
    passes: int
    curves: list[list[float]]
    rng: list[torch.Tensor]
    engine_state: dict[str, torch.Tensor]
    pass_end: dict[str, torch.Tensor]
    pass_end_meta: dict[str, Any]
    done: dict[int, dict[str, torch.Tensor]]

    def tensors(self) -> dict[str, torch.Tensor]:
        """The file's tensors: engine.*, end.*, done.<i>.*, rng.<j>."""
        out = {f"engine.{k}": v for k, v in self.engine_state.items()}
        out.update({f"end.{k}": v for k, v in self.pass_end.items()})
        for i, sd in self.done.items():
            out.update({f"done.{i}.{k}": v for k, v in sd.items()})
        out.update({f"rng.{j}": g for j, g in enumerate(self.rng)})
        return out

    def meta(self) -> dict[str, Any]:
        """The file's JSON. `seed_index` (a one-seed group's seed, by index in cfg.seeds) is
        there for readers of the old reference layout (ladd.deploy's resume note)."""
        meta: dict[str, Any] = {
            "format": FORMAT,
            "engine": self.engine,
            "group": self.group,
            "seeds": list(self.seeds or ()),
            "pass": self.passes,
            "curves": self.curves,
            **self.pass_end_meta,
        }
        if self.seeds is not None and len(self.seeds) == 1:
            meta["seed_index"] = len(self.curves) - 1
        return meta

    @classmethod
    def from_file(cls, tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> SavedState:
        """Read a file's tensors and JSON in any layout this code has written (ValueError saying
        why when it cannot)."""
        try:
            fmt = meta.get("format")
            if fmt is None:
                warnings.warn(
                    "this training state is in a layout older than format 2 (written before "
                    f"2026-11-27); it is read now and saved in format {FORMAT} at the next save",
                    DeprecationWarning,
                    stacklevel=2,
                )
                return _old_layout(tensors, meta)
            if int(fmt) != FORMAT:
                raise ValueError(f"it has format {fmt}, this version reads {FORMAT} and older")
            seeds = tuple(int(s) for s in meta["seeds"])
            return cls(
                engine=str(meta["engine"]),
                group=int(meta["group"]),
                seeds=seeds,
                passes=int(meta["pass"]),
                curves=[[float(v) for v in c] for c in meta["curves"]],
                rng=[tensors[f"rng.{j}"] for j in range(len(seeds))],
                engine_state=_strip(tensors, "engine."),
                pass_end=_strip(tensors, "end."),
                pass_end_meta={"ema_updates": int(meta.get("ema_updates", 0))},
                done=_done(tensors, re.compile(r"done\.(\d+)\.(.+)")),
            )
        except KeyError as err:
            raise ValueError(f"it lacks {err}") from None
        except (TypeError, AttributeError) as err:
            raise ValueError(f"its metadata is malformed ({err})") from None


def _strip(tensors: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    return {k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)}


def _done(
    tensors: dict[str, torch.Tensor], pattern: re.Pattern
) -> dict[int, dict[str, torch.Tensor]]:
    out: dict[int, dict[str, torch.Tensor]] = {}
    for k, v in tensors.items():
        m = pattern.fullmatch(k)
        if m:
            out.setdefault(int(m.group(1)), {})[m.group(2)] = v
    return out


def _old_layout(tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> SavedState:
    """The layouts before FORMAT 2, one per engine.

    The reference loop's: `seed_index` (the seed in training), `pass`, `curve` (its curve so
    far), `curves` (the finished seeds'), tensors `model.*`, `state.opt.<i>` / `state.ema.<i>`,
    `done<i>.*` (finished seeds' models), `rng`. The stacked engine's: `pass`, `curves` (every
    seed's so far), tensors `p.*` / `b.*` (stacked parameters and buffers), `opt.<i>` /
    `ema.<i>`, `rng.<i>` per seed.
    """
    end_meta = {"ema_updates": int(meta.get("ema_updates", 0))}
    if "seed_index" in meta:
        curves = [[float(v) for v in c] for c in meta["curves"]]
        return SavedState(
            engine="reference",
            group=int(meta["seed_index"]),
            seeds=None,
            passes=int(meta["pass"]),
            curves=[*curves, [float(v) for v in meta["curve"]]],
            rng=[tensors["rng"]],
            engine_state={k: v for k, v in tensors.items() if k.startswith("model.")},
            pass_end=_strip(tensors, "state."),
            pass_end_meta=end_meta,
            done=_done(tensors, re.compile(r"done(\d+)\.(.+)")),
        )
    streams = sorted(int(k[4:]) for k in tensors if re.fullmatch(r"rng\.\d+", k))
    if streams != list(range(len(streams))) or not streams:
        raise ValueError("it holds no complete set of random streams (rng.<i>)")
    return SavedState(
        engine="stacked",
        group=0,
        seeds=None,
        passes=int(meta["pass"]),
        curves=[[float(v) for v in c] for c in meta["curves"]],
        rng=[tensors[f"rng.{i}"] for i in streams],
        engine_state={k: v for k, v in tensors.items() if k.startswith(("p.", "b."))},
        pass_end={k: v for k, v in tensors.items() if k.startswith(("opt.", "ema."))},
        pass_end_meta=end_meta,
        done={},
    )


def saved_engine(meta: dict[str, Any]) -> str:
    """The engine that wrote a saved state, from its JSON: "reference" or "stacked" (the old
    layouts tell themselves apart by the reference loop's `seed_index`)."""
    if "format" in meta:
        return str(meta.get("engine", ""))
    return "reference" if "seed_index" in meta else "stacked"
