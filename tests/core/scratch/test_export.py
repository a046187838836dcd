"""Export as script: a from-scratch run trained through the job engine, then its exported script (plain PyTorch +
transformers, nothing from Torch Lab) run on its own, ends at the run's evaluation loss.

Tolerance: relative 1e-4. The script rebuilds the same split, tokenizer, initial weights (seeded right before the
network is built), batch order and dropout draws: on this CPU all six kinds' scripts ended at the run's
eval_loss bit for bit. 1e-4 leaves room for float reductions that a different thread count orders differently
(the engine trains a from-scratch net on one CPU thread, the exec'd script on torch's default count), so exact
equality is not promised. What is discrete is compared exactly: the split rows, the steps evaluated, the step
early stopping stops at and the best checkpoint's, a frozen embedding table."""
import json
import subprocess
import sys

import pytest
import torch

from core.scratch.export import export_script
from core.settings import Settings
from core.training import JobManager
from tests.core.scratch.scratch_fixtures import config, text_dataset

TOLERANCE = 1e-4


@pytest.fixture(scope="module")
def engine(tmp_path_factory):
    s = Settings(workspace=tmp_path_factory.mktemp("export-ws"))
    text_dataset(s)
    jobs = JobManager(settings=s)
    yield s, jobs
    jobs.shutdown()


def train(engine, cfg):
    """The run through the job engine (JobManager -> runner -> Trainer); its record."""
    s, jobs = engine
    run_id = jobs.submit(cfg)
    assert jobs.wait(run_id, 300) == "completed", jobs.store.get(run_id).message
    return jobs.store.get(run_id)


def script_of(engine, rec, tmp_path) -> str:
    s, _ = engine
    from core.training import TrainingConfig

    script = export_script(TrainingConfig.from_dict(rec.config), s, rec.plan, rec.id, output=str(tmp_path / "out"),
                           model_dir=rec.model_dir)
    assert "core." not in script and "torchlab" not in script.lower()  # standalone: nothing from Torch Lab
    lint(script, tmp_path)
    return script


def lint(script: str, tmp_path) -> None:
    """The script reads like code a person wrote: no unused or undefined names, sorted imports, no bugbears."""
    file = tmp_path / "lint_me.py"
    file.write_text(script)
    out = subprocess.run([sys.executable, "-m", "ruff", "check", "--isolated", "--line-length", "120",
                          "--select", "E,F,W,I,B,UP", "--ignore", "E501", str(file)], capture_output=True, text=True)
    if "No module named ruff" in out.stderr:
        return  # ruff is a dev tool (requirements-dev.txt); the runtime-only install skips this check
    assert out.returncode == 0, out.stdout[-3000:]


def printed_eval(stdout: str) -> dict:
    return json.loads(next(line for line in stdout.splitlines() if line.startswith("eval "))[5:])


def test_a_cnn_on_digits_exported_reproduces_the_runs_eval_loss(engine, tmp_path):
    cfg = config("cnn", "sklearn:digits", max_steps=4, batch_size=16, learning_rate=2e-3, max_train_samples=128,
                 max_eval_samples=64, seed=7)
    rec = train(engine, cfg)
    script = script_of(engine, rec, tmp_path)
    path = tmp_path / "train.py"
    path.write_text(script)
    # the step cap: the run's own 4 steps, given on the command line (a shorter one rebuilds the schedule)
    out = subprocess.run([sys.executable, str(path), "--max-steps", "4"], capture_output=True, text=True,
                         timeout=300, cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    got = printed_eval(out.stdout)
    assert got["eval_loss"] == pytest.approx(rec.final_metrics["loss"], rel=TOLERANCE)
    assert got["eval_accuracy"] == pytest.approx(rec.final_metrics["accuracy"], abs=1e-9)
    assert (tmp_path / "out" / "model" / "config.json").is_file()


def _arch(kind: str, **changes) -> dict:
    arch = config(kind, "x").architecture
    arch.update(changes)
    return arch


KINDS = {
    # accumulation 2 and a torch schedule: the loss's num_items_in_batch and the scheduler code are exported too
    "mlp": config("mlp", "tiny-reviews", eval_fraction=0.25, max_steps=3, batch_size=8, grad_accumulation=2,
                  scheduler="one_cycle", learning_rate=1e-2),
    "rnn": config("rnn", "tiny-reviews", architecture=_arch("rnn", vocab_size=300), max_length=16, eval_fraction=0.25,
                  max_steps=3, batch_size=8, learning_rate=5e-3),
    # early stopping (the best checkpoint is evaluated at the end) and torch's StepLR
    "transformer": config("transformer", "tiny-reviews", architecture=_arch("transformer", vocab_size=300),
                          max_length=16, eval_fraction=0.25, max_steps=4, batch_size=8, learning_rate=5e-3,
                          early_stopping_patience=2, scheduler="step"),
    "seq2seq": config("seq2seq", "toy:reverse", architecture=_arch("seq2seq", d_model=16, dim_feedforward=32,
                                                                   train_size=64, eval_size=16, max_len=6),
                      max_steps=3, batch_size=16, learning_rate=3e-3),
    "gpt": config("gpt", "tiny-reviews", architecture=_arch("gpt", vocab_size=300, n_embd=32, n_layer=1, n_head=2),
                  max_length=24, eval_fraction=0.2, max_steps=3, batch_size=8, learning_rate=5e-3),
    # a validation split carved from the training texts chooses nothing here (no early stopping): the eval points
    # read it, the final figure is the test texts'
    "gpt-validation": config("gpt", "tiny-reviews", architecture=_arch("gpt", vocab_size=300, n_embd=32, n_layer=1,
                                                                       n_head=2, validation_fraction=0.2),
                             max_length=24, eval_fraction=0.2, max_steps=4, eval_steps=2, batch_size=8,
                             learning_rate=5e-3),
}


@pytest.mark.parametrize("kind", list(KINDS))
def test_every_kind_exported_reproduces_the_runs_eval_loss(engine, tmp_path, kind, capsys):
    rec = train(engine, KINDS[kind])
    script = script_of(engine, rec, tmp_path)
    exec(compile(script, f"export-{kind}", "exec"), {"__name__": "export"})  # noqa: S102 - the script is the test
    got = printed_eval(capsys.readouterr().out)
    assert got["eval_loss"] == pytest.approx(rec.final_metrics["loss"], rel=TOLERANCE)
    for name in ("accuracy", "token_accuracy", "perplexity"):
        if name in rec.final_metrics:
            assert got[f"eval_{name}"] == pytest.approx(rec.final_metrics[name], rel=TOLERANCE), name


def test_a_named_tokenizer_is_read_from_the_runs_model_folder(engine, tmp_path):
    s, _ = engine
    arch = _arch("rnn", tokenizer="bert-wordpiece-uncased")
    arch["layers"][1] = {"type": "GRU", "hidden_size": 8}
    cfg = config("rnn", "tiny-reviews", architecture=arch, max_length=16, max_steps=2)
    plan = {"optim": "adamw_torch_fused", "precision": "fp32"}
    with pytest.raises(ValueError, match="saved model folder"):
        export_script(cfg, s, plan)
    script = export_script(cfg, s, plan, model_dir=str(tmp_path / "model"))
    assert f"TOKENIZER = {str(tmp_path / 'model')!r}" in script and "train_bpe" not in script


def test_a_validation_split_with_early_stopping_exported_reproduces_the_run(engine, tmp_path, capsys):
    """The script carves the same validation rows from the training rows, its eval points read them (the same
    losses at the same steps as the run's curve), early stopping and the best checkpoint choose the same step,
    and the final evaluation scores the test split: the run's figure."""
    from core.scratch import setup

    s, jobs = engine
    arch = _arch("rnn", vocab_size=300, validation_fraction=0.25)
    arch["layers"] = [{"type": "Embedding", "embedding_dim": 16}, {"type": "GRU", "hidden_size": 16}]
    cfg = config("rnn", "tiny-reviews", architecture=arch, max_length=16, eval_fraction=0.25, max_steps=8,
                 eval_steps=1, batch_size=8, learning_rate=0.5, early_stopping_patience=1, seed=3)
    rec = train(engine, cfg)
    script = script_of(engine, rec, tmp_path)
    assert "VALIDATION_FRACTION = 0.25" in script and "eval_dataset = validation" in script
    g = {"__name__": "export"}
    exec(compile(script, "export-validation", "exec"), g)  # noqa: S102 - the script is the test
    got = printed_eval(capsys.readouterr().out)

    # the same rows: the engine's validation / training / test splits, tokenized
    task = setup(cfg, s, "unused")
    rows = lambda ds: [(list(r["input_ids"]), int(r["labels"])) for r in ds]  # noqa: E731
    assert rows(g["validation"]) == rows(task.trainer_class.validation_dataset)
    assert rows(g["train"]) == rows(task.train_dataset) and rows(g["evaluation"]) == rows(task.eval_dataset)

    # the same curve on the validation rows, the same stop and the same best checkpoint
    trainer = g["trainer"]
    # (both curves end with the final evaluation, the test split's)
    run_curve = [(m["step"], m["eval_loss"]) for m in jobs.store.metrics(rec.id, "eval")]
    script_curve = [(h["step"], h["eval_loss"]) for h in trainer.state.log_history if "eval_loss" in h]
    assert [st for st, _ in script_curve] == [st for st, _ in run_curve]
    for (_, a), (_, b) in zip(script_curve, run_curve, strict=True):
        assert a == pytest.approx(b, rel=TOLERANCE)
    assert trainer.state.global_step == rec.final_metrics["global_step"] < cfg.max_steps  # early stopping stopped it
    best = min(run_curve[:-1], key=lambda p: p[1])[0]  # the first of equal losses, as the Trainer keeps it
    assert trainer.state.best_global_step == best < trainer.state.global_step  # not the last step's weights

    # the final figure is the test split's, for the best checkpoint, and the run's
    assert got["eval_loss"] == pytest.approx(rec.final_metrics["loss"], rel=TOLERANCE)
    assert got["eval_accuracy"] == pytest.approx(rec.final_metrics["accuracy"], abs=1e-9)
    assert got["eval_loss"] != pytest.approx(dict(run_curve[:-1])[best], rel=TOLERANCE)  # not the validation loss


def test_frozen_minilm_embeddings_exported_reproduce_the_run(engine, tmp_path, capsys):
    """The script copies MiniLM-L6's word-embedding table from the packaged safetensors file (its absolute path
    written in), keeps it frozen, and ends at the run's figure with the run's trained weights."""
    from safetensors.torch import load_file

    from core.assets import minilm_path
    from core.scratch import data as D

    arch = _arch("rnn", tokenizer="bert-wordpiece-uncased", pretrained_embeddings="minilm-l6",
                 freeze_embeddings=True)
    arch["layers"] = [{"type": "Embedding", "embedding_dim": 384}, {"type": "GRU", "hidden_size": 8}]
    cfg = config("rnn", "tiny-reviews", architecture=arch, max_length=16, eval_fraction=0.25, max_steps=3,
                 batch_size=8, learning_rate=5e-3)
    rec = train(engine, cfg)
    script = script_of(engine, rec, tmp_path)
    assert f"MINILM = {str(minilm_path().resolve())!r}" in script
    g = {"__name__": "export"}
    exec(compile(script, "export-minilm", "exec"), g)  # noqa: S102 - the script is the test
    got = printed_eval(capsys.readouterr().out)

    table = D.embedding_table("minilm-l6")
    emb = g["embedding"].weight
    assert not emb.requires_grad and torch.equal(emb.detach(), table)  # copied, and still MiniLM's after training
    saved = load_file(f"{rec.model_dir}/model.safetensors")
    ours = g["model"].state_dict()
    assert torch.equal(saved["body.layers.0.weight"], table)
    for name, weight in ours.items():  # the trained GRU and head: the run's, to float tolerance
        assert torch.allclose(weight, saved[name], rtol=TOLERANCE, atol=1e-7), name
    assert got["eval_loss"] == pytest.approx(rec.final_metrics["loss"], rel=TOLERANCE)
    assert got["eval_accuracy"] == pytest.approx(rec.final_metrics["accuracy"], abs=1e-9)


def test_image_runs_exported_decode_the_same_pixels_and_reproduce_the_runs_eval_loss(engine, tmp_path, capsys):
    """An image folder (grey and colour files, a corrupt one, a link leading out of the readable folders) and an
    image column of paths (one missing, one leading out): the script decodes exactly the engine's pixels and
    classes, splits them alike, and ends at the run's evaluation loss."""
    import datasets
    import numpy as np

    from core.data import DatasetStore
    from core.scratch import setup
    from tests.core.scratch.test_image_folder import make_folder, shape_image

    s, _ = engine
    root = s.workspace / "imports" / "export-shapes"
    make_folder(root, per_class=10)
    shape_image("circle", 3, "RGB").save(root / "circle" / "colour.png")  # one colour file: RGB for all
    (root / "square" / "broken.png").write_bytes(b"not a png")
    outside = tmp_path / "outside.png"
    shape_image("square", 1).save(outside)
    (root / "square" / "link-out.png").symlink_to(outside)
    files = sorted(root.glob("*/[0-9]*.png"))
    DatasetStore(s.datasets_dir).save(datasets.Dataset.from_dict({
        "path": [f"export-shapes/{f.parent.name}/{f.name}" for f in files] + ["export-shapes/none.png", str(outside)],
        "shape": [f.parent.name for f in files] + ["circle", "square"]}), "export-shape-paths", "test fixture")

    cases = {
        "folder": config("cnn", "folder:export-shapes", architecture=_arch("cnn", image_size=12), eval_fraction=0.25,
                         max_steps=3, batch_size=8, learning_rate=3e-3, seed=5),
        "column": config("mlp", "export-shape-paths", label_column="shape", eval_fraction=0.25, max_steps=3,
                         batch_size=8, learning_rate=3e-3, seed=5,
                         architecture=_arch("mlp", image_column="path", image_size=10)),
    }
    for name, cfg in cases.items():
        rec = train(engine, cfg)
        script = script_of(engine, rec, tmp_path)
        g = {"__name__": "export"}
        exec(compile(script, f"export-image-{name}", "exec"), g)  # noqa: S102 - the script is the test
        got = printed_eval(capsys.readouterr().out)
        task = setup(cfg, s, "unused")
        for split, xs, ys in ((task.train_dataset, "x_train", "y_train"), (task.eval_dataset, "x_eval", "y_eval")):
            assert np.array_equal(np.asarray(split["inputs"], dtype=np.float32), g[xs]), name
            assert list(split["labels"]) == list(g[ys]), name
        channels = 3 if name == "folder" else 1
        assert g["x_train"].shape[1] == channels * cfg.architecture["image_size"] ** 2, name
        assert len(g["y_train"]) + len(g["y_eval"]) == (21 if name == "folder" else 20), name  # the bad ones left out
        assert got["eval_loss"] == pytest.approx(rec.final_metrics["loss"], rel=TOLERANCE), name
        assert got["eval_accuracy"] == pytest.approx(rec.final_metrics["accuracy"], abs=1e-9), name
