"""ladd.strategies.schedules: HALD's phases and LPQLD's temperatures against the upstream
constants (repository @ commit, file:line) and values worked out by hand."""

from __future__ import annotations

import pytest
import torch

from ladd.strategies import SCHEDULES, StrategyError, smooth_one_hot
from ladd.strategies.schedules.hald import HALD_SMOOTHING, hald_phases
from ladd.strategies.schedules.temperature import (
    CALIBRATION_GRID,
    CALIBRATION_START,
    LPQLD_FLOOR,
    LPQLD_GAMMA,
    LPQLD_STEP_OF_300,
    LPQLD_T0,
)


def _phases(name: str, passes: int) -> list[str]:
    s = SCHEDULES.parse(name)
    return [s.phase(p, passes) for p in range(passes)]


def test_hald_default_setting_s6_at_halds_300_epochs():
    """Jiacheng8/HALD @ ffbca04: validate/scripts/imagenet1k/train.sh:25-26 trains
    soft_epochs=150, hard_epochs=300-150; validate/train_fkd.py:155-157 (setting S6, the
    --setting default) orders them [soft//2, hard, soft - soft//2] as soft, hard, soft."""
    got = _phases("hald", 300)
    assert got == ["soft"] * 75 + ["hard"] * 150 + ["soft"] * 75
    assert hald_phases(300, "soft_hard_soft") == [("soft", 75), ("hard", 150), ("soft", 75)]


def test_soft_hard_is_setting_s8():
    """validate/train_fkd.py:161-163 (S8): [soft_epochs, hard_epochs] as soft, hard."""
    assert _phases("soft_hard", 300) == ["soft"] * 150 + ["hard"] * 150
    # the study's 61 passes (MTT's E + 1 at E = 60): 30 soft, 31 hard
    assert _phases("soft_hard", 61) == ["soft"] * 30 + ["hard"] * 31
    assert hald_phases(61, "soft_hard_soft") == [("soft", 15), ("hard", 31), ("soft", 15)]


def test_hald_hard_labels_are_smoothed_by_timms_rule_at_0_8():
    """validate/train_fkd.py:133 --label-smoothing default 0.8, given to timm's Mixup
    (line 452): off-class smoothing / K, on-class 1 - smoothing + smoothing / K."""
    assert HALD_SMOOTHING == 0.8 and SCHEDULES.parse("hald").hard_smoothing == 0.8
    row = smooth_one_hot(torch.tensor([2]), 10, 0.8)[0]
    assert row.tolist() == pytest.approx([0.08, 0.08, 0.28] + [0.08] * 7)
    assert float(row.sum()) == pytest.approx(1.0)


def test_lpqld_step_temperatures_at_its_300_epochs():
    """he-y/soft-label-pruning-quantization-for-dataset-distillation @ 107c7a5:
    relabel_and_validate/train_FKD_LPQLD.py:516-518, T0 * gamma ** (e // step) floored at 2;
    scripts/reproduce/lpqld_in1k.sh:86 passes T 20, "step", step 30, gamma 0.7; the config
    (cfg/reproduce/LPQLD_in1k_[4k].yaml:5) trains 300 epochs."""
    assert (LPQLD_T0, LPQLD_STEP_OF_300, LPQLD_GAMMA, LPQLD_FLOOR) == (20.0, 30, 0.7, 2.0)
    s = SCHEDULES.parse("temperature")
    want = {0: 20.0, 29: 20.0, 30: 14.0, 60: 9.8, 90: 6.86, 120: 4.802, 150: 3.3614}
    for e, t in want.items():
        assert s.temperature(e, 300) == pytest.approx(t, rel=1e-9)
    assert s.temperature(180, 300) == pytest.approx(20 * 0.7**6)  # 2.353
    assert s.temperature(210, 300) == 2.0  # 20 * 0.7^7 = 1.65: the floor
    # a 61-pass run steps every round(6.1) = 6 passes
    assert s.step_size(61) == 6 and s.temperature(6, 61) == pytest.approx(14.0)


def test_lpqld_calibration_grid_and_start():
    """train_FKD_LPQLD.py:816 np.linspace(0.01, 1, 100), argmin of the KL (line 824); the
    reproduce script's temp_stu "1.0" is passed as --temp_stu_dynamic (lpqld_in1k.sh), the
    first epoch's student temperature."""
    assert CALIBRATION_GRID == (0.01, 1.0, 100) and CALIBRATION_START == 1.0
    assert SCHEDULES.parse("temperature:calibrated").calibrated
    assert not SCHEDULES.parse("temperature").calibrated


@pytest.mark.parametrize("name", SCHEDULES.names())
def test_every_schedule_spec_rebuilds_it(name):
    s = SCHEDULES.parse(name)
    assert SCHEDULES.parse(s.spec) == s


def test_temperature_schedule_options_round_trip():
    s = SCHEDULES.parse("temperature:calibrated,t0=10,gamma=0.5")
    assert s.spec == "temperature:calibrated,t0=10,gamma=0.5"
    assert SCHEDULES.parse(s.spec).temperature(6, 61) == 5.0


@pytest.mark.parametrize("spec", ["temperature:sideways", "hald:smoothing=2", "nope"])
def test_bad_schedules_are_one_line_errors(spec):
    with pytest.raises(StrategyError):
        SCHEDULES.parse(spec)
