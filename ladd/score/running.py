"""Running a planned score: the trainings not recorded yet (serial or Ray), recorded, then scored."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import date
from typing import Any

from ladd.progress import ProgressFn
from ladd.score.metrics import VARIANTS, _mean_std, dd_ranking_scores
from ladd.score.planning import ScoreCell, ScorePlan, ScoreSpec

# ---------------------------------------------------------------------------------------------
# Running and scoring


@dataclass
class ScoreResult:
    """Accuracies per subject/variant, their label bytes, DD-Ranking's scores (module doc)."""

    spec: ScoreSpec
    rows: dict[str, dict[str, Any]]  # "set/hard" -> per_seed, mean, std, label_bytes, runs
    scores: dict[str, dict[str, Any]]
    full: dict[str, Any]
    shipped: str
    protocol: str
    seconds: float
    trained: int
    reused: int
    notes: list[str] = field(default_factory=list)
    run_id: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "spec": self.spec.to_dict(),
            "rows": self.rows,
            "scores": self.scores,
            "full": self.full,
            "shipped": self.shipped,
            "protocol": self.protocol,
            "seconds": self.seconds,
            "trained": self.trained,
            "reused": self.reused,
            "notes": self.notes,
            "run_id": self.run_id,
            "units": "accuracies in [0, 1]; hlr/ior in percentage points; lrs/ars as DD-Ranking's "
            "code (percentage points in the exponent); *_fraction with fractions",
        }

    def lines(self) -> list[str]:
        out = [f"{'labels':<46} {'set':>16} {'random real':>16} {'label bytes':>12} {'pts/KiB':>9}"]
        for variant, what in VARIANTS.items():
            s, r = self.rows.get(f"set/{variant}"), self.rows.get(f"random/{variant}")
            if s is None:
                continue
            name = what if variant != "shipped" else f"shipped: {self.shipped}"
            cell = f"{100 * s['mean']:.1f} ± {100 * s['std']:.1f}"
            rnd = f"{100 * r['mean']:.1f} ± {100 * r['std']:.1f}" if r else "—"
            per = s.get("points_per_kib")
            out.append(
                f"{name[:46]:<46} {cell:>16} {rnd:>16} {s['label_bytes']:>12,} {per:>9.3g}"
                if per is not None
                else f"{name[:46]:<46} {cell:>16} {rnd:>16}"
            )
        if self.full:
            f = self.full
            src = f.get("note") or "trained here"
            out.append(f"full data: {100 * f['mean']:.1f} % ({src})")
        for key, label in (
            ("hlr", "HLR (points)"),
            ("ior", "IOR (points)"),
            ("lrs", "LRS (DD-Ranking: points in exp)"),
            ("lrs_fraction", "LRS (fractions)"),
            ("ars", "ARS (DD-Ranking: points in exp)"),
            ("ars_fraction", "ARS (fractions)"),
            ("ior_ladd", "IOR, LADD's labels (points)"),
            ("lrs_ladd", "soft LRS, LADD (points in exp)"),
            ("lrs_ladd_fraction", "soft LRS, LADD (fractions)"),
        ):
            v = self.scores.get(key)
            if v is not None and v["mean"] is not None:
                out.append(f"{label:<46} {v['mean']:+.4g} ± {v['std']:.3g}")
        for variant, figure in self.spec.paper.items():
            out.append(f"paper, {variant} (their best epoch, not ours): {figure}")
        return out


class _Settings:
    """What the sweep's executors read of their spec (ladd.sweep.executor)."""

    def __init__(self, spec: ScoreSpec, device: str) -> None:
        self.device = device
        self.threads = spec.threads
        self.cpus_per_cell = spec.cpus_per_cell
        self.gpus_per_cell = spec.gpus_per_cell
        self.max_retries = spec.max_retries


def run_score(
    plan: ScorePlan,
    workspace: Any,
    *,
    executor: str = "serial",
    address: str | None = None,
    progress: ProgressFn | None = None,
    stop: Any = None,
    ray_options: dict[str, Any] | None = None,
    on_cell: Callable[[ScoreCell, int, float], None] | None = None,
) -> ScoreResult:
    """Train every cell of `plan` not recorded yet (the sweep's serial or Ray executor; the
    driver records each as it comes back), then score and record the score run."""
    from ladd.pipeline import record_train
    from ladd.sweep.executor import SerialExecutor, compute_cell

    t0 = time.perf_counter()
    spec = plan.spec
    settings = _Settings(spec, spec.device)
    ckpt_dir = workspace.root / "checkpoints"
    if executor == "serial":
        ex: Any = SerialExecutor(
            settings, compute=compute_cell, progress=progress, stop=stop, checkpoint_dir=ckpt_dir
        )
    elif executor == "ray":
        from ladd.sweep.ray_backend import RayExecutor

        ex = RayExecutor(
            settings,
            address=address,
            compute=compute_cell,
            checkpoint_dir=ckpt_dir,
            **(ray_options or {}),
        )
    else:
        raise ValueError(f"unknown executor {executor!r}: use serial or ray")
    recorded = dict(plan.recorded)
    todo = plan.todo
    trained = 0
    if todo:
        ex.start()
        try:
            shared: dict[str, Any] = {}
            test = ex.share(plan.test)
            pending = list(todo)
            in_flight: dict[Any, ScoreCell] = {}
            while pending or in_flight:
                if stop is not None and stop.is_set():
                    raise KeyboardInterrupt("score stopped")
                while pending and len(in_flight) < ex.slots():
                    cell = pending.pop(0)
                    if cell.data not in shared:
                        shared[cell.data] = ex.share(plan.datasets[cell.data])
                    in_flight[ex.submit(cell, shared[cell.data], test)] = cell
                for handle, out in ex.wait(timeout=1.0):
                    cell = in_flight.pop(handle)
                    if isinstance(out, BaseException):
                        raise out
                    run_id = record_train(
                        workspace,
                        cell.plan,
                        replace(out.result, models=out.models()),
                        set_path=spec.set_path,
                        source=getattr(plan.datasets["set"], "source", None),
                        label=f"{spec.name}: {cell.label}",
                        reading=spec.reading,
                        extra={
                            "score": {
                                "name": spec.name,
                                "subject": cell.subject,
                                "variant": cell.variant,
                                "seed": cell.seed,
                                "worker": out.worker,
                                "device": out.device,
                            }
                        },
                        resumed=out.resumed,
                    )
                    recorded[cell.key] = run_id
                    trained += 1
                    if on_cell is not None:
                        on_cell(cell, run_id, out.result.accuracy_mean)
        finally:
            ex.close()
    result = _collect(plan, workspace, recorded, time.perf_counter() - t0, trained)
    with workspace.db.run("score", {"score": spec.to_dict(), "plan": plan.summary()}) as run:
        run.write_json("score.json", result.to_dict())
        run.log_metrics(
            **{f"{k}_mean": v["mean"] for k, v in result.scores.items()},
            rows={k: {"mean": v["mean"], "std": v["std"]} for k, v in result.rows.items()},
            seconds=result.seconds,
            run_id=run.id,
        )
        result.run_id = run.id
    return result


def _collect(
    plan: ScorePlan, workspace: Any, recorded: dict[str, int], seconds: float, trained: int
) -> ScoreResult:
    spec = plan.spec
    acc: dict[str, list[float]] = {}
    runs: dict[str, list[int]] = {}
    for cell in plan.cells:
        run_id = recorded[cell.key]
        metrics = workspace.db.get_run(run_id).metrics
        acc.setdefault(cell.row, []).append(float(metrics["per_seed"][0]))
        runs.setdefault(cell.row, []).append(run_id)
    rows: dict[str, dict[str, Any]] = {}
    for row, values in acc.items():
        d = _mean_std(values)
        d["runs"] = runs[row]
        d["label_bytes"] = plan.label_bytes.get(row)
        if d["label_bytes"] and row.startswith("set/"):
            d["points_per_kib"] = 100 * d["mean"] / (d["label_bytes"] / 1024)
        rows[row] = d
    full: dict[str, Any] = {}
    full_value: float | list[float] | None = None
    if spec.full_accuracy is not None:
        full = {"mean": float(spec.full_accuracy), "std": 0.0, "note": spec.full_note or "stated"}
        full_value = float(spec.full_accuracy)
    elif "full/hard" in acc:
        done = acc["full/hard"]
        full = {
            **_mean_std(done),
            "note": f"the whole train split trained here, {spec.full_epochs} epochs, "
            f"{len(done)} seed(s)",
        }
        # one full-data number for every pair (as DD-Ranking's REAL_DATA_ACC_CACHE), or one a seed
        full_value = done if len(done) == len(spec.seeds) else statistics.fmean(done)
    scores = dd_ranking_scores(acc, full_value)
    return ScoreResult(
        spec=spec,
        rows=rows,
        scores=scores,
        full=full,
        shipped=plan.shipped,
        protocol=plan.protocol,
        seconds=seconds,
        trained=trained,
        reused=len({c.key for c in plan.cells}) - trained,
        notes=list(plan.notes) + [f"recorded {date.today().isoformat()}"],
    )
