"""The DataLoader measurement: every setting iterates the whole epoch through the run's collate function."""
import math

from core.scratch.loading import time_loaders
from core.settings import Settings
from tests.core.scratch.scratch_fixtures import config, text_dataset


def test_each_setting_times_whole_epochs(tmp_path):
    s = Settings(workspace=tmp_path)
    text_dataset(s)
    cfg = config("rnn", "tiny-reviews", architecture={"kind": "rnn", "vocab_size": 300}, max_length=16,
                 eval_fraction=0.25)
    out = time_loaders(cfg, s, batch_sizes=(4, 16), repeats=1)
    assert out["rows"] == 45 and out["collate"] == "PadCollator"  # 60 rows, a quarter held out
    got = {(t["batch_size"], t["shuffle"], t["num_workers"]) for t in out["timings"]}
    assert got == {(b, sh, w) for b in (4, 16) for sh in (False, True) for w in (0, 2)}
    for t in out["timings"]:
        assert t["batches"] == math.ceil(45 / t["batch_size"])  # all rows, workers or not
        assert t["first_epoch_s"] > 0 and t["next_epoch_s"] > 0 and t["rows_per_s"] > 0


def test_a_big_dataset_is_measured_on_its_first_rows_and_within_the_time_budget(tmp_path):
    s = Settings(workspace=tmp_path)
    out = time_loaders(config("mlp", "sklearn:digits"), s, batch_sizes=(32, 64), workers=(0,), max_rows=100,
                       repeats=1, budget_s=0.0)
    assert out["rows"] == 100
    assert len(out["timings"]) == 1  # the budget was spent after the first setting
