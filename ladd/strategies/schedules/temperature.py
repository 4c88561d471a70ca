"""LPQLD's temperature schedule and calibrated student temperature
(he-y/soft-label-pruning-quantization-for-dataset-distillation,
relabel_and_validate/train_FKD_LPQLD.py).

Step schedule ("Dynamic Knowledge Reuse"): the teacher temperature of epoch e is
T0 * gamma ** (e // step), never below 2; its reproduce script
(scripts/reproduce/lpqld_in1k.sh) runs T0 = 20, step 30, gamma 0.7 over 300 epochs. Here the
step is the same fraction of the run: max(1, round(passes * 30 / 300)).

Calibrated alignment (spec "temperature:calibrated", the script's temp_stu 1.0, which it passes
as --temp_stu_dynamic): the student's temperature starts at 1.0; after every epoch it becomes
the t in linspace(0.01, 1, 100) that minimises the KL of the epoch's last batch
(log_softmax(z / t) against the teacher at this epoch's T). Without it the student's
temperature is the teacher's.
"""

from __future__ import annotations

from ladd.strategies.base import Schedule, _positive
from ladd.strategies.schedules import SCHEDULES

LPQLD_T0, LPQLD_STEP_OF_300, LPQLD_GAMMA, LPQLD_FLOOR = 20.0, 30, 0.7, 2.0
CALIBRATION_GRID = (0.01, 1.0, 100)  # np.linspace(0.01, 1, 100)
CALIBRATION_START = 1.0


@SCHEDULES.register
class StepTemperature(Schedule):
    """Spec "temperature" (T0 20, gamma 0.7, a step every tenth of the run, floor 2), with
    "calibrated" for the fitted student temperature: "temperature:calibrated"."""

    name = "temperature"
    positional = ("mode",)

    def __init__(
        self,
        mode: str = "",
        t0: float = LPQLD_T0,
        gamma: float = LPQLD_GAMMA,
        floor: float = LPQLD_FLOOR,
    ) -> None:
        if mode not in ("", "calibrated"):
            raise ValueError(f"temperature schedule: unknown option {mode!r} (use calibrated)")
        self.calibrated = mode == "calibrated"
        self.t0 = _positive("t0", t0)
        self.gamma = _positive("gamma", gamma)
        self.floor = _positive("floor", floor)

    @property
    def params(self):
        out: dict = {}
        if self.calibrated:
            out["mode"] = "calibrated"
        for k, v, d in (
            ("t0", self.t0, LPQLD_T0),
            ("gamma", self.gamma, LPQLD_GAMMA),
            ("floor", self.floor, LPQLD_FLOOR),
        ):
            if v != d:
                out[k] = v
        return out

    @property
    def spec(self) -> str:
        rest = {k: v for k, v in self.params.items() if k != "mode"}
        opts = (["calibrated"] if self.calibrated else []) + [f"{k}={v:g}" for k, v in rest.items()]
        return f"{self.name}:{','.join(opts)}" if opts else self.name

    @property
    def sets_temperature(self) -> bool:
        return True

    @staticmethod
    def step_size(passes: int) -> int:
        return max(1, round(passes * LPQLD_STEP_OF_300 / 300))

    def temperature(self, p: int, passes: int) -> float:
        t = self.t0 * self.gamma ** (p // self.step_size(passes))
        return t if t > self.floor else self.floor
