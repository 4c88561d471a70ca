"""The workspace: a folder of artifacts plus a SQLite index of runs.

Layout of a workspace (default ./ladd-workspace, env LADD_WORKSPACE, or any folder)::

    cache/        decoded source datasets (ladd.data's cache; env LADD_CACHE_DIR wins)
    labelers/     labeler checkpoints, one folder per training
    sets/         label-augmented set files
    runs/<id>/    config.json, metrics.json, model_seed<k>.safetensors of one run
    runs.sqlite   the runs index (WAL mode: the CLI and the dashboard may write at once)

Every file is written through ladd.files (a unique temporary name, fsync, rename), so a run
killed half-way leaves whole files or none. A run row records the writer's pid and host; a "running" row whose
process is gone is marked failed the next time anyone lists runs.
"""

from __future__ import annotations

import contextlib
import csv
import json
import os
import socket
import sqlite3
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ladd.files import atomic_write, claim_output, json_default, save_tensors, write_json

DEFAULT_WORKSPACE = "ladd-workspace"
RUN_STATUSES = ("running", "done", "failed", "damaged")  # damaged: a row that does not parse
OUTCOME_FILE = "outcome.json"  # a finished run's outcome, until the database records it
STALE_ERROR = "the process running it ended without finishing (killed?)"


# ---------------------------------------------------------------------------------------------
# Model files


def save_model(target: str | Path, model: nn.Module, extra: dict[str, Any] | None = None) -> Path:
    """Save a registered model's weights with its ModelSpec (JSON) in the safetensors metadata."""
    spec = getattr(model, "spec", None)
    meta = {"ladd_kind": "model"}
    if spec is not None:
        meta["spec"] = json.dumps(spec.to_dict())
    if extra:
        meta["extra"] = json.dumps(extra, default=json_default)
    return save_tensors(target, dict(model.state_dict()), meta)


def load_model(path: str | Path, device: str | torch.device = "cpu") -> nn.Module:
    """Rebuild a model saved by `save_model` (eval mode, on `device`)."""
    from safetensors import safe_open

    from ladd.models import create_for_state

    with safe_open(str(path), framework="pt") as f:
        meta = f.metadata() or {}
        if "spec" not in meta:
            raise ValueError(f"{path}: no model spec in its metadata; not a LADD model file")
        state = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118
    try:
        spec = json.loads(meta["spec"])
    except (json.JSONDecodeError, RecursionError) as err:
        raise ValueError(f"{path}: corrupt model spec ({err})") from None
    model = create_for_state(spec, {k: tuple(v.shape) for k, v in state.items()}, str(path))
    model.load_state_dict(state)
    return model.to(device).eval()


# ---------------------------------------------------------------------------------------------
# Processes


def _process_start(pid: int) -> str | None:
    """The kernel's start time of a process (guards against pid reuse), where /proc exists."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # Field 22 (starttime), counted after the ")" that closes the command name.
    fields = text[text.rfind(")") + 2 :].split()
    return fields[19] if len(fields) > 19 else None


def _process_state(pid: int) -> str | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text[text.rfind(")") + 2 :].split()[0]


def pid_alive(pid: int, start: str | None = None) -> bool:
    """True while process `pid` runs (and, when given, started at `start`)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    if _process_state(pid) == "Z":  # killed but not yet reaped: dead all the same
        return False
    if start is not None:
        now = _process_start(pid)
        if now is not None and now != start:
            return False
    return True


# ---------------------------------------------------------------------------------------------
# Runs database


@dataclass
class RunRecord:
    """One row of the runs index."""

    id: int
    kind: str
    status: str
    config: dict[str, Any]
    metrics: dict[str, Any]
    artifacts: dict[str, Any]
    error: str | None
    pid: int | None
    host: str | None
    created: float
    updated: float
    finished: float | None
    damaged: str | None = None  # why the row could not be read whole (status is then "damaged")

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


class RunsDatabaseError(ValueError):
    """The runs database cannot be used (not a database, unreadable); names the file."""


_SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL,
    status TEXT NOT NULL,
    config TEXT NOT NULL DEFAULT '{}',
    metrics TEXT NOT NULL DEFAULT '{}',
    artifacts TEXT NOT NULL DEFAULT '{}',
    error TEXT,
    pid INTEGER,
    pid_start TEXT,
    host TEXT,
    created REAL NOT NULL,
    updated REAL NOT NULL,
    finished REAL
);
CREATE INDEX IF NOT EXISTS runs_status ON runs(status);
"""


class RunsDB:
    """The runs index on stdlib sqlite3: one short-lived connection per call, safe from threads.

    Writes wait for a lock another process holds as long as it takes (each try waits `timeout`
    seconds, then the next one starts): a run that finishes while the database is locked is
    recorded when the lock frees, never dropped; its outcome is also written to
    runs/<id>/outcome.json first, so that even a process killed while it waits leaves it to be
    recorded by the next reader. A file that is not a SQLite database is a RunsDatabaseError
    naming it; a row whose JSON is damaged is listed with status "damaged"; a workspace that
    cannot be written (read-only) is read without writing.
    """

    def __init__(
        self, path: str | Path, runs_dir: str | Path | None = None, *, timeout: float = 30.0
    ) -> None:
        self.path = Path(path)
        self.runs_dir = Path(runs_dir) if runs_dir is not None else self.path.parent / "runs"
        self.timeout = float(timeout)
        self.lock_waits = 0  # write attempts that found the database locked (for tests, logs)
        self._ready = False
        self._read_only = False

    def _writable(self) -> bool:
        if self.path.exists():
            return os.access(self.path, os.W_OK) and os.access(self.path.parent, os.W_OK)
        return not self.path.parent.exists() or os.access(self.path.parent, os.W_OK)

    def _open(self) -> sqlite3.Connection:
        if not self._writable():  # a read-only workspace: read it as it is
            self._read_only = True
            uri = self.path.resolve().as_uri()
            try:
                con = sqlite3.connect(f"{uri}?mode=ro", uri=True, timeout=self.timeout)
                con.execute("SELECT 1 FROM sqlite_master LIMIT 1").fetchall()
                return con
            except sqlite3.OperationalError:  # WAL without its -shm: immutable, no locks
                return sqlite3.connect(f"{uri}?immutable=1", uri=True, timeout=self.timeout)
        if not self._ready:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        con = sqlite3.connect(str(self.path), timeout=self.timeout)
        if not self._ready:
            con.execute("PRAGMA journal_mode=WAL")
            con.executescript(_SCHEMA)
            self._ready = True
        return con

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        try:
            con = self._open()
        except sqlite3.DatabaseError as err:
            if isinstance(err, sqlite3.OperationalError) and _locked(err):
                raise
            raise self._database_error(err) from None
        try:
            with con:  # one transaction per call
                yield con
        except sqlite3.DatabaseError as err:
            if isinstance(err, sqlite3.OperationalError) and _locked(err):
                raise
            raise self._database_error(err) from None
        finally:
            con.close()

    def _database_error(self, err: sqlite3.DatabaseError) -> RunsDatabaseError:
        text = str(err)
        if "not a database" in text or "malformed" in text:
            return RunsDatabaseError(
                f"{self.path}: not a readable SQLite runs database ({text}); move it aside and "
                "LADD starts a new one (the runs/ folders keep each run's files)"
            )
        return RunsDatabaseError(f"{self.path}: the runs database cannot be used ({text})")

    def _write(self, sql: str, args: tuple[Any, ...]) -> sqlite3.Cursor:
        """One write, retried while another process holds the lock (never given up)."""
        warned = False
        while True:
            try:
                with self._connect() as con:
                    return con.execute(sql, args)
            except sqlite3.OperationalError as err:
                if not _locked(err):
                    raise self._database_error(err) from None
                self.lock_waits += 1
                if not warned:
                    warnings.warn(
                        f"{self.path} is locked by another process; waiting to record",
                        stacklevel=3,
                    )
                    warned = True
                time.sleep(min(1.0, 0.05 * self.lock_waits))

    def _taken_folders(self) -> int:
        """The largest id among runs/<id>/ folders on disk (0 when none)."""
        if not self.runs_dir.is_dir():
            return 0
        ids = [int(d.name) for d in self.runs_dir.iterdir() if d.name.isdigit()]
        return max(ids, default=0)

    def start_run(self, kind: str, config: dict[str, Any]) -> int:
        """Insert a "running" row owned by this process; returns its id.

        The id is never one whose runs/<id>/ folder already exists: with the database deleted or
        emptied, a new run must not write into an old run's folder (ids continue after them).
        """
        now = time.time()
        pid = os.getpid()
        while True:
            try:
                with self._connect() as con:
                    floor = self._taken_folders()
                    (top,) = con.execute("SELECT COALESCE(MAX(id), 0) FROM runs").fetchone()
                    cur = con.execute(
                        "INSERT INTO runs (id, kind, status, config, pid, pid_start, host, "
                        "created, updated) VALUES (?, ?, 'running', ?, ?, ?, ?, ?, ?)",
                        (
                            max(int(top), floor) + 1 if floor > int(top) else None,
                            kind,
                            json.dumps(config, default=json_default),
                            pid,
                            _process_start(pid),
                            socket.gethostname(),
                            now,
                            now,
                        ),
                    )
                    run_id = int(cur.lastrowid)
                break
            except sqlite3.OperationalError as err:
                if not _locked(err):
                    raise self._database_error(err) from None
                self.lock_waits += 1
                time.sleep(min(1.0, 0.05 * self.lock_waits))
        folder = self.runs_dir / str(run_id)
        if folder.exists() and any(folder.iterdir()):  # a race with another writer: refuse
            self._set_status(run_id, "failed", f"{folder} already holds another run's files")
            raise FileExistsError(f"{folder} already holds another run's files")
        return run_id

    def update_run(
        self,
        run_id: int,
        *,
        metrics: dict[str, Any] | None = None,
        artifacts: dict[str, Any] | None = None,
    ) -> None:
        """Merge metrics / artifacts into a row (progress written as it happens)."""
        rec = self.get_run(run_id)
        new_metrics = {**rec.metrics, **(metrics or {})}
        new_artifacts = {**rec.artifacts, **(artifacts or {})}
        self._write(
            "UPDATE runs SET metrics = ?, artifacts = ?, updated = ? WHERE id = ?",
            (
                json.dumps(new_metrics, default=json_default),
                json.dumps(new_artifacts, default=json_default),
                time.time(),
                run_id,
            ),
        )

    def finish_run(
        self,
        run_id: int,
        metrics: dict[str, Any] | None = None,
        artifacts: dict[str, Any] | None = None,
    ) -> None:
        """Mark a run done, merging its final metrics and artifact paths.

        The outcome goes to runs/<id>/outcome.json before the database: a database locked
        past its timeout is waited for, and a process killed while it waits leaves the outcome
        for the next reader to record (`mark_stale`)."""
        self._journal(run_id, "done", None, metrics, artifacts)
        self.update_run(run_id, metrics=metrics, artifacts=artifacts)
        self._set_status(run_id, "done", None)
        self._journal_done(run_id)

    def fail_run(self, run_id: int, error: str) -> None:
        """Mark a run failed with a one-line reason."""
        self._journal(run_id, "failed", error, None, None)
        self._set_status(run_id, "failed", error)
        self._journal_done(run_id)

    def _journal(
        self,
        run_id: int,
        status: str,
        error: str | None,
        metrics: dict[str, Any] | None,
        artifacts: dict[str, Any] | None,
    ) -> None:
        folder = self.runs_dir / str(int(run_id))
        if not folder.is_dir() or self._read_only:
            return
        outcome = {"status": status, "error": error, "metrics": metrics or {}}
        outcome["artifacts"] = artifacts or {}
        outcome["finished"] = time.time()
        with contextlib.suppress(OSError):
            write_json(folder / OUTCOME_FILE, outcome)

    def _journal_done(self, run_id: int) -> None:
        with contextlib.suppress(OSError):
            (self.runs_dir / str(int(run_id)) / OUTCOME_FILE).unlink(missing_ok=True)

    def _set_status(self, run_id: int, status: str, error: str | None) -> None:
        now = time.time()
        self._write(
            "UPDATE runs SET status = ?, error = ?, updated = ?, finished = ? WHERE id = ?",
            (status, error, now, now, run_id),
        )

    def _outcome(self, run_id: int) -> dict[str, Any] | None:
        path = self.runs_dir / str(int(run_id)) / OUTCOME_FILE
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        return data if isinstance(data, dict) and data.get("status") in ("done", "failed") else None

    def _stale(self) -> list[tuple[int, dict[str, Any] | None]]:
        """ "running" rows of this host whose process is gone, with the outcome each left."""
        host = socket.gethostname()
        with self._connect() as con:
            rows = con.execute(
                "SELECT id, pid, pid_start FROM runs WHERE status = 'running' AND host = ?",
                (host,),
            ).fetchall()
        dead = [rid for rid, pid, start in rows if not pid_alive(int(pid or 0), start)]
        return [(rid, self._outcome(rid)) for rid in dead]

    def mark_stale(self) -> list[int]:
        """Record every "running" row of this host whose process is gone: the outcome it left
        (runs/<id>/outcome.json, written before a locked database was waited for) when there
        is one, else failed. Returns their ids; in a read-only workspace nothing is written
        (list_runs shows them as they would be recorded)."""
        stale = self._stale()
        if self._read_only or not self._writable():
            return [rid for rid, _ in stale]
        for rid, outcome in stale:
            if outcome is None:
                self.fail_run(rid, STALE_ERROR)
            elif outcome["status"] == "done":
                self.finish_run(rid, outcome.get("metrics"), outcome.get("artifacts"))
            else:
                self.fail_run(rid, str(outcome.get("error") or STALE_ERROR))
        return [rid for rid, _ in stale]

    def list_runs(self, kind: str | None = None, limit: int | None = None) -> list[RunRecord]:
        """Runs, newest first (stale "running" rows are recorded first; a damaged row comes
        back with status "damaged" and what is wrong in `damaged` and `error`)."""
        stale: dict[int, dict[str, Any] | None] = {}
        if self._read_only or not self._writable():
            stale = dict(self._stale())
        else:
            self.mark_stale()
        sql = "SELECT * FROM runs"
        args: list[Any] = []
        if kind is not None:
            sql += " WHERE kind = ?"
            args.append(kind)
        sql += " ORDER BY id DESC"
        if limit is not None:
            sql += " LIMIT ?"
            args.append(int(limit))
        with self._connect() as con:
            con.row_factory = sqlite3.Row
            records = [self._record(row) for row in con.execute(sql, args).fetchall()]
        for rec in records:  # read-only: shown as mark_stale would record them
            if rec.id in stale and rec.status == "running":
                outcome = stale[rec.id] or {"status": "failed", "error": STALE_ERROR}
                rec.status, rec.error = str(outcome["status"]), outcome.get("error")
                rec.metrics = {**rec.metrics, **(outcome.get("metrics") or {})}
        return records

    def get_run(self, run_id: int) -> RunRecord:
        """One run by id; KeyError when there is none."""
        with self._connect() as con:
            con.row_factory = sqlite3.Row
            row = con.execute("SELECT * FROM runs WHERE id = ?", (int(run_id),)).fetchone()
        if row is None:
            raise KeyError(f"no run with id {run_id}")
        return self._record(row)

    def _record(self, row: sqlite3.Row) -> RunRecord:
        return _record(row, self.path)

    def export_csv(self, path: str | Path, kind: str | None = None, *, force: bool = False) -> Path:
        """All runs as CSV (metrics flattened one level: accuracy_mean, accuracy_std, ...).

        Never over the database or another of the workspace's own files (ladd.files.
        check_not_workspace_file); over another existing file only with `force`.
        """
        with claim_output(path, force=force, workspace=self.path.parent):
            return self._export_csv(path, kind)

    def _export_csv(self, path: str | Path, kind: str | None) -> Path:
        runs = self.list_runs(kind)
        metric_keys: list[str] = []
        for r in runs:
            for k, v in r.metrics.items():
                if not isinstance(v, (dict, list)) and k not in metric_keys:
                    metric_keys.append(k)
        header = ["id", "kind", "status", "created", "finished", "error", "config", *metric_keys]

        def write(tmp: str) -> None:
            with open(tmp, "w", newline="", encoding="utf-8") as fh:
                w = csv.writer(fh)
                w.writerow(header)
                for r in runs:
                    w.writerow(
                        [r.id, r.kind, r.status, r.created, r.finished, r.error or ""]
                        + [json.dumps(r.config, sort_keys=True)]
                        + [r.metrics.get(k, "") for k in metric_keys]
                    )

        return atomic_write(path, write)

    def run_dir(self, run_id: int) -> Path:
        """runs/<id>/ (created)."""
        d = self.runs_dir / str(int(run_id))
        d.mkdir(parents=True, exist_ok=True)
        return d

    @contextmanager
    def run(self, kind: str, config: dict[str, Any]) -> Iterator[RunHandle]:
        """`with db.run("train", cfg) as run:` -- done on exit, failed on any exception.

        KeyboardInterrupt and SystemExit mark the run failed too, then propagate.
        """
        run_id = self.start_run(kind, config)
        try:  # from here on any failure (config.json unwritable too) marks the row failed
            handle = RunHandle(self, run_id, self.run_dir(run_id))
            handle.write_json("config.json", {"kind": kind, "config": config})
            yield handle
        except BaseException as err:
            msg = f"{type(err).__name__}: {err}".strip().rstrip(":")
            self.fail_run(run_id, msg.splitlines()[0] if msg else type(err).__name__)
            raise
        else:
            self.finish_run(run_id, handle.metrics, handle.artifacts)


def _locked(err: sqlite3.OperationalError) -> bool:
    text = str(err).lower()
    return "locked" in text or "busy" in text


def _record(row: sqlite3.Row, db: Path | str = "runs.sqlite") -> RunRecord:
    """A row as a RunRecord; a field that does not parse (invalid JSON, a wrong type) makes it
    a "damaged" record that says which run and field, and keeps what did parse."""
    problems: list[str] = []

    def parsed(name: str) -> dict[str, Any]:
        try:
            value = json.loads(row[name] or "{}")
        except (TypeError, ValueError, RecursionError) as err:
            problems.append(f"its {name} is not valid JSON ({str(err)[:80]})")
            return {}
        if not isinstance(value, dict):
            problems.append(f"its {name} is not a JSON object")
            return {}
        return value

    def number(name: str, default: float | None) -> float | None:
        try:
            return float(row[name]) if row[name] is not None else default
        except (TypeError, ValueError):
            problems.append(f"its {name} is not a number")
            return default

    config, metrics, artifacts = parsed("config"), parsed("metrics"), parsed("artifacts")
    created = number("created", 0.0) or 0.0
    updated = number("updated", created) or created
    finished = number("finished", None)
    try:
        rid = int(row["id"])
    except (TypeError, ValueError):
        rid, problems = -1, [*problems, "its id is not a number"]
    damaged = None
    if problems:
        damaged = f"{db}: run {rid} is damaged: {'; '.join(problems)}"
    return RunRecord(
        id=rid,
        kind=str(row["kind"]),
        status="damaged" if damaged else str(row["status"]),
        config=config,
        metrics=metrics,
        artifacts=artifacts,
        error=damaged or row["error"],
        pid=row["pid"],
        host=row["host"],
        created=created,
        updated=updated,
        finished=finished,
        damaged=damaged,
    )


@dataclass
class RunHandle:
    """A running run: its id, its folder, and helpers that write there atomically."""

    db: RunsDB
    id: int
    dir: Path
    metrics: dict[str, Any] = field(default_factory=dict)
    artifacts: dict[str, Any] = field(default_factory=dict)

    def write_json(self, name: str, obj: Any) -> Path:
        return write_json(self.dir / name, obj)

    def log_metrics(self, **metrics: Any) -> None:
        """Record metrics now (in the row and metrics.json), not only at the end."""
        self.metrics.update(metrics)
        self.write_json("metrics.json", self.metrics)
        self.db.update_run(self.id, metrics=metrics)

    def add_artifact(self, name: str, path: str | Path) -> None:
        self.artifacts[name] = str(path)
        self.db.update_run(self.id, artifacts={name: str(path)})

    def save_model(self, model: nn.Module, name: str, extra: dict[str, Any] | None = None) -> Path:
        """Write runs/<id>/<name>.safetensors now and index it."""
        path = save_model(self.dir / f"{name}.safetensors", model, extra)
        self.add_artifact(name, path)
        return path


class Workspace:
    """A folder of LADD artifacts; subfolders are created when first asked for."""

    def __init__(self, root: str | Path | None = None) -> None:
        if root is None:
            root = os.environ.get("LADD_WORKSPACE") or DEFAULT_WORKSPACE
        self.root = Path(root).expanduser()
        self._db: RunsDB | None = None

    def _sub(self, name: str) -> Path:
        d = self.root / name
        d.mkdir(parents=True, exist_ok=True)
        return d

    @property
    def cache_dir(self) -> Path:
        """Decoded-data cache: env LADD_CACHE_DIR when set (shared between workspaces)."""
        env = os.environ.get("LADD_CACHE_DIR")
        if env:
            Path(env).mkdir(parents=True, exist_ok=True)
            return Path(env)
        return self._sub("cache")

    @property
    def labelers_dir(self) -> Path:
        return self._sub("labelers")

    @property
    def sets_dir(self) -> Path:
        return self._sub("sets")

    @property
    def runs_dir(self) -> Path:
        return self._sub("runs")

    @property
    def db(self) -> RunsDB:
        if self._db is None:
            self._db = RunsDB(self.root / "runs.sqlite", self.root / "runs")
        return self._db

    def __repr__(self) -> str:
        return f"Workspace({str(self.root)!r})"
