"""After a causal-lm / seq2seq run: batch inference over the evaluation split (the same texts as one prompt at a
time, throughput, ROUGE against the references), int8 vs fp32 in the shrink table (perplexity / ROUGE-L on the
eval split, sizes on disk, the ONNX row of a causal LM), and the packing-or-padding choice."""
from types import SimpleNamespace

import pytest

from core.settings import Settings
from core.training import ConfigError, TrainingConfig
from core.training import generation_tools as T
from tests.core.models.model_fixtures import tiny_gpt2
from tests.core.training.generation_fixtures import text_dataset, tiny_bart


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    root = tmp_path_factory.mktemp("gen-after-models")
    return SimpleNamespace(gpt=tiny_gpt2(root / "gpt"), bart=tiny_bart(root / "bart"))


@pytest.fixture(scope="module")
def settings(tmp_path_factory):
    s = Settings(workspace=tmp_path_factory.mktemp("gen-after-ws"))
    text_dataset(s)
    return s


def causal(models, **kw):
    base = dict(task="causal-lm", model=str(models.gpt), dataset="tiny-text", columns={"text": "document"},
                max_length=16, batch_size=4, learning_rate=5e-3, max_steps=4, warmup=0, eval_steps=4)
    return TrainingConfig(**{**base, **kw})


def seq2seq(models, **kw):
    base = dict(task="seq2seq", model=str(models.bart), dataset="tiny-text",
                columns={"source": "document", "target": "summary"}, max_length=24, max_target_length=8,
                batch_size=8, learning_rate=5e-3, max_steps=4, warmup=0, eval_steps=4, max_eval_samples=8)
    return TrainingConfig(**{**base, **kw})


PROMPTS = ["the cat", "a dog ran in the park today and", "x", "the bird sang at dawn over"]
SOURCES = ["today the cat sat on the mat", "a dog", "the bird sang at dawn over the hills and far away"]


@pytest.mark.parametrize("kind", ["gpt", "bart"])
@pytest.mark.parametrize("decoding", [{"max_new_tokens": 7}, {"max_new_tokens": 5, "num_beams": 3}])
def test_batched_generation_gives_the_one_at_a_time_texts(models, kind, decoding):
    gen = T.load_generator(str(getattr(models, kind)))
    prompts = PROMPTS if kind == "gpt" else SOURCES  # prompts of different lengths: the batch is padded
    one = [T.generate(gen, p, decoding) for p in prompts]
    for size in (1, 2, 4):
        texts, parts, counts = T.generate_many(gen, prompts, decoding, batch_size=size)
        assert texts == one, size
        # random weights never emit [SEP] within a few tokens: every row generates max_new_tokens
        assert counts == [decoding["max_new_tokens"]] * len(prompts)
        if kind == "gpt":
            assert all(t.startswith(p) for t, p in zip(texts, prompts, strict=True))
            assert all(t.endswith(part) and part for t, part in zip(texts, parts, strict=True))
        else:
            assert parts == texts


def test_new_tokens_count_up_to_the_first_end_token():
    assert T._new_length([5, 6, 102, 0, 0], {102}) == 3
    assert T._new_length([5, 6, 7], {102}) == 3
    assert T._new_length([102, 102], {102}) == 1


def test_batch_over_the_eval_split_scores_against_the_references(models, settings):
    from rouge_score import rouge_scorer

    from core.training import generation as G

    scorer = rouge_scorer.RougeScorer(["rouge1", "rougeL"])
    # causal: the first 6 words of each eval row prompt, the rest of the row is the reference
    out = T.batch_generate(str(models.gpt), causal(models), settings, {"max_new_tokens": 4}, limit=3, batch_size=2)
    _, ev, _ = G.load_rows(causal(models), settings)
    docs = [d for d in ev["document"] if len(d.split()) > T.PROMPT_WORDS][:3]
    assert [r["prompt"] for r in out.rows] == [" ".join(d.split()[:6]) for d in docs]
    assert [r["reference"] for r in out.rows] == [" ".join(d.split()[6:]) for d in docs]
    assert out.new_tokens == 12 and out.column == "document" and out.batch_size == 2
    assert out.examples_per_s == pytest.approx(3 / out.seconds) and out.tokens_per_s == pytest.approx(12 / out.seconds)
    for key in ("rouge1", "rougeL"):
        by_hand = [scorer.score(r["reference"], r["generated"])[key].fmeasure for r in out.rows]
        assert out.scores[key] == pytest.approx(sum(by_hand) / 3)
    assert [r["ROUGE-L"] for r in out.rows] == [round(scorer.score(r["reference"], r["generated"])["rougeL"].fmeasure, 4)
                                                for r in out.rows]
    # seq2seq: the sources in, their targets as references; the outputs equal generate() one at a time
    cfg = seq2seq(models)
    out = T.batch_generate(str(models.bart), cfg, settings, {"max_new_tokens": 3}, limit=5, batch_size=4)
    _, ev, _ = G.load_rows(cfg, settings)
    assert [r["source"] for r in out.rows] == list(ev["document"][:5])
    assert [r["reference"] for r in out.rows] == list(ev["summary"][:5])
    gen = T.load_generator(str(models.bart))
    assert [r["generated"] for r in out.rows] == [T.generate(gen, s, {"max_new_tokens": 3}) for s in ev["document"][:5]]


def test_batch_inference_refuses_bad_input(models, settings):
    gen = T.load_generator(str(models.gpt))
    for kw, field in (({"batch_size": 0}, "batch_size"), ({"batch_size": 1.5}, "batch_size"),
                      ({"s": {"num_beams": 0}}, "settings.num_beams")):
        with pytest.raises(ConfigError) as e:
            T.generate_many(gen, ["the cat"], kw.get("s"), kw.get("batch_size", 8))
        assert e.value.field == field
    with pytest.raises(ConfigError) as e:
        T.generate_many(gen, ["the cat", None], None)
    assert e.value.field == "prompt" and "row 1" in e.value.message
    with pytest.raises(ConfigError) as e:
        T.generate_many(T.load_generator(str(models.bart)), ["a", "  "], None)
    assert "row 1: the source is empty" in str(e.value)
    for limit in (0, T.MAX_BATCH_ROWS + 1, True):
        with pytest.raises(ConfigError) as e:
            T.batch_generate(gen, causal(models), settings, None, limit=limit)
        assert e.value.field == "rows"
    # every sentence of the `text` column has 6 words or fewer: nothing to prompt with and compare against
    with pytest.raises(ConfigError) as e:
        T.batch_generate(gen, causal(models, columns={"text": "text"}), settings, None, limit=4)
    assert e.value.field == "columns.text" and "more than 6 words" in e.value.message
