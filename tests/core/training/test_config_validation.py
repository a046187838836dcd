"""TrainingConfig.validate (issue #13): every field's type, finiteness and range, before any data or model.

Hostile values go into every field; each is refused with a ConfigError naming that very field, unless
the value is a legitimate one for it (text for a text field, None for an optional one, a bool for the
one bool field). A bool is not a number here, and a float is not a count.
"""
import dataclasses
import math

import pytest

from core.training import ConfigError, TrainingConfig
from core.training import config as C

HOSTILE = [float("nan"), float("inf"), -float("inf"), True, False, "a string", "16", None, 1e9, 10**12, 10**30,
           -5, 0, 2000.5, [16], {"x": 1}, b"bytes"]
TEXT_FIELDS = {"model", "dataset", "text_column", "text_pair_column", "label_column", "name"}
OPTIONAL = {"dataset_version", "text_pair_column", "max_train_samples", "max_eval_samples", "eval_steps",
            "save_steps"}
CHOICES = {"scheduler", "precision", "optimizer"}


def legitimate(field: str, value) -> bool:
    """Whether `value` is a valid setting of `field` on its own (the default config otherwise)."""
    if value is None:
        return field in OPTIONAL
    if field in TEXT_FIELDS:
        return isinstance(value, str) and value not in ("text",)  # 'text' collides with the text column
    if field == "group_by_length":
        return isinstance(value, bool)
    if field == "packing":  # False (padding) is a causal-lm choice: the default task refuses it
        return value is True
    if value == 0 and type(value) is int:  # 0 is a real setting of these (and of nothing else)
        return field in {"weight_decay", "warmup", "seed", "early_stopping_patience"}
    return False  # numbers and choices: no other HOSTILE value is a valid one


CASES = [(f.name, v) for f in dataclasses.fields(TrainingConfig) for v in HOSTILE
         if not legitimate(f.name, v)]


def test_the_defaults_and_the_documented_edge_values_are_valid():
    TrainingConfig().validate()
    TrainingConfig(max_steps=10, epochs=0.0, warmup=5, eval_steps=3, save_steps=3, dataset_version=2,
                   max_train_samples=1, seed=0, learning_rate=1, text_pair_column=None).validate()
    TrainingConfig(batch_size=C.MAX_BATCH_SIZE, max_length=C.MAX_BATCH_TOKENS // C.MAX_BATCH_SIZE,
                   grad_accumulation=C.MAX_GRAD_ACCUMULATION, seed=2**32 - 1).validate()


@pytest.mark.parametrize("field, value", CASES, ids=[f"{f}={v!r:.20}" for f, v in CASES])
def test_hostile_values_are_refused_naming_the_field(field, value):
    config = TrainingConfig(**{field: value})
    with pytest.raises(ConfigError) as e:
        config.validate()
    assert e.value.field == field
    assert e.value.message and str(e.value).startswith(f"{field}: ")


@pytest.mark.parametrize("change, field, words", [
    (dict(batch_size=1e9), "batch_size", "whole number from 1 to 4,096, got 1000000000.0"),
    (dict(batch_size=10**9), "batch_size", "from 1 to 4,096, got 1,000,000,000"),
    (dict(grad_accumulation=1e12), "grad_accumulation", "whole number"),
    (dict(grad_accumulation=10**12), "grad_accumulation", "from 1 to 1,024"),
    (dict(learning_rate=float("nan")), "learning_rate", "finite"),
    (dict(learning_rate=0.0), "learning_rate", r"\(0, 1\]"),
    (dict(epochs=float("inf")), "epochs", "finite"),
    (dict(epochs=0.0), "epochs", "positive number of epochs"),
    (dict(max_steps=0), "max_steps", "-1 \\(use epochs\\)"),
    (dict(max_steps=-2), "max_steps", "from -1"),
    (dict(warmup=2.5), "warmup", "whole number of steps"),
    (dict(warmup=-0.1), "warmup", "from 0"),
    (dict(weight_decay=1.0), "weight_decay", r"\[0, 1\)"),
    (dict(eval_fraction=1.0), "eval_fraction", "between 0 and 1"),
    (dict(seed=2**32), "seed", "4,294,967,295"),
    (dict(seed=-1), "seed", "from 0"),
    (dict(dataset_version=True), "dataset_version", "whole number or empty"),
    (dict(batch_size=4096, max_length=8192), "batch_size", "33,554,432 tokens per step, over the memory cap"),
    (dict(model="   "), "model", "must not be empty"),
    (dict(name="x" * 5000), "name", "at most 4,096"),
    (dict(dataset="a\x00b"), "dataset", "NUL"),
    (dict(text_pair_column="text"), "text_pair_column", "must differ"),
    (dict(label_column="text"), "label_column", "must differ"),
    (dict(scheduler=["linear"]), "scheduler", "one of linear"),
])
def test_each_refusal_says_what_to_change(change, field, words):
    with pytest.raises(ConfigError, match=words) as e:
        TrainingConfig(**change).validate()
    assert e.value.field == field


def test_from_dict_refuses_what_is_not_a_config():
    with pytest.raises(ConfigError) as e:
        TrainingConfig.from_dict(["batch_size", 16])
    assert e.value.field == "config"
    with pytest.raises(ConfigError) as e:
        TrainingConfig.from_dict({"batch_size": 16, 3: "x", "zzz": 1})  # a non-text key must not break sorting
    assert e.value.field == "3"
    config = TrainingConfig.from_dict({"batch_size": "16"})  # a stored config with a string is caught on validate
    with pytest.raises(ConfigError) as e:
        config.validate()
    assert e.value.field == "batch_size"


def test_the_submit_path_validates_before_touching_data_or_model(tmp_path):
    """runner.prepare (what JobManager.submit calls) refuses before it resolves the model or reads data."""
    from core.settings import Settings
    from core.training.runner import prepare

    settings = Settings(workspace=tmp_path / "ws")
    for change, field in ((dict(batch_size=1e9), "batch_size"), (dict(grad_accumulation=10**12), "grad_accumulation"),
                          (dict(learning_rate=math.nan), "learning_rate"), (dict(epochs=True), "epochs")):
        with pytest.raises(ConfigError) as e:
            prepare(TrainingConfig(model="no-such-model", dataset="no-such-data", **change), settings)
        assert e.value.field == field
    assert not (tmp_path / "ws").exists()  # nothing was created


def test_the_forms_limits_are_the_validators_limits():
    """The launch form's widgets stop where validate() does, so the form never offers a refused value."""
    import inspect

    from components import training_form

    source = inspect.getsource(training_form.launch_form)
    for name in ("MAX_LENGTH", "MAX_BATCH_SIZE", "MAX_GRAD_ACCUMULATION", "MAX_STEPS", "MAX_SAMPLES"):
        assert name in source
    assert C.COUNTS["batch_size"] == (1, C.MAX_BATCH_SIZE) and C.COUNTS["max_length"] == (1, C.MAX_LENGTH)
