"""The default schedule: every pass the same (the set's labels, the loss's own temperature)."""

from __future__ import annotations

from ladd.strategies.base import Schedule
from ladd.strategies.schedules import SCHEDULES


@SCHEDULES.register
class Constant(Schedule):
    name = "constant"
