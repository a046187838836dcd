"""An image column of a workspace dataset (paths to image files, or the images' bytes as a `datasets` Image column)
as a CNN's / MLP's data (#16): the same pixels as the image folder gives, bad cells skipped and counted, paths
leading out of the readable folders never opened, bad settings refused naming the field."""
from dataclasses import asdict

import numpy as np
import pytest
from PIL import Image

from core.scratch import check, default_architecture, setup
from core.scratch.images import load_folder
from core.settings import Settings
from core.training.config import ConfigError
from tests.core.scratch.scratch_fixtures import config
from tests.core.scratch.test_image_folder import make_folder


def save(settings, name: str, columns: dict, features=None):
    import datasets

    from core.data import DatasetStore

    ds = datasets.Dataset.from_dict(columns, features=features)
    return DatasetStore(settings.datasets_dir).save(ds, name, "test fixture")


@pytest.fixture(scope="module")
def settings(tmp_path_factory):
    s = Settings(workspace=tmp_path_factory.mktemp("image-col-ws"))
    make_folder(s.workspace / "imports" / "shapes", per_class=12)
    files = sorted((s.workspace / "imports" / "shapes").glob("*/*.png"))
    # relative to the imports folder, as a CSV of file names next to the images would hold them
    save(s, "shape-paths", {"path": [f"shapes/{f.parent.name}/{f.name}" for f in files],
                            "shape": [f.parent.name for f in files], "note": ["drawn"] * len(files)})
    import datasets

    save(s, "shape-bytes", {"image": [{"bytes": f.read_bytes(), "path": None} for f in files],
                            "shape": [f.parent.name for f in files]},
         datasets.Features({"image": datasets.Image(), "shape": datasets.Value("string")}))
    return s


def cnn(column: str, size: int = 16) -> dict:
    return {**default_architecture("cnn"), "image_column": column, "image_size": size}


def pixels_of(task) -> dict[tuple, int]:
    """Each split's images as bytes of their pixels -> label, to compare two sources regardless of order."""
    out = {}
    for ds in (task.train_dataset, task.eval_dataset):
        for row in ds:
            out[np.asarray(row["inputs"], dtype=np.float32).tobytes()] = int(row["labels"])
    return out


def test_a_column_of_paths_gives_the_folder_s_pixels(settings):
    cfg = config("cnn", "shape-paths", architecture=cnn("path"), label_column="shape", eval_fraction=0.25)
    info = check(cfg, settings)
    assert info["input_shape"] == [1, 16, 16] and sorted(info["labels"]) == ["circle", "square"]
    assert info["train_rows"] + info["eval_rows"] == 24
    task = setup(cfg, settings, "unused")
    folder = load_folder("folder:shapes", settings, 16)
    want = {p.tobytes(): folder.classes[y] for p, y in zip(folder.pixels.reshape(24, -1), folder.labels, strict=True)}
    names = task.train_dataset.features["labels"].names
    assert {k: names[v] for k, v in pixels_of(task).items()} == want  # every image, with its own class
    # one image by hand: Pillow's grey conversion and resize, scaled to [0, 1]
    f = settings.workspace / "imports" / "shapes" / "circle" / "000.png"
    by_hand = np.asarray(Image.open(f).convert("L").resize((16, 16)), dtype=np.float32) / 255
    assert by_hand.astype(np.float32).tobytes() in want


def test_a_datasets_image_column_gives_the_same_pixels_as_the_paths(settings):
    by_path = setup(config("cnn", "shape-paths", architecture=cnn("path", 12), label_column="shape"), settings, "u")
    by_bytes = setup(config("mlp", "shape-bytes", architecture={**default_architecture("mlp"), "image_column": "image",
                                                                 "image_size": 12}, label_column="shape"), settings, "u")
    assert pixels_of(by_bytes) == pixels_of(by_path)
    assert len(by_bytes.train_dataset[0]["inputs"]) == 144  # the MLP reads the 12 × 12 grey pixels flattened


def test_bad_cells_are_skipped_and_counted_and_paths_out_are_never_opened(settings, tmp_path):
    outside = tmp_path / "secret.png"
    Image.new("L", (20, 20), 255).save(outside)
    good = [f"shapes/circle/{i:03d}.png" for i in range(6)] + [f"shapes/square/{i:03d}.png" for i in range(6)]
    cells = [*good, str(outside), "../../secret.png", "shapes/circle/none.png", "", None, "shapes/square"]
    labels = ["circle"] * 6 + ["square"] * 6 + ["circle", "square", "circle", "square", "circle", "square"]
    save(settings, "messy-paths", {"path": cells, "shape": labels})
    from core.scratch import data as D

    cfg = config("cnn", "messy-paths", architecture=cnn("path"), label_column="shape", eval_fraction=0.25)
    splits, shape = D.image_column_splits(cfg, settings, "path", 16)
    assert shape == (1, 16, 16) and len(splits.train) + len(splits.eval) == 12
    assert splits.skipped == {"empty cells": 2, "paths outside the folders the server may read": 2,
                              "missing files": 2}
    # corrupt bytes are counted as unreadable
    save(settings, "messy-bytes", {"image": [b"not a png", *[(settings.workspace / "imports" / g).read_bytes()
                                                             for g in good]],
                                   "shape": ["circle", *labels[:12]]})
    splits, _ = D.image_column_splits(config("cnn", "messy-bytes", label_column="shape"), settings, "image", 16)
    assert splits.skipped == {"unreadable (corrupt or not an image)": 1}
    assert len(splits.train) + len(splits.eval) == 12


def test_bad_settings_are_refused_naming_the_field(settings):
    def refused(cfg):
        with pytest.raises(ConfigError) as e:
            check(cfg, settings)
        return e.value

    e = refused(config("cnn", "shape-paths", architecture=cnn("picture"), label_column="shape"))
    assert e.field == "architecture.image_column" and "no column 'picture'" in e.message and "path" in e.message
    e = refused(config("cnn", "shape-paths", architecture=cnn("shape"), label_column="shape"))
    assert e.field == "architecture.image_column" and "label column" in e.message
    e = refused(config("cnn", "shape-paths", architecture=cnn("note"), label_column="shape"))
    assert e.field == "architecture.image_column" and "no cell of 'note' is a readable image" in e.message
    assert "24 missing files" in e.message
    e = refused(config("cnn", "sklearn:digits", architecture=cnn("path")))
    assert e.field == "architecture.image_column"
    e = refused(config("cnn", "shape-paths", architecture={**cnn("path"), "image_column": 3}, label_column="shape"))
    assert e.field == "architecture.image_column"
    e = refused(config("cnn", "shape-paths", architecture={**cnn("path"), "feature_columns": ["path"]},
                       label_column="shape"))
    assert e.field == "architecture.feature_columns"


def test_the_job_engine_trains_on_an_image_column(settings):
    from core.scratch.models import ScratchClassifier
    from core.training import RunStore
    from core.training.runner import run_training

    cfg = config("cnn", "shape-bytes", architecture=cnn("image"), label_column="shape", seed=0, max_steps=3,
                 batch_size=8, learning_rate=3e-3, eval_fraction=0.25)
    store = RunStore(settings.runs_db)
    run_id = store.create("image column", asdict(cfg))
    assert run_training(run_id, store, settings, lambda: False) == "completed", store.get(run_id).message
    rec = store.get(run_id)
    assert sorted(rec.plan["labels"]) == ["circle", "square"] and 0 <= rec.final_metrics["accuracy"] <= 1
    assert ScratchClassifier.from_pretrained(rec.model_dir).config.input_shape == [1, 16, 16]

