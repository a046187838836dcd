"""A folder of the user's own images (ImageFolder layout, inside the workspace) as a CNN's / MLP's data: decoded
with Pillow, trained through the job engine, its layer table against a real forward, and bad folders refused."""
import os
from dataclasses import asdict

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw

from core.scratch import check, default_architecture, example_row, predict, setup
from core.scratch.images import LAYOUT_HELP, load_folder, samples
from core.scratch.models import ScratchClassifier
from core.settings import Settings
from core.training.config import ConfigError
from tests.core.scratch.scratch_fixtures import config, trainer


def shape_image(kind: str, i: int, mode: str = "L", side: int = 40) -> Image.Image:
    """A filled circle or a hollow square, moved and resized a little with `i`."""
    img = Image.new(mode, (side, side), 0)
    draw = ImageDraw.Draw(img)
    o, r = 3 + i % 7, 14 + i % 5
    fill = 255 if mode == "L" else (255, 40 * (i % 6), 0)
    if kind == "circle":
        draw.ellipse([o, o, o + r, o + r], fill=fill)
    else:
        draw.rectangle([o, o, o + r, o + r], outline=fill, width=3)
    return img


def make_folder(root, per_class: int = 20, classes=("circle", "square"), mode: str = "L") -> None:
    for c in classes:
        (root / c).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            shape_image(c, i, mode).save(root / c / f"{i:03d}.png")


@pytest.fixture(scope="module")
def settings(tmp_path_factory):
    s = Settings(workspace=tmp_path_factory.mktemp("image-ws"))
    make_folder(s.workspace / "imports" / "shapes")
    return s


def cnn(size: int = 16, **changes) -> dict:
    arch = default_architecture("cnn")
    arch.update(image_size=size, **changes)
    return arch


def refused(cfg, settings) -> ConfigError:
    with pytest.raises(ConfigError) as e:
        check(cfg, settings)
    return e.value


def test_the_folder_is_decoded_resized_and_split_stratified(settings):
    data = load_folder("folder:shapes", settings, 16)
    assert data.classes == ["circle", "square"] and data.shape == (1, 16, 16)
    assert data.pixels.dtype == np.float32 and 0.0 <= data.pixels.min() and data.pixels.max() <= 1.0
    assert data.pixels.max() == 1.0 and not data.skipped
    info = check(config("cnn", "folder:shapes", architecture=cnn(), eval_fraction=0.25), settings)
    assert info["input_shape"] == [1, 16, 16] and info["labels"] == ["circle", "square"]
    assert (info["train_rows"], info["eval_rows"]) == (30, 10)
    task = setup(config("cnn", "folder:shapes", architecture=cnn(), eval_fraction=0.25), settings, "unused")
    assert sorted(int(y) for y in task.eval_dataset["labels"]) == [0] * 5 + [1] * 5  # stratified: 5 of each
    # the same folder by its absolute path; an MLP reads the flattened pixels
    absolute = f"folder:{settings.workspace / 'imports' / 'shapes'}"
    mlp = {**default_architecture("mlp"), "image_size": 8}
    assert check(config("mlp", absolute, architecture=mlp), settings)["input_shape"] == [64]


def test_colour_images_give_three_channels(tmp_path):
    s = Settings(workspace=tmp_path)
    make_folder(tmp_path / "imports" / "colour", per_class=3)
    shape_image("circle", 0, "RGB").save(tmp_path / "imports" / "colour" / "circle" / "rgb.png")
    assert check(config("cnn", "folder:colour", architecture=cnn(12)), s)["input_shape"] == [3, 12, 12]


def test_the_layer_table_equals_a_real_forward(settings):
    cfg = config("cnn", "folder:shapes", architecture=cnn(20))
    task = setup(cfg, settings, "unused")
    table = [tuple(r["output_shape"][1:]) for r in task.info["layers"]]
    x = torch.stack([task.train_dataset[i]["inputs"] for i in range(2)]).reshape(2, 1, 20, 20)
    trace = []
    with torch.no_grad():
        task.model.eval().body(x, None, trace)
    assert table == [t[1:] for t in trace]
    assert table[0] == (32, 20, 20)  # the first Conv2d sees the folder's 1 channel × 20 × 20
    assert sum(r["params"] for r in task.info["layers"]) == sum(p.numel() for p in task.model.parameters())


def test_a_few_steps_learn_the_shapes(settings, tmp_path):
    """Dry-run size: 12 steps of the Trainer on 30 images; circles vs hollow squares is easy."""
    cfg = config("cnn", "folder:shapes", architecture=cnn(), eval_fraction=0.25, seed=0)
    task = setup(cfg, settings, tmp_path)
    t = trainer(task, tmp_path / "ckpt", 12, lr=3e-3, batch=8)
    before = t.evaluate()
    t.train()
    after = t.evaluate()
    assert after["eval_loss"] < before["eval_loss"]
    assert after["eval_accuracy"] > task.baseline["majority_baseline"] == pytest.approx(0.5)


def test_the_job_engine_trains_on_the_folder_and_the_model_is_tried_on_an_example(settings):
    from core.training import RunStore
    from core.training.runner import run_training

    cfg = config("cnn", "folder:shapes", architecture=cnn(), seed=0, max_steps=4, batch_size=8,
                 learning_rate=3e-3, eval_fraction=0.25)
    store = RunStore(settings.runs_db)
    run_id = store.create("images", asdict(cfg))
    assert run_training(run_id, store, settings, lambda: False) == "completed"
    rec = store.get(run_id)
    assert rec.plan["labels"] == ["circle", "square"] and "accuracy" in rec.final_metrics
    assert ScratchClassifier.from_pretrained(rec.model_dir).config.input_shape == [1, 16, 16]
    values, label = example_row(cfg, settings)
    assert len(values) == 256 and label in ("circle", "square")
    assert predict(rec.model_dir, [values])[0]["label"] in ("circle", "square")


def test_samples_for_the_form(settings):
    shown = samples("folder:shapes", settings, per_class=2)
    assert [label for label, _ in shown] == ["circle", "circle", "square", "square"]
    assert shown[0][1].shape == (64, 64, 3) and shown[0][1].dtype == np.uint8


def test_corrupt_and_non_image_files_are_skipped_and_counted(tmp_path):
    s = Settings(workspace=tmp_path)
    root = tmp_path / "imports" / "mixed"
    make_folder(root, per_class=4)
    (root / "circle" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really a png")
    (root / "square" / "truncated.jpg").write_bytes(b"\xff\xd8\xff\xe0")
    (root / "square" / "notes.txt").write_text("not an image")
    (root / "stray.png").write_bytes(b"")
    info = check(config("cnn", "folder:mixed", architecture=cnn(8)), s)
    assert info["train_rows"] + info["eval_rows"] == 8
    assert info["skipped"] == {"unreadable (corrupt or not an image)": 2, "not image files": 1,
                               "outside a class folder": 1}


def test_a_folder_of_only_unreadable_files_is_refused(tmp_path):
    s = Settings(workspace=tmp_path)
    for c in ("a", "b"):
        (tmp_path / "imports" / "bad" / c).mkdir(parents=True)
        (tmp_path / "imports" / "bad" / c / "x.png").write_bytes(b"garbage")
    e = refused(config("cnn", "folder:bad", architecture=cnn(8)), s)
    assert e.field == "dataset" and "none of the 2 image files" in e.message and "2 unreadable" in e.message


def test_one_class_is_refused(tmp_path):
    s = Settings(workspace=tmp_path)
    make_folder(tmp_path / "imports" / "one", per_class=5, classes=("circle",))
    (tmp_path / "imports" / "one" / "empty").mkdir()  # a sub-folder without images is not a class
    e = refused(config("cnn", "folder:one", architecture=cnn(8)), s)
    assert e.field == "dataset" and "single class ('circle')" in e.message and "at least two" in e.message


def test_no_images_is_refused_with_the_expected_layout(tmp_path):
    s = Settings(workspace=tmp_path)
    (tmp_path / "imports" / "empty" / "a").mkdir(parents=True)
    (tmp_path / "imports" / "empty" / "a" / "readme.txt").write_text("hi")
    e = refused(config("cnn", "folder:empty", architecture=cnn(8)), s)
    assert e.field == "dataset" and "no image files" in e.message and LAYOUT_HELP in e.message


def test_paths_outside_the_workspace_links_out_and_missing_folders_are_refused(settings, tmp_path):
    make_folder(tmp_path / "elsewhere", per_class=2)
    e = refused(config("cnn", f"folder:{tmp_path / 'elsewhere'}", architecture=cnn(8)), settings)
    assert e.field == "dataset" and "outside the folders the server may read" in e.message
    e = refused(config("cnn", "folder:../../", architecture=cnn(8)), settings)
    assert e.field == "dataset" and "outside" in e.message
    os.symlink(tmp_path / "elsewhere", settings.workspace / "imports" / "escape")
    e = refused(config("cnn", "folder:escape", architecture=cnn(8)), settings)
    assert e.field == "dataset" and "outside" in e.message
    e = refused(config("cnn", "folder:no-such-folder", architecture=cnn(8)), settings)
    assert e.field == "dataset" and "does not exist" in e.message
    e = refused(config("cnn", "folder:", architecture=cnn(8)), settings)
    assert e.field == "dataset" and "ImageFolder" in e.message


def test_a_link_inside_a_class_folder_leading_out_is_skipped(tmp_path):
    s = Settings(workspace=tmp_path)
    make_folder(tmp_path / "imports" / "linked", per_class=3)
    shape_image("circle", 1).save(tmp_path / "secret.png")
    os.symlink(tmp_path / "secret.png", tmp_path / "imports" / "linked" / "circle" / "z.png")
    info = check(config("cnn", "folder:linked", architecture=cnn(8)), s)
    assert info["skipped"] == {"links leading out of the folders": 1}


def test_caps_and_sizes_are_refused_with_the_numbers(settings, monkeypatch):
    from core.scratch import images

    e = refused(config("cnn", "folder:shapes", architecture=cnn(2)), settings)
    assert e.field == "architecture.image_size" and "4 to 512" in e.message
    e = refused(config("cnn", "sklearn:digits", architecture=cnn(16)), settings)
    assert e.field == "architecture.image_size" and "not one" in e.message
    e = refused(config("rnn", "folder:shapes"), settings)
    assert e.field == "dataset" and "images, not text" in e.message
    monkeypatch.setattr(images, "MAX_IMAGES", 10)
    e = refused(config("cnn", "folder:shapes", architecture=cnn(8)), settings)
    assert e.field == "dataset" and "over 10 images" in e.message
    monkeypatch.setattr(images, "MAX_IMAGES", 100)
    monkeypatch.setattr(images, "MAX_VALUES", 40 * 8 * 8 - 1)
    e = refused(config("cnn", "folder:shapes", architecture=cnn(8)), settings)
    assert e.field == "architecture.image_size" and "40 images × 8 × 8 = 2,560" in e.message
