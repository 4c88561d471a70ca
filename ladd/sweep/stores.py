"""A sweep's soft-label stores: which of its sets is an image folder with a store beside it.

A sweep file pairs a set with its store in a `soft_labels` table (issue 36):

    [soft_labels]
    "sets/sre2l_ipc10" = "stores/sre2l_ipc10"                              # the family's T
    "sets/lpld_ipc10" = { store = "stores/lpld", label_temperature = 4.0 }  # T given

Cells of label mode "store" on a paired set replay its store (ladd.stores, as `ladd train
--soft-labels STORE --mode store`); the set's other cells train on the folder as it is, with the
keys they had without the table. The pairing is checked when the spec is made: a store named
for a set the sweep does not list, or mode "store" on a set without a store, is refused in one
line (ValueError), before anything is read.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ladd.training.modes import STORE_MODE

__all__ = ["STORE_MODE_NAME", "StorePairing", "located", "pairings_table", "store_pairings"]

STORE_MODE_NAME = STORE_MODE.name  # the label mode that replays a store ("store")
_TABLE_KEYS = ("store", "label_temperature", "student_temperature")


@dataclass(frozen=True)
class StorePairing:
    """One set of the sweep with the soft-label store made from its images. `set` is spelt as
    in the sweep's `sets`; the temperatures are None for the store family's own
    (ladd.stores.pairing.FAMILY_TEMPERATURES), as `--label-temperature` and
    `--student-temperature` left out."""

    set: str
    store: str
    label_temperature: float | None = None
    student_temperature: float | None = None

    def entry(self) -> str | dict[str, Any]:
        """The pairing as the sweep file writes it: the store's path alone, or a table when a
        temperature is given (so that to_dict -> from_dict gives the same spec)."""
        if self.label_temperature is None and self.student_temperature is None:
            return self.store
        return {
            k: v
            for k, v in (
                ("store", self.store),
                ("label_temperature", self.label_temperature),
                ("student_temperature", self.student_temperature),
            )
            if v is not None
        }


def _same(a: str, b: str) -> bool:
    """Whether two spellings name the same path (resolved; nothing need exist)."""
    return a == b or Path(a).expanduser().resolve() == Path(b).expanduser().resolve()


def _temperature(value: Any, what: str, set_path: str) -> float | None:
    if value is None:
        return None
    try:
        t = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"soft_labels[{set_path!r}]: {what} {value!r} is not a number") from None
    if not t > 0:
        raise ValueError(f"soft_labels[{set_path!r}]: {what} must be > 0, got {value!r}")
    return t


def _one(set_path: str, entry: Any) -> StorePairing:
    """A pairing from a sweep file's entry: the store's path, or a table with `store` and the
    optional temperatures, or a StorePairing already made."""
    if isinstance(entry, StorePairing):
        return entry
    if isinstance(entry, (str, Path)):
        table: Mapping[str, Any] = {"store": str(entry)}
    elif isinstance(entry, Mapping):
        table = entry
    else:
        raise ValueError(
            f"soft_labels[{set_path!r}]: give the store's path or a table with `store`"
        )
    unknown = sorted(set(table) - set(_TABLE_KEYS))
    if unknown:
        raise ValueError(
            f"soft_labels[{set_path!r}]: unknown key(s) {', '.join(unknown)}; use "
            f"{', '.join(_TABLE_KEYS)}"
        )
    if not table.get("store"):
        raise ValueError(f"soft_labels[{set_path!r}]: no `store` path")
    return StorePairing(
        set_path,
        str(table["store"]),
        _temperature(table.get("label_temperature"), "label_temperature", set_path),
        _temperature(table.get("student_temperature"), "student_temperature", set_path),
    )


def store_pairings(
    given: Any, sets: tuple[str, ...], modes: tuple[str, ...]
) -> tuple[StorePairing, ...]:
    """The sweep's pairings checked against its sets and modes, in the order of `sets`, each
    set spelt as `sets` spells it. `given`: a mapping set -> store (or table), or pairings.
    ValueError (one line): a store for a set the sweep does not list, two stores for one set,
    or mode "store" on a set without a store."""
    if isinstance(given, Mapping):
        items = [(str(k), v) for k, v in given.items()]
    else:
        items = []
        for p in given or ():
            if isinstance(p, StorePairing):
                items.append((p.set, p))
            elif isinstance(p, Mapping) and "set" in p:
                items.append((str(p["set"]), {k: v for k, v in p.items() if k != "set"}))
            else:
                raise ValueError(f"soft_labels: {p!r} is not a set -> store pairing")
    by_set: dict[str, StorePairing] = {}
    for set_path, entry in items:
        listed = [s for s in sets if _same(s, set_path)]
        if not listed:
            raise ValueError(
                f"soft_labels names a store for {set_path!r}, which is not one of the sweep's sets"
            )
        if listed[0] in by_set:
            raise ValueError(f"soft_labels: two stores for the set {listed[0]!r}")
        pairing = _one(set_path, entry)
        by_set[listed[0]] = StorePairing(
            listed[0], pairing.store, pairing.label_temperature, pairing.student_temperature
        )
    if STORE_MODE_NAME in modes:
        bare = [s for s in sets if s not in by_set]
        if bare:
            raise ValueError(
                f"mode 'store' on {bare[0]!r}, a set without a soft-label store: pair it with "
                "its store in soft_labels, or leave the mode out"
            )
    return tuple(by_set[s] for s in sets if s in by_set)


def pairings_table(pairings: tuple[StorePairing, ...]) -> dict[str, str | dict[str, Any]]:
    """The pairings as the sweep file's `soft_labels` table (set -> store, or a table)."""
    return {p.set: p.entry() for p in pairings}


def located(table: Any, at: Callable[[str], str]) -> Any:
    """A sweep file's `soft_labels` table with every path (the sets and the stores) passed
    through `at` (relative paths taken from the file's folder); anything that is not a table
    of paths is left for store_pairings to refuse."""
    if not isinstance(table, Mapping):
        return table
    out: dict[str, Any] = {}
    for set_path, entry in table.items():
        if isinstance(entry, str):
            entry = at(entry)
        elif isinstance(entry, Mapping) and isinstance(entry.get("store"), str):
            entry = {**entry, "store": at(entry["store"])}
        out[at(str(set_path))] = entry
    return out
