"""Run records as the dashboard and `ladd runs` read them: `RunSummary`, typed, from the runs
database's rows (ladd.store); a damaged row reads as a summary that says so."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from ladd.pipeline import CheckpointInfo
from ladd.training import MODES, TrainConfig

__all__ = ["RunSummary", "list_summaries", "summarise"]


@dataclass(frozen=True)
class RunSummary:
    """A run record as the dashboard and `ladd runs` read it (fields absent for other kinds)."""

    id: int
    kind: str
    status: str
    created: float
    error: str | None = None
    label: str | None = None
    set_path: str | None = None
    source: str | None = None
    train: TrainConfig | None = None  # train / evaluate runs
    accuracy_mean: float | None = None  # train: over seeds; evaluate: the architectures' average
    accuracy_std: float | None = None
    per_seed: tuple[float, ...] = ()
    per_class_mean: tuple[float, ...] = ()
    seconds: float | None = None
    lr: float | None = None
    model_files: tuple[str, ...] = ()  # train runs: model_seed<k> weights, by seed
    checkpoints: tuple[CheckpointInfo, ...] = ()  # labeler runs
    demo: str | None = None
    reading: dict[str, Any] | None = None  # train / evaluate: how the set was read
    recorded: dict[str, Any] | None = None  # the settled config exactly as the run recorded it
    plan: dict[str, Any] | None = None  # the run's plan: key, engine, model, the set's facts

    def facts(self) -> dict[str, str]:
        """What ran, as recorded (never a default filled in): every field of the settled
        config the run recorded, the engine, the set's own grid and codec, the input space the
        set's images were used in and the one the test split was put in. Shown by the Compare
        page and the HTML report."""
        out: dict[str, str] = {}
        for k, v in (self.recorded or {}).items():
            out[f"config: {k}"] = _text(v)
        plan = self.plan or {}
        if plan:
            out["engine"] = f"{plan.get('engine')} (compile {plan.get('compile')})"
            out["device"] = str(plan.get("device"))
            facts = plan.get("set") or {}
            if facts.get("label_augmented"):
                out["set: crop grid"] = f"N = {facts.get('n')}, R = {facts.get('r')}"
                out["set: label codec"] = str(facts.get("codec"))
            out["set: images x classes"] = f"{facts.get('images')} x {facts.get('num_classes')}"
            out["set: input space"] = _space(facts.get("input_space"))
            out["test split: input space"] = _space(facts.get("test_space"))
            out["plan key"] = str(plan.get("key"))
        return out

    def set_reading(self) -> Any:
        """How this run read its set (ladd.sets.inputs.SetReading): the recorded fields (unknown
        ones dropped), the defaults for runs recorded before readings were kept."""
        from dataclasses import fields as dc_fields

        from ladd.sets.inputs import SetReading

        known = {f.name for f in dc_fields(SetReading)}
        return SetReading(**{k: v for k, v in (self.reading or {}).items() if k in known})

    @property
    def mode(self) -> str | None:
        return self.train.mode if self.train is not None else None

    @property
    def mode_description(self) -> str | None:
        return MODES[self.mode].description if self.mode in MODES else None

    @property
    def title(self) -> str:
        """`#12 ladd (convnet_d3, 300 ep) - my label`"""
        parts = [f"#{self.id}", self.kind if self.train is None else self.train.mode]
        if self.train is not None:
            parts.append(f"({self.train.arch}, {self.train.epochs} ep)")
        if self.label:
            parts.append(f"- {self.label}")
        return " ".join(parts)


def summarise(record: Any) -> RunSummary:
    """The typed summary of a ladd.store.RunRecord."""
    cfg, met = record.config or {}, record.metrics or {}
    train = None
    if isinstance(cfg.get("train"), dict):
        try:
            train = TrainConfig.from_dict(cfg["train"])
        except (TypeError, ValueError):
            train = None
    acc = met.get("accuracy_mean", met.get("average"))
    models = sorted(
        (k, v) for k, v in (record.artifacts or {}).items() if k.startswith("model_seed")
    )
    checkpoints = []
    for row in met.get("checkpoints") or []:
        if isinstance(row, dict):
            checkpoints.append(
                CheckpointInfo(
                    int(row.get("epoch", 0)),
                    float(row.get("test_accuracy", 0.0)),
                    str(row.get("path", "")),
                    float(row.get("train_flops", 0.0)),
                    float(row.get("seconds", 0.0)),
                )
            )
    return RunSummary(
        id=int(record.id),
        kind=str(record.kind),
        status=str(record.status),
        created=float(record.created),
        error=record.error,
        label=cfg.get("label"),
        set_path=cfg.get("set"),
        source=cfg.get("source"),
        train=train,
        accuracy_mean=float(acc) if isinstance(acc, (int, float)) else None,
        accuracy_std=met.get("accuracy_std"),
        per_seed=tuple(met.get("per_seed") or ()),
        per_class_mean=tuple(met.get("per_class_mean") or ()),
        seconds=met.get("seconds"),
        lr=met.get("lr"),
        model_files=tuple(v for _, v in sorted(models, key=lambda kv: _seed_of(kv[0]))),
        checkpoints=tuple(checkpoints),
        demo=cfg.get("demo"),
        reading=cfg.get("reading") if isinstance(cfg.get("reading"), dict) else None,
        recorded=cfg.get("train") if isinstance(cfg.get("train"), dict) else None,
        plan=cfg.get("plan") if isinstance(cfg.get("plan"), dict) else None,
    )


def _text(v: Any) -> str:
    import json

    return json.dumps(v) if isinstance(v, (dict, list)) else str(v)


def _space(space: Any) -> str:
    """`mean (...), std (...), ZCA (fitted on cifar10)` from a plan's recorded input space."""
    if not isinstance(space, dict) or not space:
        return "not recorded"
    parts = []
    if space.get("mean") is not None:
        parts.append("mean (" + ", ".join(f"{v:.4g}" for v in space["mean"]) + ")")
    if space.get("std") is not None:
        parts.append("std (" + ", ".join(f"{v:.4g}" for v in space["std"]) + ")")
    if space.get("zca"):
        src = space.get("zca_source")
        parts.append(f"ZCA (fitted on {src})" if src else "ZCA")
    return ", then ".join(parts) if parts else "as stored"


def _seed_of(name: str) -> int:
    m = re.search(r"(\d+)$", name)
    return int(m.group(1)) if m else 0


def list_summaries(ws: Any, kind: str | None = None, limit: int | None = None) -> list[RunSummary]:
    """Typed summaries of a workspace's runs, newest first."""
    return [summarise(r) for r in ws.db.list_runs(kind, limit)]
