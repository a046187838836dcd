"""Hostile input to core.tokenizers (issue #13): names that try to leave the tokenizers folder, broken
tokenizer.json files, regexes that make the Rust library panic or backtrack, absurd sizes.

Every refusal must be the module's own error type (AssetError / TextError / TrainError) with a message,
never a raw exception and never a PanicException (a BaseException that `except Exception` misses).
"""
import dataclasses
import importlib
import json
import os
import shutil
import time
from pathlib import Path

import pytest

from core.assets import AssetError
from core.settings import get_settings
from core.tokenizers import guard
from core.tokenizers import training as TT

T = importlib.import_module("core.tokenizers.library")  # the package re-exports a function named compare

CORPUS = ["the cat sat on the mat", "the dog sat on the log", "a cat and a dog", "aaaa bbbb abab"] * 20
PANIC_REGEX = "^(a|a)*$"  # Oniguruma gives up (retry-limit-in-match) on "aaa…!" and the Rust crate panics
SLOW_REGEX = "(?:a+)+b"  # no panic, but quadratic: seconds on tens of thousands of 'a'


@pytest.fixture(scope="module")
def outside(tmp_path_factory):
    """A valid trained tokenizer in a workspace that is NOT the one under test."""
    ws = tmp_path_factory.mktemp("outside")
    s = dataclasses.replace(get_settings(), workspace=ws)
    done = TT.train(TT.TrainConfig("valid", "WordPiece", vocab_size=60, min_frequency=1), CORPUS, settings=s)
    return Path(done.path)


@pytest.fixture
def settings(tmp_path):
    s = dataclasses.replace(get_settings(), workspace=tmp_path / "ws")
    s.tokenizers_dir.mkdir(parents=True)
    return s


def plant(settings, name: str, tokenizer_json: str | bytes, config: str | None = None) -> str:
    """A folder in the tokenizers folder holding the given tokenizer.json; returns its trained: name."""
    folder = settings.tokenizers_dir / name
    folder.mkdir()
    data = tokenizer_json.encode() if isinstance(tokenizer_json, str) else tokenizer_json
    (folder / "tokenizer.json").write_bytes(data)
    if config is not None:
        (folder / "tokenizer_config.json").write_text(config)
    return T.TRAINED_PREFIX + name


def with_split(outside: Path, regex: str) -> str:
    """The valid tokenizer.json with its pre-tokenizer replaced by a Split on `regex`."""
    doc = json.loads((outside / "tokenizer.json").read_text())
    doc["pre_tokenizer"] = {"type": "Split", "pattern": {"Regex": regex}, "behavior": "Isolated", "invert": False}
    doc["normalizer"] = None
    return json.dumps(doc)


# --------------------------------------------------------------------------- names never escape the folder
def escapes(outside: Path, settings) -> list[str]:
    rel = os.path.relpath(outside, settings.tokenizers_dir)
    return [rel, str(outside), f"../../{outside.parent.parent.name}/tokenizers/valid", "..", ".", "",
            "valid/../valid", "..\\valid", "%2e%2e%2fvalid", "valid\x00", "~/valid", "./valid", " ../valid",
            "\uff0e\uff0e/valid", "x" * 65, ".hidden", rel + "/"]


def test_trained_names_never_load_from_outside_the_tokenizers_folder(outside, settings):
    assert T.load(f"trained:{outside.name}", dataclasses.replace(settings, workspace=outside.parent.parent))
    for name in escapes(outside, settings):
        with pytest.raises(AssetError, match="trained tokenizer") as e:
            T.load(T.TRAINED_PREFIX + name, settings)
        assert "names are" in str(e.value) or "no trained tokenizer" in str(e.value), name


def test_links_out_of_the_folder_are_refused_and_not_listed(outside, settings):
    tdir = settings.tokenizers_dir
    (tdir / "folder-link").symlink_to(outside, target_is_directory=True)  # the whole folder is a link
    (tdir / "file-link").mkdir()
    (tdir / "file-link" / "tokenizer.json").symlink_to(outside / "tokenizer.json")  # only the file is
    (tdir / "loop").symlink_to(tdir / "loop")
    shutil.copytree(outside, tdir / "inside")  # a real copy inside: loads
    for name in ("folder-link", "file-link", "loop"):
        with pytest.raises(AssetError, match="outside|can't be read safely|names are"):
            T.load(f"trained:{name}", settings)
    assert T.load("trained:inside", settings)("cat")["input_ids"][1:-1] == T.load(
        "trained:inside", settings).convert_tokens_to_ids(["cat"])
    listed = [n for n in T.available(settings) if n.startswith(T.TRAINED_PREFIX)]
    assert listed == ["trained:inside"]


def test_a_workspace_reached_through_a_link_still_works(outside, tmp_path):
    """Resolving symlinks must not refuse everything when the workspace itself is a link."""
    real = tmp_path / "real-ws"
    shutil.copytree(outside.parent, real / "tokenizers")
    (tmp_path / "ws-link").symlink_to(real, target_is_directory=True)
    s = dataclasses.replace(get_settings(), workspace=tmp_path / "ws-link")
    assert T.available(s)[-1] == "trained:valid"
    assert T.load("trained:valid", s).tokenize("the cat") == ["the", "cat"]


# --------------------------------------------------------------------------- malformed tokenizer.json
@pytest.mark.parametrize("content, words", [
    ("not json{", "not valid JSON"),
    ("", "not valid JSON"),
    ("{}", 'no "model"'),
    ("[]", "JSON list, not an object"),
    ("null", "NoneType"),
    ('{"model": 5}', 'no "model"'),
    ('{"model": {"type": "BPE"}}', 'no "model"'),
    ('{"model": {"type": "BPE", "vocab": {"a": 0}, "merges": []}, "pre_tokenizer": {"type": "Nope"}}',
     "does not match the tokenizers format"),
    ('{"model": {"type": "Unigram", "vocab": "abc"}}', "does not match the tokenizers format"),
    ("[" * 100_000, "can't be read as JSON"),
    (b"\xff\xfe{\x00}", "not UTF-8"),
])
def test_malformed_tokenizer_json_is_refused_with_what_is_wrong(settings, content, words):
    name = plant(settings, "broken", content)
    with pytest.raises(AssetError, match=words) as e:
        T.load(name, settings)
    assert "tokenizer.json" in str(e.value) or "tokenizers format" in str(e.value)


def test_bad_tokenizer_config_and_bad_regex(outside, settings):
    good = (outside / "tokenizer.json").read_text()
    with pytest.raises(AssetError, match="tokenizer_config.json is not valid JSON"):
        T.load(plant(settings, "bad-config", good, config="{nope"), settings)
    with pytest.raises(AssetError, match="does not load as a tokenizer"):
        T.load(plant(settings, "odd-config", good, config='{"tokenizer_class": 5}'), settings)
    with pytest.raises(AssetError, match="unmatched parenthesis"):
        T.load(plant(settings, "bad-regex", with_split(outside, "(")), settings)


# --------------------------------------------------------------------------- panics never escape
def test_rust_errors_turn_panics_into_the_callers_error_but_let_control_flow_through():
    PanicException = type("PanicException", (BaseException,), {})  # as pyo3 defines it

    with pytest.raises(T.TextError, match="crashed \\(boom\\)"):
        with guard.rust_errors(T.TextError, "encoding"):
            raise PanicException("boom")
    with pytest.raises(T.TextError, match="encoding: bad file"):
        with guard.rust_errors(T.TextError, "encoding"):
            raise Exception("bad file")
    with pytest.raises(KeyboardInterrupt):
        with guard.rust_errors(T.TextError, "encoding"):
            raise KeyboardInterrupt


def test_a_regex_that_panics_gives_a_text_error_everywhere(outside, settings):
    tok = T.load(plant(settings, "panics", with_split(outside, PANIC_REGEX)), settings)  # the probe passes
    hostile = "a" * 40 + "!"
    with pytest.raises(BaseException) as raw:  # the library itself: a PanicException, not an Exception
        tok.backend_tokenizer.encode(hostile)
    assert guard.is_panic(raw.value) and not isinstance(raw.value, Exception)
    with pytest.raises(T.TextError, match="crashed.*retry-limit"):
        T.compare({"panics": tok}, hostile, settings)
    with pytest.raises(T.TextError, match="crashed"):
        T.batch_encode(tok, [hostile, "a b"], padding="do_not_pad")
    with pytest.raises(T.TextError, match="crashed"):
        TT.corpus_stats("panics", tok, [hostile], max_length=8)
    assert T.compare({"panics": tok}, "a b", settings).results[0].n_tokens > 0  # other text still works


def test_stride_over_half_the_window_of_a_pair_no_longer_panics():
    """longest_first + overflow on pairs panics in Rust when stride >= each side's share; pairs window
    only the second part (only_second), so the stride is checked against what that part really gets."""
    bert = T.load("bert-wordpiece-uncased")
    a, b = " ".join(["w"] * 40), " ".join(["v"] * 40)
    with pytest.raises(T.TextError, match="first part has 40 tokens"):
        T.batch_encode(bert, [a], pairs=[b], max_length=10, overflow=True, stride=5)
    bv = T.batch_encode(bert, ["question"], pairs=[b], max_length=10, overflow=True, stride=2, padding="longest")
    assert bv.shape == (10, 10)  # 40 tokens, windows of 10-3-1 = 6 advancing by 4: ceil((40-6)/4) + 1
    assert all(row[:3] == ["[CLS]", "question", "[SEP]"] for row in bv.tokens)


# --------------------------------------------------------------------------- time budget
def test_a_backtracking_regex_is_refused_at_its_budget_then_refused_at_once(outside, settings):
    tok = T.load(plant(settings, "slow", with_split(outside, SLOW_REGEX)), settings)
    text = "a" * 20_000  # about 0.5 s of backtracking on this machine; far more at the 200,000-character cap
    started = time.perf_counter()
    with pytest.raises(T.TextError, match="0.05 s budget"):
        T.encode_view("slow", tok, text, budget_s=0.05)
    assert time.perf_counter() - started < 1.0
    started = time.perf_counter()
    with pytest.raises(T.TextError, match="ran past its time budget earlier"):
        T.encode_view("slow", tok, "b", budget_s=5)
    assert time.perf_counter() - started < 0.1


# --------------------------------------------------------------------------- batch & padding
@pytest.fixture(scope="module")
def bert():
    return T.load("bert-wordpiece-uncased")


def test_padding_to_max_length_without_truncation_is_refused_before_any_tensor(bert):
    lines = ["Transformers are amazing", "unaffable", "Tokenizers pad short sentences to the longest one"]
    assert [len(ids) for ids in bert(lines)["input_ids"]] == [5, 5, 12]
    with pytest.raises(T.TextError, match=r"sentence 3 has 12 tokens.*Tick \"Truncate\" or raise max_length to 12"):
        T.batch_encode(bert, lines, padding="max_length", max_length=8, truncation=False)
    ok = T.batch_encode(bert, lines, padding="max_length", max_length=12, truncation=False)
    assert ok.shape == (3, 12) and "input_ids = tensor(" in ok.tensor_repr


@pytest.mark.parametrize("change, words", [
    (dict(max_length=10**6), "max_length must be from 2|max_length must be from 1"),
    (dict(max_length=10**30), "max_length must be from"),
    (dict(max_length=True), "whole number"),
    (dict(max_length=8.5), "whole number"),
    (dict(max_length=-1), "max_length must be from"),
    (dict(stride=-2), "stride must be from"),
    (dict(padding="everything"), "padding must be one of"),
    (dict(truncation="yes"), "True or False"),
])
def test_batch_arguments_are_checked(bert, change, words):
    args = dict(padding="max_length", max_length=8, truncation=True) | change
    with pytest.raises(T.TextError, match=words):
        T.batch_encode(bert, ["a b c"], **args)


def test_huge_batches_are_refused_in_time_before_they_are_built(bert):
    long = " ".join(["word"] * 30_000)
    started = time.perf_counter()
    with pytest.raises(T.TextError, match="over the cap of 100,000"):  # ~30,000 overflow rows × 40 positions
        T.batch_encode(bert, [long], max_length=40, truncation=True, overflow=True, stride=37)
    with pytest.raises(T.TextError, match="over the 4,096 positions"):
        T.batch_encode(bert, [long], padding="longest")
    with pytest.raises(T.TextError, match="over the cap of 1,000"):
        T.batch_encode(bert, ["x"] * 1001)
    with pytest.raises(T.TextError, match="list of strings"):
        T.batch_encode(bert, ["a", None])
    assert time.perf_counter() - started < 5


def test_vocabulary_search_takes_any_text(bert):
    # '²'.isdigit() is True but int('²') raises: it is searched as text, and shown as itself
    assert T.vocab_search(bert, "²")[0][1:] == ("²", "²")
    with pytest.raises(T.TextError, match="outside the vocabulary"):
        T.vocab_search(bert, "9" * 150)  # past Python's own 4,300-digit int limit it would raise ValueError
    with pytest.raises(T.TextError, match="at most 200"):
        T.vocab_search(bert, "9" * 5000)
    assert T.vocab_search(bert, "101")[0][1] == "[CLS]"


# --------------------------------------------------------------------------- training with absurd values
@pytest.mark.parametrize("field, value", [
    ("vocab_size", 10**30), ("vocab_size", -5), ("vocab_size", 2000.5), ("vocab_size", True), ("vocab_size", "2000"),
    ("vocab_size", None), ("vocab_size", float("nan")), ("vocab_size", 0), ("vocab_size", TT.MAX_VOCAB + 1),
    ("min_frequency", 10**30), ("min_frequency", 0), ("min_frequency", float("inf")), ("min_frequency", False),
    ("model", None), ("model", "GPT"), ("pre_tokenizer", 3), ("normalizers", "NFD"), ("normalizers", ("NFD", 1)),
    ("special_tokens", ("<s>",) * 2), ("special_tokens", tuple(f"<t{i}>" for i in range(101))),
    ("special_tokens", ("x" * 65,)), ("special_tokens", "<s>"), ("name", None), ("name", 5),
])
def test_train_config_fields_are_checked_before_anything_runs(settings, field, value):
    config = dataclasses.replace(TT.TrainConfig("ok", vocab_size=100, min_frequency=1), **{field: value})
    with pytest.raises(TT.TrainError) as e:
        TT.train(config, CORPUS, settings=settings)
    assert str(e.value)
    assert list(settings.tokenizers_dir.iterdir()) == []
    with pytest.raises(TT.TrainError):
        TT.alphabet(config, CORPUS)


def test_absurd_sizes_finish_or_are_refused_in_time(settings, monkeypatch):
    started = time.perf_counter()
    done = TT.train(TT.TrainConfig("big", vocab_size=TT.MAX_VOCAB, min_frequency=1), CORPUS, settings=settings)
    assert done.vocab_size < 200 and "ran out of merges" in done.notes[0]  # the corpus ends it, not the size
    with pytest.raises(TT.TrainError, match="over the cap of 20,000,000"):
        TT.train(TT.TrainConfig("huge"), ["x" * 1_000_000] * 21, settings=settings)
    with pytest.raises(TT.TrainError, match="list of strings"):
        TT.train(TT.TrainConfig("nones"), ["a", None], settings=settings)
    monkeypatch.setattr(TT, "TRAIN_BUDGET_S", 0.0)
    progress = TT.TrainProgress()
    with pytest.raises(TT.TrainError, match="ran past the 0 s budget"):
        TT.train(TT.TrainConfig("late", vocab_size=100, min_frequency=1), CORPUS, progress, settings=settings)
    assert progress.done and not (settings.tokenizers_dir / "late").exists()
    assert time.perf_counter() - started < 20


def test_corpus_stats_arguments_are_checked(bert):
    for bad in (0, 10**30, True, 2.5):
        with pytest.raises(T.TextError, match="max_length"):
            TT.corpus_stats("bert", bert, ["a b"], max_length=bad)
    with pytest.raises(T.TextError, match="list of strings"):
        TT.corpus_stats("bert", bert, ["a", 3])
