"""Schedules, one file each, registered in SCHEDULES (ladd.strategies.base.Schedule)."""

from ladd.strategies.base import Registry, Schedule

SCHEDULES: Registry[Schedule] = Registry("label schedule")

from ladd.strategies.schedules import constant, hald, temperature  # noqa: E402,F401

__all__ = ["SCHEDULES"]
