import pytest

from tests.core.models.model_fixtures import tiny_gpt2


@pytest.fixture(scope="session")
def minilm():
    from core.models import load_model

    return load_model("minilm-l6")


@pytest.fixture(scope="session")
def gpt2(tmp_path_factory):
    from core.models import load_model

    return load_model(str(tiny_gpt2(tmp_path_factory.mktemp("tiny-gpt2"))))
