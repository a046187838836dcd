"""CoNLL files load through the Datasets page's one loader (format detected from the suffix) into the
tokens / ner_tags columns token classification reads; a bad line is named; a binary is refused."""
import pytest

from core.data import DataError, DatasetStore
from core.data.loading import import_file, load_file_report
from core.settings import Settings

CONLL = """-DOCSTART- -X- -X- O

EU NNP B-NP B-ORG
rejects VBZ B-VP O
German JJ B-NP B-MISC
call NN I-NP O

Peter NNP B-NP B-PER
Blackburn NNP I-NP I-PER
"""


def test_a_conll_file_loads_as_tokens_and_tags(tmp_path):
    path = tmp_path / "eng.conll"
    path.write_text(CONLL, encoding="utf-8")
    settings = Settings(workspace=tmp_path / "ws")
    report = load_file_report(path, settings=settings)
    assert report.format == "conll"
    assert report.dataset["tokens"] == [["EU", "rejects", "German", "call"], ["Peter", "Blackburn"]]
    assert report.dataset["ner_tags"] == [["B-ORG", "O", "B-MISC", "O"], ["B-PER", "I-PER"]]
    ref, _ = import_file(path, "eng", "upload: eng.conll", DatasetStore(settings.datasets_dir), settings=settings)
    saved = DatasetStore(settings.datasets_dir).load(ref.name, ref.version)
    assert next(iter(saved.values()))["tokens"][1] == ["Peter", "Blackburn"]


def test_a_bad_conll_line_is_named_and_a_binary_refused(tmp_path):
    settings = Settings(workspace=tmp_path / "ws")
    bad = tmp_path / "bad.iob"
    bad.write_text("Paris B-LOC\nis O\nlovely\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"line 3: 'lovely' has a word but no tag"):
        load_file_report(bad, settings=settings)
    png = tmp_path / "image.conll"
    png.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4)
    with pytest.raises(DataError, match="not UTF-8"):
        load_file_report(png, settings=settings)
