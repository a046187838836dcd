"""Causal LM and seq2seq fine-tuning: packing, shifted labels, perplexity and ROUGE against references, bad input
refused with its field and row, two short runs through the JobManager, generation from the result."""
import math
from types import SimpleNamespace

import pytest

from core.settings import Settings
from core.training import ConfigError, JobManager, TrainingConfig
from core.training import generation as G
from core.training import generation_tools as T
from tests.core.models.model_fixtures import tiny_gpt2
from tests.core.training.generation_fixtures import text_dataset, tiny_bart
from tests.core.training.training_fixtures import tiny_model


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    root = tmp_path_factory.mktemp("gen-models")
    return SimpleNamespace(gpt=tiny_gpt2(root / "gpt"), bart=tiny_bart(root / "bart"), bert=tiny_model(root / "bert"))


@pytest.fixture(scope="module")
def settings(tmp_path_factory):
    s = Settings(workspace=tmp_path_factory.mktemp("gen-ws"))
    text_dataset(s)
    return s


def causal(models, **kw):
    base = dict(task="causal-lm", model=str(models.gpt), dataset="tiny-text", columns={"text": "text"}, max_length=16,
                batch_size=4, learning_rate=5e-3, max_steps=4, warmup=0, eval_steps=4)
    return TrainingConfig(**{**base, **kw})


def seq2seq(models, **kw):
    base = dict(task="seq2seq", model=str(models.bart), dataset="tiny-text",
                columns={"source": "document", "target": "summary"}, max_length=24, max_target_length=8,
                batch_size=8, learning_rate=5e-3, max_steps=4, warmup=0, eval_steps=4, max_eval_samples=8)
    return TrainingConfig(**{**base, **kw})


def tokenizer(models):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(models.gpt))


def test_packing_blocks_hold_the_concatenated_tokens(models):
    import datasets

    tok = tokenizer(models)
    rows = ["the cat sat", "", "a dog ran in the park today", "hello"]
    blocks = G.lm_dataset(datasets.Dataset.from_dict({"t": rows}), "t", tok, 5, packing=True)
    stream = [i for r in rows if r for i in tok(r)["input_ids"]]  # [CLS] … [SEP] per non-empty row
    assert stream[-1] == tok.sep_token_id and len(stream) == 17
    assert [b for b in blocks["input_ids"]] == [stream[i:i + 5] for i in range(0, 15, 5)]  # 2 tokens left over
    assert blocks["labels"] == blocks["input_ids"]
    assert all(m == [1] * 5 for m in blocks["attention_mask"])


def test_seq2seq_labels_and_shifted_decoder_inputs(models, settings):
    from transformers import AutoModelForSeq2SeqLM, DataCollatorForSeq2Seq

    config = seq2seq(models)
    p = G.prepare(config, settings, str(models.bart))
    tok = p.tokenizer
    rows = [p.train[i] for i in range(3)]
    raw_targets = [tok.decode(r["labels"], skip_special_tokens=True) for r in rows]
    for r, t in zip(rows, raw_targets, strict=True):
        assert r["labels"] == tok(text_target=t)["input_ids"][:8]
    feats = [{k: r[k] for k in ("input_ids", "attention_mask", "labels")} for r in rows]
    feats[1]["labels"] = feats[1]["labels"][:3]  # a shorter target: its labels are padded with -100
    model = AutoModelForSeq2SeqLM.from_pretrained(str(models.bart))
    batch = DataCollatorForSeq2Seq(tok, model=model, label_pad_token_id=-100)(feats)
    labels, dec = batch["labels"].tolist(), batch["decoder_input_ids"].tolist()
    assert labels[1][3:] == [-100] * (len(labels[1]) - 3)
    for lab, d in zip(labels, dec, strict=True):  # by hand: the start token, then the labels one step late
        assert d == [tok.cls_token_id] + [tok.pad_token_id if t == -100 else t for t in lab[:-1]]
    ex = T.mapped_example(config, settings, str(models.bart))
    shown = [r["decoder input"] for r in ex.table if r["label"] != ""]
    assert shown[0] == "[CLS]" and shown[1:] == [r["label"] for r in ex.table if r["label"] != ""][:-1]
    assert any("Teacher forcing" in n for n in ex.notes)


def test_rouge_matches_rouge_score_and_lead_baseline():
    from rouge_score import rouge_scorer

    preds = ["the cat sat on the mat", "a quick brown fox", "nothing in common", "rain fell on the roof today"]
    refs = ["the cat was on the mat", "the quick brown fox jumps", "entirely different words", "rain fell on the roof"]
    scorer = rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL"])
    ref = {k: sum(scorer.score(r, p)[k].fmeasure for p, r in zip(preds, refs, strict=True)) / 4
           for k in ("rouge1", "rouge2", "rougeL")}
    got = G.mean_rouge(preds, refs)
    assert got == pytest.approx(ref) and 0 < got["rouge2"] < got["rouge1"] < 1
    import datasets

    train = datasets.Dataset.from_dict({"s": ["a b c d e"] * 3, "t": ["x y", "p q r", "u v"]})
    ev = datasets.Dataset.from_dict({"s": ["the cat sat here", "one two three"], "t": ["the cat", "two three"]})
    base = G.lead_baseline(train, ev, "s", "t")
    assert base["lead_words"] == 2  # the median target length in words
    assert base["lead_rouge1"] == pytest.approx((1.0 + 0.5) / 2)  # "the cat" vs "the cat"; "one two" vs "two three"


def test_unigram_perplexity_by_hand():
    # train counts: 5 -> 2, 6 -> 1 (the -100 is skipped); eval predicts [6, 5] (a block's first token has no context)
    got = G.unigram_perplexity([[5, 5, 6, -100]], [[9, 6, 5]], vocab_size=10)
    p6, p5 = (1 + 1) / (3 + 10), (2 + 1) / (3 + 10)
    assert got == pytest.approx(math.exp(-(math.log(p6) + math.log(p5)) / 2))


@pytest.mark.parametrize("task, model, field, words", [
    ("seq2seq", "bert", "model", "is a bert encoder; sequence-to-sequence needs an encoder-decoder checkpoint"),
    ("seq2seq", "gpt", "model", "is a gpt2 decoder; sequence-to-sequence needs an encoder-decoder"),
    ("causal-lm", "bert", "model", "is a bert encoder; causal language modelling needs a decoder-only"),
    ("causal-lm", "bart", "model", "is a bart encoder-decoder"),
])
def test_wrong_architecture_is_refused(models, settings, task, model, field, words):
    config = (causal if task == "causal-lm" else seq2seq)(models, model=str(getattr(models, model)))
    with pytest.raises(ConfigError) as e:
        G.prepare(config, settings, str(getattr(models, model)))
    assert e.value.field == field and words in e.value.message and str(getattr(models, model)) in e.value.message


def test_bad_values_are_refused_with_field_and_row(models, settings):
    docs = [f"document {i} is here" for i in range(12)]
    text_dataset(settings, "bad-target", document=docs, summary=["ok"] * 3 + ["  "] + ["ok"] * 8)
    with pytest.raises(ConfigError) as e:
        G.prepare(seq2seq(models, dataset="bad-target", eval_fraction=0.2), settings, str(models.bart))
    assert e.value.field == "columns.target" and "the target is empty" in e.value.message
    assert e.value.message.startswith("row ")
    text_dataset(settings, "bad-text", text=["fine words"] * 5 + [None] + ["more"] * 4)
    with pytest.raises(ConfigError) as e:
        G.prepare(causal(models, dataset="bad-text", max_train_samples=None), settings, str(models.gpt))
    assert e.value.field == "columns.text" and "is not text (NoneType" in e.value.message
    with pytest.raises(ConfigError) as e:
        G.prepare(causal(models, columns={"text": "nope"}), settings, str(models.gpt))
    assert e.value.field == "columns.text" and "no column 'nope'" in e.value.message
    with pytest.raises(ConfigError) as e:  # 4 short eval rows can't fill one block of 60 tokens
        G.prepare(causal(models, max_length=60), settings, str(models.gpt))
    assert e.value.field == "max_length"


def test_row_numbers_point_at_the_bad_row(models, settings):
    text_dataset(settings, "bad-row", document=[f"doc {i}" for i in range(10)], summary=["s"] * 3 + [""] + ["s"] * 6)
    config = seq2seq(models, dataset="bad-row", eval_fraction=0.1)
    train, _, _ = G.load_rows(config, settings)
    bad = next(i for i, t in enumerate(train["summary"]) if not t.strip())
    with pytest.raises(ConfigError, match=f"row {bad}: the target is empty"):
        G.prepare(config, settings, str(models.bart))


def test_causal_run_stores_perplexity_and_generates(models, settings, tmp_path, capsys):
    import torch
    from transformers import AutoModelForCausalLM

    jobs = JobManager(settings=settings)
    try:
        run_id = jobs.submit(causal(models))
        assert jobs.wait(run_id, 300) == "completed", jobs.store.get(run_id).message
    finally:
        jobs.shutdown()
    rec = jobs.store.get(run_id)
    fm = rec.final_metrics
    assert fm["perplexity"] == pytest.approx(math.exp(fm["loss"]))
    assert fm["perplexity_before"] > fm["perplexity"] > 1 and fm["unigram_perplexity"] > 1
    # by hand: the saved model's mean token cross-entropy on the evaluation blocks
    p = G.prepare(causal(models), settings, str(models.gpt))
    model = AutoModelForCausalLM.from_pretrained(rec.model_dir).eval()
    ids = torch.tensor(p.eval["input_ids"])
    with torch.no_grad():
        logits = model(input_ids=ids).logits
    nll = torch.nn.functional.cross_entropy(logits[:, :-1].reshape(-1, logits.size(-1)), ids[:, 1:].reshape(-1))
    assert fm["perplexity"] == pytest.approx(math.exp(float(nll)), rel=1e-4)
    assert rec.plan["packing"] is True and rec.plan["train_rows"] == len(p.train)

    gen = T.load_generator(rec)
    assert T.generate(gen, "the cat", {"max_new_tokens": 6}).startswith("the cat")  # may stop at once: [SEP]
    fresh = T.generate(str(models.gpt), "the cat", T.GenerationSettings(max_new_tokens=4, num_beams=2))
    assert fresh.startswith("the cat") and len(fresh) > len("the cat")  # random weights: 4 tokens, none [SEP]
    sampled = [T.generate(gen, "the cat", {"do_sample": True, "top_k": 5, "top_p": 0.9, "temperature": 0.7,
                                           "seed": 3, "max_new_tokens": 6}) for _ in range(2)]
    assert sampled[0] == sampled[1]  # seeded
    for bad, field in (({"max_new_tokens": 0}, "settings.max_new_tokens"), ({"num_beams": 99}, "settings.num_beams"),
                       ({"temperature": 0.0}, "settings.temperature"), ({"top_p": 1.5}, "settings.top_p"),
                       ({"top_k": -1}, "settings.top_k"), ({"do_sample": "yes"}, "settings.do_sample"),
                       ({"max_new_tokens": 2.5}, "settings.max_new_tokens")):
        with pytest.raises(ConfigError) as e:
            T.generate(gen, "the cat", bad)
        assert e.value.field == field
    with pytest.raises(ConfigError):
        T.generate(gen, 42, {})
    # the shown pipeline code runs and generates what the page does, greedy and seeded sampling alike (the
    # fresh model's weights are random: it writes tokens rather than stopping at once)
    for model_dir in (rec.model_dir, str(models.gpt)):
        for s in (T.GenerationSettings(max_new_tokens=4), T.GenerationSettings(max_new_tokens=4, do_sample=True,
                                                                                 top_k=5, seed=7)):
            scope = {}
            code = T.pipeline_code("decoder", model_dir, "the cat", s)
            exec(compile(code.replace("print(", "result = ("), "pipeline", "exec"), scope)  # noqa: S102 - the code shown
            assert scope["result"] == T.generate(model_dir, "the cat", s), code
    assert len(T.generate(str(models.gpt), "the cat", T.GenerationSettings(max_new_tokens=4))) > len("the cat")
    out = run_export(causal(models), settings, rec, tmp_path, capsys)
    assert "perplexity" in out and "'eval_loss'" in out


def run_export(config, settings, rec, tmp_path, capsys) -> str:
    """The exported script, run in this interpreter (transformers is already imported): what it prints."""
    from core.training.generation_export import export_script

    script = export_script(config, settings, rec.id, rec.plan.get("eval_steps"), output=str(tmp_path / "out"))
    exec(compile(script, "export", "exec"), {"__name__": "export"})  # noqa: S102 - running the exported script is the test
    assert (tmp_path / "out" / "model" / "config.json").is_file()
    return capsys.readouterr().out


def test_seq2seq_run_stores_rouge_and_generates(models, settings, tmp_path, capsys):
    jobs = JobManager(settings=settings)
    try:
        run_id = jobs.submit(seq2seq(models))
        assert jobs.wait(run_id, 300) == "completed", jobs.store.get(run_id).message
    finally:
        jobs.shutdown()
    rec = jobs.store.get(run_id)
    fm = rec.final_metrics
    for k in ("rouge1", "rouge2", "rougeL", "lead_rouge1", "lead_rouge2", "lead_rougeL"):
        assert 0 <= fm[k] <= 1, k
    from rouge_score import rouge_scorer

    _, ev, _ = G.load_rows(seq2seq(models), settings)  # the lead: the source's first 3 words (median target)
    scorer = rouge_scorer.RougeScorer(["rouge1"])
    lead = [scorer.score(t, " ".join(d.split()[:3]))["rouge1"].fmeasure for d, t in zip(ev["document"], ev["summary"], strict=True)]
    assert fm["lead_words"] == 3 and fm["lead_rouge1"] == pytest.approx(sum(lead) / len(lead))
    text = T.generate(rec, "today the cat sat on the mat and then we went home", {"num_beams": 2, "max_new_tokens": 5})
    assert isinstance(text, str)
    assert "'eval_rouge1'" in run_export(seq2seq(models), settings, rec, tmp_path, capsys)


def test_extra_models_and_scratch_gpt_folders_load_as_causal_lms(tmp_path):
    from core.scratch.architectures import build_model, full_architecture
    from core.scratch.data import train_bpe

    arch = full_architecture({"kind": "gpt", "n_embd": 16, "n_layer": 1, "n_head": 2, "vocab_size": 300})
    tok = train_bpe([" ".join(["the cat sat on the mat"] * 5)] * 10, 300)
    build_model(arch, vocab=len(tok), max_length=32, bos_token_id=tok.eos_token_id, eos_token_id=tok.eos_token_id,
                pad_token_id=tok.pad_token_id).save_pretrained(tmp_path)
    tok.save_pretrained(tmp_path)
    gen = T.load_generator(str(tmp_path))
    assert gen.kind == "decoder" and type(gen.model).__name__ == "GPT2LMHeadModel"
    assert isinstance(T.generate(gen, "the cat", {"max_new_tokens": 4}), str)
    runs = [SimpleNamespace(id="a1", name="gpt", status="completed", model_dir=str(tmp_path),
                            config={"task": "scratch", "architecture": {"kind": "gpt"}}),
            SimpleNamespace(id="b2", name="cnn", status="completed", model_dir=str(tmp_path),
                            config={"task": "scratch", "architecture": {"kind": "cnn"}}),
            SimpleNamespace(id="c3", name="gpt", status="failed", model_dir=None,
                            config={"task": "scratch", "architecture": {"kind": "gpt"}})]
    assert list(G.extra_models(runs).values()) == ["run:a1"] and G.extra_models(runs, "seq2seq") == {}
    runs.append(SimpleNamespace(id="d4", name="summaries", status="completed", model_dir="/m", config={"task": "seq2seq"}))
    assert G.summarizer_models(runs) == {"run d4 · summaries": "/m"}


def test_mapped_causal_example(models, settings):
    ex = T.mapped_example(causal(models), settings, str(models.gpt))
    assert len(ex.table) == 16 and ex.table[0]["input token"] == "[CLS]"
    assert [r["predicts (next token)"] for r in ex.table[:-1]] == [r["input token"] for r in ex.table[1:]]
    assert any("Packing" in n for n in ex.notes)
    padded = T.mapped_example(causal(models, packing=False), settings, str(models.gpt))
    assert any(r["label"] == "ignored (-100)" and r["attention mask"] == 0 for r in padded.table)
