"""RunStore: runs and their metrics by step in SQLite (WAL), shared by threads and processes."""
from __future__ import annotations

import json
import math
import sqlite3
import time
import uuid
from array import array
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

STATES = ("queued", "running", "stopping", "stopped", "completed", "failed", "interrupted")
ACTIVE = ("queued", "running", "stopping")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    status TEXT NOT NULL,
    config TEXT NOT NULL,
    created REAL NOT NULL,
    started REAL,
    finished REAL,
    message TEXT,
    final_metrics TEXT,
    checkpoint TEXT,
    model_dir TEXT,
    total_steps INTEGER,
    device TEXT,
    runner TEXT,
    owner TEXT,
    plan TEXT,
    train_seconds REAL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS metrics (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    step INTEGER NOT NULL,
    kind TEXT NOT NULL,
    time REAL NOT NULL,
    "values" TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS metrics_run ON metrics(run_id, seq);
"""


@dataclass
class RunRecord:
    """One row of the runs table, decoded."""

    id: str
    name: str
    status: str
    config: dict
    created: float
    started: float | None = None
    finished: float | None = None
    message: str | None = None
    final_metrics: dict = field(default_factory=dict)
    checkpoint: str | None = None
    model_dir: str | None = None
    total_steps: int | None = None
    device: str | None = None
    runner: str | None = None
    owner: str | None = None
    plan: dict = field(default_factory=dict)
    train_seconds: float = 0.0  # training time of the segments before the current one (across resumes)

    def elapsed(self, now: float | None = None) -> float:
        """Total training time across resumes: earlier segments plus the current one."""
        if self.status in ACTIVE and self.started and self.status != "queued":
            return (self.train_seconds or 0.0) + max(0.0, (now or time.time()) - self.started)
        return self.train_seconds or 0.0


@dataclass
class Snapshot:
    """Every run as of one read of the store: the one source for every status a screen shows."""

    runs: list[RunRecord]
    taken: float

    @property
    def counts(self) -> dict[str, int]:
        """State -> number of runs in it, for every state that has a run (in STATES order)."""
        out = {s: 0 for s in STATES}
        for r in self.runs:
            out[r.status] = out.get(r.status, 0) + 1
        return {s: n for s, n in out.items() if n}

    def summary(self) -> str:
        """'3 completed · 1 running', or 'no runs yet'."""
        return " · ".join(f"{n} {s}" for s, n in self.counts.items()) or "no runs yet"

    def get(self, run_id: str) -> RunRecord | None:
        return next((r for r in self.runs if r.id == run_id), None)

    @property
    def active(self) -> bool:
        return any(r.status in ACTIVE for r in self.runs)


def _clean(values: dict) -> dict:
    """JSON has no NaN: keep non-finite floats as strings so they survive and show."""
    out = {}
    for k, v in values.items():
        if isinstance(v, float) and not math.isfinite(v):
            out[k] = str(v)
        else:
            out[k] = v
    return out


class RunStore:
    """SQLite file of runs and metrics; every call opens its own connection (thread-safe)."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._db() as db:
            db.execute("PRAGMA journal_mode=WAL")
            db.executescript(_SCHEMA)
            cols = {r["name"] for r in db.execute("PRAGMA table_info(runs)")}
            if "train_seconds" not in cols:  # a store written before training time was kept
                db.execute("ALTER TABLE runs ADD COLUMN train_seconds REAL DEFAULT 0")

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, timeout=30)
        db.row_factory = sqlite3.Row
        db.execute("PRAGMA foreign_keys=ON")
        db.execute("PRAGMA synchronous=NORMAL")  # WAL + NORMAL: durable across app crashes
        return db

    @contextmanager
    def _db(self) -> Iterator[sqlite3.Connection]:
        db = self._connect()
        try:
            with db:
                yield db
        finally:
            db.close()

    # --- runs ---
    def create(self, name: str, config: dict, runner: str = "thread", status: str = "queued") -> str:
        run_id = time.strftime("%Y%m%d-%H%M%S") + "-" + uuid.uuid4().hex[:6]
        with self._db() as db:
            db.execute("INSERT INTO runs (id, name, status, config, created, runner) VALUES (?,?,?,?,?,?)",
                       (run_id, name, status, json.dumps(config), time.time(), runner))
        return run_id

    def update(self, run_id: str, **values) -> None:
        """Set columns of a run; dict values are stored as JSON."""
        if not values:
            return
        for k in ("final_metrics", "plan", "config"):
            if k in values and not isinstance(values[k], str):
                values[k] = json.dumps(_clean(values[k]))
        cols = ", ".join(f"{k}=?" for k in values)
        with self._db() as db:
            db.execute(f"UPDATE runs SET {cols} WHERE id=?", (*values.values(), run_id))  # noqa: S608 (keys are ours)

    def set_status(self, run_id: str, status: str, message: str | None = None, **values) -> None:
        if status not in STATES:
            raise ValueError(f"unknown run status {status!r}")
        if status in ("completed", "failed", "stopped", "interrupted"):
            values.setdefault("finished", time.time())
            values.setdefault("train_seconds", self._segment_total(run_id, status, values["finished"]))
        self.update(run_id, status=status, message=message, **values)

    def _segment_total(self, run_id: str, status: str, end: float) -> float:
        """Training time before this segment plus the segment that ends now (elapsed across resumes)."""
        with self._db() as db:
            row = db.execute("SELECT status, started, train_seconds FROM runs WHERE id=?", (run_id,)).fetchone()
            if row is None:
                return 0.0
            total = row["train_seconds"] or 0.0
            if row["status"] not in ("running", "stopping") or not row["started"]:
                return total
            if status == "interrupted":  # the server died: the segment ended at its last logged step
                last = db.execute("SELECT MAX(time) FROM metrics WHERE run_id=?", (run_id,)).fetchone()[0]
                end = last if last and last >= row["started"] else row["started"]
            return total + max(0.0, end - row["started"])

    def get(self, run_id: str) -> RunRecord:
        with self._db() as db:
            row = db.execute("SELECT * FROM runs WHERE id=?", (run_id,)).fetchone()
        if row is None:
            raise KeyError(f"no run {run_id!r}")
        return self._record(row)

    def runs(self) -> list[RunRecord]:
        """Every run, newest first."""
        with self._db() as db:
            rows = db.execute("SELECT * FROM runs ORDER BY created DESC").fetchall()
        return [self._record(r) for r in rows]

    def snapshot(self) -> Snapshot:
        """Every run from one read, with the time it was taken."""
        return Snapshot(self.runs(), time.time())

    def delete(self, run_id: str) -> None:
        with self._db() as db:
            db.execute("DELETE FROM metrics WHERE run_id=?", (run_id,))
            db.execute("DELETE FROM runs WHERE id=?", (run_id,))

    @staticmethod
    def _record(row: sqlite3.Row) -> RunRecord:
        d = dict(row)
        d["config"] = json.loads(d["config"])
        d["final_metrics"] = json.loads(d["final_metrics"]) if d["final_metrics"] else {}
        d["plan"] = json.loads(d["plan"]) if d["plan"] else {}
        d["train_seconds"] = d.get("train_seconds") or 0.0
        return RunRecord(**d)

    # --- metrics ---
    def log(self, run_id: str, values: dict, step: int, kind: str = "train") -> int:
        """Append one logged step (accelerate's tracker shape: values at a step); returns its seq."""
        with self._db() as db:
            return _insert_metrics(db, run_id, values, step, kind)

    def writer(self) -> MetricsWriter:
        """A writer of one run's per-step rows over one kept connection (see MetricsWriter)."""
        return MetricsWriter(self)

    def metrics(self, run_id: str, kind: str | None = None, after_seq: int = 0) -> list[dict]:
        """Logged rows in order: {seq, step, kind, time, **values}; `after_seq` for incremental polls."""
        q = 'SELECT seq, step, kind, time, "values" FROM metrics WHERE run_id=? AND seq>?'
        args: list = [run_id, after_seq]
        if kind:
            q += " AND kind=?"
            args.append(kind)
        with self._db() as db:
            rows = db.execute(q + " ORDER BY seq", args).fetchall()
        out = []
        for r in rows:
            d = {"seq": r["seq"], "step": r["step"], "kind": r["kind"], "time": r["time"]}
            for k, v in json.loads(r["values"]).items():
                d[k] = float(v) if v in ("nan", "inf", "-inf") else v
            out.append(d)
        return out

    def truncate_metrics(self, run_id: str, after_step: int) -> None:
        """Forget steps past a checkpoint, so a resumed run continues one clean curve."""
        with self._db() as db:
            db.execute("DELETE FROM metrics WHERE run_id=? AND step>?", (run_id, after_step))


def _insert_metrics(db: sqlite3.Connection, run_id: str, values: dict, step: int, kind: str) -> int:
    cur = db.execute('INSERT INTO metrics (run_id, step, kind, time, "values") VALUES (?,?,?,?,?)',
                     (run_id, int(step), kind, time.time(), json.dumps(_clean(values))))
    return cur.lastrowid


class MetricsWriter:
    """`RunStore.log` over one connection kept for a run's training (its thread only). A fresh connection per
    row (connect, two pragmas, insert, commit, close) cost 2 ms on this CPU against 0.05 ms on a kept one: for a
    small network's 10 ms step that was a fifth of the run (bench/RESULTS.md #16, engine overhead). Each row is
    still committed on its own, so a page polling the store sees every step at once."""

    def __init__(self, store: RunStore):
        self._store, self._db = store, None

    def log(self, run_id: str, values: dict, step: int, kind: str = "train") -> int:
        if self._db is None:
            self._db = self._store._connect()
        with self._db:  # one transaction: committed on leaving, rolled back on an error
            return _insert_metrics(self._db, run_id, values, step, kind)

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None


class MetricsFollower:
    """One run's logged rows, read incrementally: each refresh decodes only what was logged since.

    A live page keeps one per session and run, so a refresh costs the new rows, not the whole run.
    """

    def __init__(self, store: RunStore, run_id: str):
        self.store, self.run_id = store, run_id
        self.seq = 0
        self.rows: dict[str, list[dict]] = {"train": [], "eval": [], "resume": [], "summary": []}
        self._series: dict[tuple[str, str], tuple[array, array, int]] = {}  # (kind, key) -> x, y, rows seen

    def series(self, kind: str, key: str) -> tuple[array, array]:
        """Steps and values of one numeric metric, kept up to date incrementally (no pass over old rows).

        Typed arrays (`array.array`): numpy reads them without a copy (`np.frombuffer`).
        """
        rows = self.rows.get(kind, [])
        xs, ys, seen = self._series.get((kind, key), (array("q"), array("d"), 0))
        if seen > len(rows):  # rows were dropped (a resume): rebuild once
            xs, ys, seen = array("q"), array("d"), 0
        for r in rows[seen:]:
            v = r.get(key)
            if isinstance(v, (int, float)) and not isinstance(v, bool):
                xs.append(r["step"])
                ys.append(float(v))
        self._series[(kind, key)] = (xs, ys, len(rows))
        return xs, ys

    def refresh(self) -> int:
        """Read rows logged since the last refresh; returns how many arrived."""
        new = self.store.metrics(self.run_id, after_seq=self.seq)
        for r in new:
            if r["kind"] == "resume":  # the store forgot the steps past the checkpoint: so does the cache
                for kind, rows in self.rows.items():
                    self.rows[kind] = [x for x in rows if x["step"] <= r["step"]]
                self._series.clear()
            self.rows.setdefault(r["kind"], []).append(r)
            self.seq = r["seq"]
        return len(new)

