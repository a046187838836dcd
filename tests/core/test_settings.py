from pathlib import Path

import pytest

from core.settings import Settings


def test_defaults_run_offline_on_cpu():
    s = Settings.from_env({})
    assert s.workspace == Path("workspace")
    assert s.device == "auto"
    assert s.offline is True
    assert s.max_tensor_elements == 10_000_000
    assert s.runs_db == Path("workspace/runs.sqlite")


def test_env_vars_are_parsed_by_type():
    s = Settings.from_env({
        "TORCHLAB_WORKSPACE": "/tmp/tl", "TORCHLAB_DEVICE": "cpu", "TORCHLAB_OFFLINE": "0",
        "TORCHLAB_MAX_TENSOR_ELEMENTS": "1_000", "TORCHLAB_EXPR_TIMEOUT_S": "2.5",
    })
    assert s.workspace == Path("/tmp/tl")
    assert s.device == "cpu"
    assert s.offline is False
    assert s.max_tensor_elements == 1000
    assert s.expr_timeout_s == 2.5
    assert s.datasets_dir == Path("/tmp/tl/datasets")


def test_hf_hub_offline_counts_as_offline():
    assert Settings.from_env({"HF_HUB_OFFLINE": "1"}).offline is True


@pytest.mark.parametrize("env, named", [
    ({"TORCHLAB_MAX_UPLOAD_MB": "lots"}, "TORCHLAB_MAX_UPLOAD_MB"),
    ({"TORCHLAB_MAX_UPLOAD_MB": "-5"}, "TORCHLAB_MAX_UPLOAD_MB"),
    ({"TORCHLAB_OFFLINE": "maybe"}, "TORCHLAB_OFFLINE"),
    ({"TORCHLAB_DEVICE": "tpu"}, "TORCHLAB_DEVICE"),
])
def test_bad_values_name_the_variable(env, named):
    with pytest.raises(ValueError, match=named):
        Settings.from_env(env)


def test_env_name_for_cap_messages():
    assert Settings().env_name("max_tensor_elements") == "TORCHLAB_MAX_TENSOR_ELEMENTS"
