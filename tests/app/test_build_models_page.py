"""The Build a network page: the layer table before launch, a CNN trained on digits through the job engine,
its results, and bad settings refused with the field named."""
import time

import torch
from torch import nn

from core.settings import get_settings
from core.training import RunStore


def _params(m: nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


def test_the_default_cnn_table_matches_torch_and_a_run_trains_on_digits(open_page):
    at = open_page("pages/build_models.py")
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert at.segmented_control(key="bn_kind").value == "cnn"
    table = next(d.value for d in at.dataframe if "parameters" in d.value.columns)
    # the same stack written by hand in torch: its parameter count and output shapes are the reference
    ref = nn.Sequential(nn.Conv2d(1, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(),
                        nn.Conv2d(32, 64, 3, padding=1), nn.BatchNorm2d(64), nn.ReLU(), nn.MaxPool2d(2),
                        nn.Dropout(0.25), nn.Flatten(), nn.Linear(1024, 128), nn.ReLU(), nn.Dropout(0.3),
                        nn.Linear(128, 10))
    shown = [int(p.replace(",", "")) for p in table["parameters"]]
    assert sum(shown) == _params(ref)
    assert [_params(m) for m in ref] == shown
    x = torch.zeros(2, 1, 8, 8)
    shapes = []
    for m in ref:
        x = m(x)
        shapes.append(" × ".join(["B", *map(str, x.shape[1:])]))
    assert list(table["output shape"]) == shapes
    head = next(m.value for m in at.markdown if "Layer table" in m.value)
    assert f"{_params(ref):,} parameters" in head and "10 classes" in head, head

    at.number_input(key="bn_steps").set_value(3).run()
    store = RunStore(get_settings().runs_db)  # shared with other tests, which may add runs meanwhile
    at.button(key="bn_start").click().run()
    assert not at.exception
    assert at.success, [e.value for e in at.error]
    run_id = at.success[0].value.split("Queued run ")[1].split(":")[0]
    assert run_id in {r.id for r in store.runs()}
    deadline = time.time() + 300
    while store.get(run_id).status not in ("completed", "failed") and time.time() < deadline:
        time.sleep(0.5)
    rec = store.get(run_id)
    assert rec.status == "completed", rec.message
    assert rec.plan["task"] == "scratch" and rec.total_steps == 3
    assert len(store.metrics(run_id, "train")) == 3
    at.run()
    assert not at.exception
    metrics = {m.label: m.value for m in at.metric}
    # digits has 10 balanced classes: the majority baseline is about 10 %, and the page shows the stored figure
    assert metrics["majority-class baseline"] == f"{rec.final_metrics['majority_baseline']:.1%}"
    assert metrics["accuracy"] == f"{rec.final_metrics['accuracy']:.1%}"
    assert metrics["parameters"] == f"{_params(ref):,}"
    # export as script: a standalone file (tests/core/scratch/test_export.py runs such scripts)
    script = next(c.value for c in at.code if "TrainingArguments(" in c.value)
    assert "class Net(PreTrainedModel)" in script and "core." not in script
    assert "max_steps=cli.max_steps" in script and '"--max-steps", type=int, default=3' in script


def test_a_bad_size_is_refused_with_its_field_and_nothing_is_queued(open_page):
    at = open_page("pages/build_models.py")
    at.segmented_control(key="bn_kind").set_value("seq2seq").run()
    at.number_input(key="bn_seq2seq_nhead").set_value(3).run()  # 3 heads do not divide d_model 64
    assert not at.exception
    errors = [e.value for e in at.error]
    assert any("architecture.nhead" in e and "64" in e for e in errors), errors
    assert at.button(key="bn_start").disabled


def test_the_layer_editor_applies_edits_deletions_and_additions_and_names_a_bad_row():
    from components.scratch_views import edited_layers
    from core.scratch import default_architecture

    arch = default_architecture("mlp")  # Linear 128, ReLU, Dropout, Linear 64, ReLU
    layers, err = edited_layers(arch, {"edited_rows": {0: {"settings": '{"out_features": 32}'}},
                                       "deleted_rows": [2], "added_rows": [{"type": "GELU", "settings": ""}]})
    assert err is None
    assert [layer["type"] for layer in layers] == ["Linear", "ReLU", "Linear", "ReLU", "GELU"]
    assert layers[0] == {"type": "Linear", "out_features": 32}
    _, err = edited_layers(arch, {"edited_rows": {3: {"settings": "{out_features: 8}"}}})
    assert err.startswith("row 3 (Linear): settings are not a JSON object"), err
    _, err = edited_layers(arch, {"edited_rows": {1: {"settings": "[1, 2]"}}})
    assert err.startswith("row 1 (ReLU): settings must be a JSON object"), err
    # a "type" inside the settings never overrides the row's chosen layer type
    layers, _ = edited_layers(arch, {"edited_rows": {1: {"settings": '{"type": "Linear"}'}}})
    assert layers[1]["type"] == "ReLU"


def test_one_batch_from_the_dataloader_shows_the_runs_own_tensors(open_page):
    at = open_page("pages/build_models.py")
    at.segmented_control(key="bn_kind").set_value("rnn").run()
    at.toggle(key="bn_show_batch").set_value(True).run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    tensors = next(d.value for d in at.dataframe if "dtype" in d.value.columns)
    shapes = dict(zip(tensors["tensor"], tensors["shape"], strict=True))
    dtypes = dict(zip(tensors["tensor"], tensors["dtype"], strict=True))
    rows, length = map(int, shapes["input_ids"].split(" × "))
    assert rows == 8 and 1 <= length <= 128  # padded to the longest of the batch, never past max_length
    assert shapes["labels"] == "8" and dtypes["input_ids"] == "torch.int64"
    # the padding the collate function added shows as pad ids where the attention mask is 0
    ids = next(d.value for d in at.dataframe if len(d.value) == 8 and d.value.shape[1] == min(length, 32))
    assert ids.shape == (8, min(length, 32))


def _bytes(text: str) -> float:
    """'1.5 KiB' -> 1536 (core.system.human_bytes backwards)."""
    number, unit = text.split()
    return float(number) * 1024 ** ["B", "KiB", "MiB", "GiB", "TiB"].index(unit)


def test_memory_of_training_vs_inference_is_measured_beside_the_layer_table(open_page):
    at = open_page("pages/build_models.py")
    at.segmented_control(key="bn_kind").set_value("mlp").run()
    at.selectbox(key="bn_data_mlp").set_value("sklearn:iris").run()
    at.number_input(key="bn_batch").set_value(16).run()
    at.number_input(key="bn_accum").set_value(4).run()
    at.toggle(key="bn_measure_memory").set_value(True).run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    shown = {m.label: m.value for m in at.metric}
    train, infer = _bytes(shown["training step peak"]), _bytes(shown["inference peak"])
    params = 4 * (4 * 128 + 128 + 128 * 64 + 64 + 64 * 3 + 3)  # the default MLP on iris, float32
    assert train > infer > params
    note = next(c.value for c in at.caption if "effective batch" in c.value)
    assert "Batch 16 × accumulation 4 = effective batch **64**" in note and "profiler" in note


def test_the_dataloader_settings_are_timed_on_demand(open_page):
    at = open_page("pages/build_models.py")
    at.segmented_control(key="bn_kind").set_value("mlp").run()
    at.selectbox(key="bn_data_mlp").set_value("sklearn:iris").run()
    at.button(key="bn_time_loader").click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    table = next(d.value for d in at.dataframe if "num_workers" in d.value.columns)
    assert set(table["num_workers"]) == {0, 2} and set(table["shuffle"]) == {False, True}
    assert set(table["batch size"]) == {8, 64, 128}  # 8, the run's 64, 128
    assert (table["batches"] == [-(-135 // b) for b in table["batch size"]]).all()  # iris: 135 training rows
    assert any("Measured: the time to iterate one epoch" in c.value for c in at.caption)


def test_minilm_embeddings_and_a_validation_split_are_form_options(open_page):
    """Picking MiniLM's embeddings switches the tokenizer to BERT's WordPiece and the Embedding to 384 wide;
    the validation share moves training rows out of training, the test split is unchanged."""
    at = open_page("pages/build_models.py")
    at.segmented_control(key="bn_kind").set_value("rnn").run()
    head = next(m.value for m in at.markdown if "Layer table" in m.value)
    assert "validation rows" not in head
    held = head.split(" held out")[0].split(", ")[-1]
    assert at.checkbox(key="bn_rnn_freeze").disabled
    at.selectbox(key="bn_rnn_pretrained").set_value("minilm-l6").run()
    at.checkbox(key="bn_rnn_freeze").check().run()
    at.number_input(key="bn_rnn_validation").set_value(0.15).run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    table = next(d.value for d in at.dataframe if "parameters" in d.value.columns)
    emb = table.iloc[0]
    assert emb["type"] == "Embedding" and emb["parameters"] == f"{30522 * 384:,}"
    assert "embedding_dim=384" in emb["settings"]
    head = next(m.value for m in at.markdown if "Layer table" in m.value)
    assert "validation rows (choose the epoch)" in head and f"{held} held out" in head, head


def test_an_image_folder_in_the_workspace_is_a_cnn_data_source(open_page):
    """Pick "Image folder in the workspace", type its path and a size: the layer table starts from the folder's
    channels × size, a few samples show with their class, and a corrupt file is counted, not fatal."""
    from PIL import Image

    from components.scratch_views import IMAGE_FOLDER

    root = get_settings().workspace / "imports" / "page-shapes"
    for c, value in (("dark", 30), ("light", 220)):
        (root / c).mkdir(parents=True, exist_ok=True)
        for i in range(6):
            Image.new("RGB", (20, 20), (value, value - 20 + 5 * i, 10)).save(root / c / f"{i}.png")
    (root / "dark" / "broken.png").write_bytes(b"not a png")
    at = open_page("pages/build_models.py")
    at.selectbox(key="bn_data_cnn").set_value(IMAGE_FOLDER).run()
    assert at.text_input(key="bn_folder").value == ""
    assert any("dataset" in e.value and "ImageFolder" in e.value for e in at.error), [e.value for e in at.error]
    at.text_input(key="bn_folder").input("page-shapes").run()
    at.number_input(key="bn_image_size").set_value(12).run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    table = next(d.value for d in at.dataframe if "parameters" in d.value.columns)
    assert table["output shape"].iloc[0] == "B × 32 × 12 × 12"
    assert table["settings"].iloc[0].startswith("in_channels=3")
    head = next(m.value for m in at.markdown if "Layer table" in m.value)
    assert "input (3, 12, 12) per example" in head and "2 classes" in head, head
    assert any("1 unreadable" in w.value for w in at.warning), [w.value for w in at.warning]
    assert at.image and at.image[0].captions == ["dark", "dark", "light", "light"]


def test_an_image_column_of_a_saved_dataset_is_a_cnn_data_source(open_page):
    """A saved dataset whose column holds image paths: pick it and its image column, the layer table starts from
    the images' channels × size, and a row whose file is missing is counted beside the table."""
    import datasets
    from PIL import Image

    from core.data import DatasetStore

    settings = get_settings()
    root = settings.workspace / "imports" / "col-shapes"
    root.mkdir(parents=True, exist_ok=True)
    paths, labels = [], []
    for c, value in (("dark", 30), ("light", 220)):
        for i in range(6):
            Image.new("L", (20, 20), value + i).save(root / f"{c}{i}.png")
            paths.append(f"col-shapes/{c}{i}.png")
            labels.append(c)
    paths.append("col-shapes/gone.png")
    labels.append("dark")
    DatasetStore(settings.datasets_dir).save(datasets.Dataset.from_dict({"file": paths, "tone": labels}),
                                             "tone-files", "test fixture")
    at = open_page("pages/build_models.py")
    at.selectbox(key="bn_data_cnn").set_value("tone-files").run()
    at.selectbox(key="bn_label_tone-files").set_value("tone").run()
    assert at.error  # the numeric columns are the default inputs: this table has none
    at.selectbox(key="bn_image_tone-files").set_value("file").run()
    at.number_input(key="bn_image_size").set_value(10).run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    table = next(d.value for d in at.dataframe if "parameters" in d.value.columns)
    assert table["output shape"].iloc[0] == "B × 32 × 10 × 10"
    assert table["settings"].iloc[0].startswith("in_channels=1")
    head = next(m.value for m in at.markdown if "Layer table" in m.value)
    assert "input (1, 10, 10) per example" in head and "2 classes" in head, head
    assert any("1 missing files" in w.value for w in at.warning), [w.value for w in at.warning]
