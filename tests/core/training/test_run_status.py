"""One truth for run status: store snapshots, training time across resumes, progress, incremental reads."""
import math
import time

import pytest

from core.training.curves import downsample, progress
from core.training.runner import restored_state
from core.training.store import MetricsFollower, RunStore


@pytest.fixture
def store(tmp_path):
    return RunStore(tmp_path / "runs.db")


def test_snapshot_counts_every_state_that_exists(store):
    ids = [store.create(f"r{i}", {}) for i in range(5)]
    for rid, status in zip(ids, ["completed", "completed", "running", "failed", "queued"], strict=True):
        store.set_status(rid, status)
    snap = store.snapshot()
    assert snap.counts == {"queued": 1, "running": 1, "completed": 2, "failed": 1}
    assert snap.summary() == "1 queued · 1 running · 2 completed · 1 failed"
    assert snap.active and snap.get(ids[2]).status == "running"
    for rid in ids[2:]:
        store.set_status(rid, "stopped")
    assert store.snapshot().summary() == "3 stopped · 2 completed"  # in STATES order
    assert not store.snapshot().active


def test_empty_store_says_so(store):
    assert store.snapshot().summary() == "no runs yet"


def test_training_time_adds_up_across_segments(store):
    rid = store.create("r", {})
    t0 = time.time()
    store.set_status(rid, "running", started=t0 - 30)
    store.set_status(rid, "stopped", finished=t0)  # 30 s of training
    assert store.get(rid).train_seconds == pytest.approx(30)
    store.set_status(rid, "queued")
    store.set_status(rid, "running", started=t0 + 100)  # the pause between segments never counts
    rec = store.get(rid)
    assert rec.elapsed(now=t0 + 110) == pytest.approx(40)
    store.set_status(rid, "completed", finished=t0 + 120)
    assert store.get(rid).train_seconds == pytest.approx(50)
    # a run stopped before it started adds nothing
    q = store.create("q", {})
    store.set_status(q, "stopped")
    assert store.get(q).train_seconds == 0


def test_interrupted_segment_ends_at_its_last_logged_step(store):
    rid = store.create("r", {})
    store.set_status(rid, "running", started=time.time() - 50)
    store.log(rid, {"loss": 1.0}, 1)
    store.log(rid, {"loss": 0.9}, 2)
    last = store.metrics(rid)[-1]["time"]
    store.set_status(rid, "interrupted", finished=time.time() + 3600)  # found an hour later
    assert store.get(rid).train_seconds == pytest.approx(last - store.get(rid).started, abs=1e-3)


def test_old_store_without_training_time_is_migrated(tmp_path):
    import sqlite3

    db = tmp_path / "old.db"
    RunStore(db)
    con = sqlite3.connect(db)
    con.executescript("ALTER TABLE runs DROP COLUMN train_seconds;")
    con.execute("INSERT INTO runs (id, name, status, config, created) VALUES ('a', 'a', 'completed', '{}', 0)")
    con.commit()
    con.close()
    assert RunStore(db).get("a").train_seconds == 0.0


def test_remaining_time_uses_only_the_current_segment():
    # 10 steps at 1 step/s, a 300 s pause (stop, resume), then 5 steps at 2 steps/s
    rows = [{"step": s, "time": 1000.0 + s} for s in range(1, 11)]
    rows += [{"step": 10 + s, "time": 1310.0 + s / 2} for s in range(1, 6)]
    p = progress(rows, total_steps=35, started=1310.0, before_s=10.0, now=1313.0)
    assert p.step == 15
    assert p.remaining_s == pytest.approx(20 / 2)  # 20 steps left at 2 steps/s, not the pause-skewed rate
    assert p.elapsed_s == pytest.approx(13.0)  # 10 s before the pause + 3 s since the resume
    done = progress(rows, total_steps=15, started=None, finished=1400.0, before_s=42.0)
    assert done.elapsed_s == 42.0 and done.remaining_s == 0.0


def test_downsample_keeps_every_buckets_extremes():
    n = 100_000
    xs = list(range(n))
    ys = [math.sin(i / 500) + (5.0 if i == 77_777 else 0.0) - (5.0 if i == 12_345 else 0.0) for i in xs]
    dx, dy = downsample(xs, ys, 2000)
    assert len(dx) <= 4000 and dx == sorted(dx)
    assert max(dy) == max(ys) and min(dy) == min(ys)  # the spikes survive
    assert 77_777 in dx and 12_345 in dx
    assert all(ys[x] == y for x, y in zip(dx, dy, strict=True))  # real points, never averaged
    small = downsample([1, 2, 3], [3.0, 1.0, 2.0], 2000)
    assert small == ([1, 2, 3], [3.0, 1.0, 2.0])
    nan = downsample(list(range(10_000)), [float("nan")] * 10_000, 100)
    assert len(nan[0]) == 100


def test_follower_reads_only_new_rows_and_forgets_truncated_steps(store):
    rid = store.create("r", {})
    for s in range(1, 6):
        store.log(rid, {"loss": 1.0 / s}, s)
    f = MetricsFollower(store, rid)
    assert f.refresh() == 5 and [r["step"] for r in f.rows["train"]] == [1, 2, 3, 4, 5]
    assert f.refresh() == 0
    store.log(rid, {"loss": 0.1}, 6)
    assert f.refresh() == 1
    # a resume from checkpoint-3 drops steps 4..6 in the store and says so with a resume row
    store.truncate_metrics(rid, 3)
    store.log(rid, {"from_step": 3, "restored": ["weights"]}, 3, "resume")
    store.log(rid, {"loss": 0.5}, 4)
    f.refresh()
    assert [r["step"] for r in f.rows["train"]] == [1, 2, 3, 4]
    assert f.rows["train"] == store.metrics(rid, "train")  # the cache equals a full read


def test_restored_state_follows_the_checkpoint_files(tmp_path):
    assert restored_state(None) == []
    ck = tmp_path / "checkpoint-4"
    ck.mkdir()
    (ck / "model.safetensors").write_bytes(b"")
    (ck / "trainer_state.json").write_text("{}")
    assert restored_state(ck) == ["weights", "data position"]
    (ck / "optimizer.pt").write_bytes(b"")
    (ck / "rng_state.pth").write_bytes(b"")
    assert restored_state(ck) == ["weights", "optimizer", "RNG", "data position"]


def test_default_run_names_say_what_differs_and_never_repeat():
    from core.training import TrainingConfig
    from core.training.jobs import default_run_name

    base = TrainingConfig()
    assert default_run_name(base, set()) == "minilm-l6 on drug-reviews"
    assert default_run_name(base, {"minilm-l6 on drug-reviews"}) == "minilm-l6 on drug-reviews #2"
    assert default_run_name(base, {"minilm-l6 on drug-reviews", "minilm-l6 on drug-reviews #2"}) \
        == "minilm-l6 on drug-reviews #3"
    other = TrainingConfig(learning_rate=5e-4, epochs=1.0, batch_size=32)
    assert default_run_name(other, set()) == "minilm-l6 on drug-reviews · lr 0.0005, 1 epochs, batch 32"
    steps = TrainingConfig(max_steps=40, epochs=7.0)
    assert default_run_name(steps, set()) == "minilm-l6 on drug-reviews · 40 steps"
    assert default_run_name(TrainingConfig(name="mine"), set()) == "mine"


def test_the_step_writer_keeps_one_connection_and_each_row_is_seen_at_once(store, monkeypatch):
    """StoreCallback's rows go through one kept connection (a fresh one per row cost 2 ms); each row is committed
    alone, so another connection (the live page's) reads it right after log() returns, in order."""
    import sqlite3

    rid = store.create("w", {})
    page = RunStore(store.path)  # another reader, as a page in another thread
    opened = []
    real = RunStore._connect
    monkeypatch.setattr(RunStore, "_connect", lambda self: opened.append(1) or real(self))
    writer = store.writer()
    seqs = []
    for step in range(1, 6):
        seqs.append(writer.log(rid, {"loss": 1.0 / step, "v": float("nan")}, step))
        got = page.metrics(rid)
        assert [r["step"] for r in got] == list(range(1, step + 1)) and got[-1]["loss"] == 1.0 / step
        assert math.isnan(got[-1]["v"])
    assert seqs == sorted(seqs) and len(set(seqs)) == 5
    assert len(opened) == 1 + 5  # the writer once; each page.metrics() read opens its own
    writer.close()
    writer.log(rid, {"loss": 0.1}, 6, "eval")  # after close: a fresh connection, not an error
    assert page.metrics(rid, "eval")[0]["loss"] == 0.1 and len(opened) == 1 + 5 + 2
    with pytest.raises(sqlite3.Error):  # a failed row is rolled back, and the writer still works after it
        writer.log("no-such-run", {"loss": 1.0}, 7)
    writer.log(rid, {"loss": 0.2}, 7)
    assert [r["step"] for r in page.metrics(rid)] == [1, 2, 3, 4, 5, 6, 7]
    writer.close()
