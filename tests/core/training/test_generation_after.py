"""After a causal-lm / seq2seq run: batch inference over the evaluation split (the same texts as one prompt at a
time, throughput, ROUGE against the references), int8 vs fp32 in the shrink table (perplexity / ROUGE-L on the
eval split, sizes on disk, the ONNX row of a causal LM), and the packing-or-padding choice."""
import math
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


# --- int8 (and ONNX for a causal LM) vs fp32 --------------------------------------------------------------------

NEXT_TOKEN_AGREEMENT = 0.75  # a barely trained tiny LM has near-ties: at least 75 % of int8's argmax next tokens
LOG_PERPLEXITY_TOLERANCE = 0.05  # |log ppl(int8) - log ppl(fp32)| (nats per token)


def _run(settings, config):
    from core.training import JobManager

    jobs = JobManager(settings=settings)
    try:
        rid = jobs.submit(config)
        assert jobs.wait(rid, 300) == "completed", jobs.store.get(rid).message
        return jobs.store.get(rid)
    finally:
        jobs.shutdown()


@pytest.fixture(scope="module")
def lm_run(models, settings):
    # the `text` column in blocks of 8 tokens: 3 evaluation blocks
    return _run(settings, causal(models, columns={"text": "text"}, max_length=8, max_steps=6, eval_steps=6))


@pytest.fixture(scope="module")
def lm_report(lm_run, settings):
    from core.training.shrink import ShrinkOptions, quantize

    return quantize(lm_run, settings, ShrinkOptions(latency_rows=2, repeats=1, batch_size=2))


def _by_hand_perplexity(model, blocks, rows: int = 2) -> tuple[float, list[int]]:
    """In batches of `rows` blocks, as the report scored them (int8 activations are quantised per batch)."""
    import torch

    ids = torch.tensor(blocks)
    with torch.no_grad():
        logits = torch.cat([model(input_ids=ids[i:i + rows]).logits for i in range(0, len(ids), rows)])
    nll = torch.nn.functional.cross_entropy(logits[:, :-1].reshape(-1, logits.size(-1)), ids[:, 1:].reshape(-1))
    return math.exp(float(nll)), logits[:, :-1].argmax(-1).reshape(-1).tolist()


def test_causal_lm_int8_and_onnx_perplexity_against_fp32(lm_run, lm_report, models, settings):
    from pathlib import Path

    from transformers import AutoModelForCausalLM

    from core.training import generation as G
    from core.training.shrink import FP32, INT8, ONNX, ONNX_INT8, load_quantized

    r = lm_report
    assert [v.name for v in r.variants] == [FP32, INT8, ONNX, ONNX_INT8] and r.unit == "block"
    fp32, int8, onnx, onnx8 = r.variants
    blocks = G.prepare(TrainingConfig.from_dict(lm_run.config), settings, lm_run.model_dir).eval["input_ids"]
    assert r.eval_rows == len(blocks) == 3
    # fp32: the run's own perplexity, and by hand from the saved model's logits
    assert fp32.metrics["perplexity"] == pytest.approx(lm_run.final_metrics["perplexity"], rel=1e-4)
    ppl, top = _by_hand_perplexity(AutoModelForCausalLM.from_pretrained(lm_run.model_dir).eval(), blocks)
    assert fp32.metrics["perplexity"] == pytest.approx(ppl, rel=1e-5)
    right = sum(t == b for t, b in zip(top, [x for blk in blocks for x in blk[1:]], strict=True))
    assert fp32.metrics["next-token accuracy"] == pytest.approx(right / len(top))
    # int8: the saved file reloaded gives the table's perplexity and agreement
    q_ppl, q_top = _by_hand_perplexity(load_quantized(lm_run), blocks)
    assert int8.metrics["perplexity"] == pytest.approx(q_ppl, rel=1e-5)
    assert int8.agreement == pytest.approx(sum(a == b for a, b in zip(q_top, top, strict=True)) / len(top))
    assert int8.agreement >= NEXT_TOKEN_AGREEMENT
    assert abs(math.log(int8.metrics["perplexity"]) - math.log(ppl)) <= LOG_PERPLEXITY_TOLERANCE
    # ONNX: the exported forward pass, the same logits within float error
    assert onnx.ok and not onnx.note and onnx.agreement == 1.0 and onnx.max_abs_diff < 1e-4
    assert onnx.metrics["perplexity"] == pytest.approx(ppl, rel=1e-5)
    assert onnx8.ok and abs(math.log(onnx8.metrics["perplexity"]) - math.log(ppl)) <= LOG_PERPLEXITY_TOLERANCE
    # sizes: the files on disk
    run_dir = Path(lm_run.model_dir).parent
    assert fp32.size_bytes == (Path(lm_run.model_dir) / "model.safetensors").stat().st_size
    assert int8.size_bytes == (run_dir / "quantized" / "model_int8.pt").stat().st_size
    assert onnx.size_bytes >= (run_dir / "onnx" / "model.onnx").stat().st_size
    for v in r.variants:
        assert v.ms_batch1 > 0 and v.ms_batched > 0
    assert any("tied weights" in n for n in r.notes)
    table = r.table()
    assert {"perplexity", "next-token accuracy", "ms / block, batch 1", "ms / block, batch 2"} <= set(table[0])


def test_gpt2_conv1d_becomes_linear_with_the_same_logits(models):
    import torch
    from transformers import AutoModelForCausalLM
    from transformers.pytorch_utils import Conv1D

    from core.training.shrink import linear_layers, quantize_model

    model = AutoModelForCausalLM.from_pretrained(str(models.gpt)).eval()
    ids = torch.tensor([[101, 1996, 4937, 2938, 2006], [101, 1037, 3899, 2743, 102]])
    with torch.no_grad():
        before = model(input_ids=ids).logits
        converted = linear_layers(model)
        after = converted(input_ids=ids).logits
    assert not any(isinstance(m, Conv1D) for m in converted.modules())
    torch.testing.assert_close(after, before, atol=1e-5, rtol=1e-5)
    q = quantize_model(AutoModelForCausalLM.from_pretrained(str(models.gpt)).eval())
    dynamic = [n for n, m in q.named_modules() if type(m).__name__ == "Linear" and "quantized" in type(m).__module__]
    assert len(dynamic) == 2 * 4 + 1  # per layer c_attn, c_proj, mlp c_fc, mlp c_proj; and the LM head


def test_seq2seq_int8_rouge_by_hand_and_no_onnx(models, settings):
    import torch

    from core.nlp.metrics import rouge
    from core.training import generation as G
    from core.training.shrink import FP32, INT8, ONNX, ShrinkOptions, load_quantized, quantize

    rec = _run(settings, seq2seq(models))
    r = quantize(rec, settings, ShrinkOptions(latency_rows=2, repeats=1, batch_size=2))
    assert [v.name for v in r.variants] == [FP32, INT8, ONNX]
    fp32, int8, onnx = r.variants
    assert not onnx.ok and "not offered for sequence-to-sequence" in onnx.note and r.onnx.startswith("ONNX: not")
    assert fp32.metrics["ROUGE-L"] == pytest.approx(rec.final_metrics["rougeL"], abs=1e-9)  # the run's own score
    p = G.prepare(seq2seq(models), settings, rec.model_dir)
    tok = p.tokenizer
    refs = tok.batch_decode([[t for t in row] for row in p.eval["labels"]], skip_special_tokens=True)
    q = load_quantized(rec)
    texts = []
    for row in p.eval:
        x = {"input_ids": torch.tensor([row["input_ids"]]), "attention_mask": torch.tensor([row["attention_mask"]])}
        texts.append(tok.decode(q.generate(**x, max_length=8, num_beams=1, do_sample=False)[0],
                                skip_special_tokens=True))
    by_hand = sum(rouge(t, ref)["rougeL"] for t, ref in zip(texts, refs, strict=True)) / len(refs)
    assert int8.metrics["ROUGE-L"] == pytest.approx(by_hand)
    assert 0 <= int8.agreement <= 1 and int8.max_abs_diff is None and int8.ms_batch1 > 0
    assert any("greedy generate()" in n for n in r.notes)


def test_shrink_refuses_a_run_without_a_model(models, settings):
    from core.training.shrink import quantize

    rec = SimpleNamespace(id="x1", config=causal(models).__dict__, model_dir=None, status="failed", plan={})
    with pytest.raises(ValueError, match="run x1 has no saved model"):
        quantize(rec, settings)


# --- causal LM: packing or padding -------------------------------------------------------------------------------

def test_padding_rows_and_collator_by_hand(models):
    import datasets
    from transformers import AutoTokenizer

    from core.training import generation as G

    tok = AutoTokenizer.from_pretrained(str(models.gpt))
    rows = ["the cat sat", "   ", "a dog ran in the park today", "hello"]
    ds = G.lm_dataset(datasets.Dataset.from_dict({"t": rows}), "t", tok, 5, packing=False)
    full = [tok(r)["input_ids"] for r in rows if r.strip()]  # [CLS] … [SEP]: the end token is already there
    assert ds["input_ids"] == [x[:5] for x in full]  # the blank row skipped, the long one cut to 5
    assert ds["length"] == [5, 5, 3]
    batch = G.PadCollator(tok)([ds[i] for i in range(3)])
    assert batch["input_ids"].tolist()[2] == full[2] + [tok.pad_token_id] * 2
    assert batch["labels"].tolist()[2] == full[2] + [-100, -100]
    assert batch["attention_mask"].tolist()[2] == [1, 1, 1, 0, 0]
    # by position, not by id: a tokenizer that pads with its end token keeps each row's real end in the loss
    tok.pad_token = tok.sep_token
    batch = G.PadCollator(tok)([ds[2], ds[0]])
    assert batch["labels"].tolist()[0] == full[2] + [-100, -100] and full[2][-1] == tok.sep_token_id


def test_packing_false_is_a_causal_lm_choice():
    with pytest.raises(ConfigError) as e:
        TrainingConfig(task="seq2seq", columns={"source": "a", "target": "b"}, packing=False).validate()
    assert e.value.field == "packing" and "causal-lm choice" in e.value.message
    for bad in ("no", 0, None):
        with pytest.raises(ConfigError) as e:
            TrainingConfig(task="causal-lm", columns={"text": "a"}, packing=bad).validate()
        assert e.value.field == "packing"
    TrainingConfig(task="causal-lm", columns={"text": "a"}, packing=False).validate()


def test_a_padded_run_trains_scores_and_exports(models, settings, tmp_path, capsys):
    import torch

    from core.training import generation as G
    from core.training.generation_export import export_script
    from core.training.shrink import ShrinkOptions, quantize

    config = causal(models, columns={"text": "text"}, packing=False, max_length=6, max_steps=4)
    rec = _run(settings, config)
    assert rec.plan["packing"] is False
    fm = rec.final_metrics
    assert fm["perplexity"] == pytest.approx(math.exp(fm["loss"])) and fm["unigram_perplexity"] > 1
    p = G.prepare(config, settings, rec.model_dir)
    _, ev, _ = G.load_rows(config, settings)
    assert len(p.eval) == len(ev) and rec.plan["eval_rows"] == len(ev)  # one example per row
    # the shrink table's fp32 perplexity: exp(mean loss per predicted, unpadded token), by hand
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(rec.model_dir).eval()
    nll, n = 0.0, 0
    with torch.no_grad():
        for row in p.eval["input_ids"]:
            ids = torch.tensor([row])
            logits = model(input_ids=ids).logits
            nll += float(torch.nn.functional.cross_entropy(logits[0, :-1], ids[0, 1:], reduction="sum"))
            n += len(row) - 1
    r = quantize(rec, settings, ShrinkOptions(latency_rows=2, repeats=1, batch_size=2, onnx=False))
    assert r.unit == "row" and r.variants[0].metrics["perplexity"] == pytest.approx(math.exp(nll / n), rel=1e-5)
    # the mapped example says padding; the export script pads the same way and runs
    ex = T.mapped_example(config, settings, str(models.gpt))
    assert any(note.startswith("Padding:") for note in ex.notes)
    script = export_script(config, settings, rec.id, rec.plan.get("eval_steps"), output=str(tmp_path / "out"))
    assert "def collator(rows)" in script and "group_texts" not in script
    exec(compile(script, "export", "exec"), {"__name__": "export"})  # noqa: S102 - running the exported script is the test
    assert "perplexity" in capsys.readouterr().out
