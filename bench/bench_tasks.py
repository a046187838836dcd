"""Every fine-tuning task on offline data (#17): the headline metric after a short CPU run vs before training.

    python -m bench.bench_tasks --workspace /tmp/taskbench/ws [--tasks ner qa causal causal-pad seq2seq]
                                [--max-steps N] [--generate] [--estimate]

Each run goes through `core.training.JobManager` exactly as the page launches it:
- token classification: the packaged MiniLM-L6 on the shipped CoNLL sample (`ner-sample`, 60 hand-written
  sentences), entity F1 vs the all-O answer;
- extractive QA: MiniLM-L6 on hand-made SQuAD-format rows (no usable SQuAD sample installs offline) whose
  evaluation rows ask about countries the training rows never name; SQuAD EM / F1 vs the first words;
- causal LM: a randomly initialised 2-layer GPT-2 (width 128, MiniLM's WordPiece vocabulary: no GPT ships
  offline) on the drug reviews' text, perplexity vs the same model before training;
- sequence to sequence: a randomly initialised 2+2-layer BART (width 128) writing each drug review's condition
  from its text, ROUGE-L vs the lead (first words of the review);
- causal-pad: the causal run with padding instead of packing (one review per example, cut to 64 tokens).
`--max-steps N` shortens every run to N steps; `--generate` times batch inference over the evaluation split of the
generation runs (`generation_tools.batch_generate`, greedy, 1 / 8 / 32 prompts per generate() call); `--estimate`
prints "Estimate first" for each config and compares its seconds per step with the run's.
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

COUNTRIES = [("France", "Paris"), ("Spain", "Madrid"), ("Italy", "Rome"), ("Peru", "Lima"), ("Japan", "Tokyo"),
             ("Kenya", "Nairobi"), ("Chile", "Santiago"), ("Egypt", "Cairo"), ("Norway", "Oslo"), ("Cuba", "Havana"),
             ("Ghana", "Accra"), ("Nepal", "Kathmandu"), ("Poland", "Warsaw"), ("Canada", "Ottawa"),
             ("Greece", "Athens"), ("Sweden", "Stockholm"), ("Turkey", "Ankara"), ("Mexico", "Mexico City"),
             ("India", "New Delhi"), ("Vietnam", "Hanoi")]
TEMPLATES = [("{c} lies in a region known for its food. The capital of {c} is {x}, home to millions.",
              "What is the capital of {c}?"),
             ("Many visitors travel to {x} every year. It has been the capital of {c} for a long time.",
              "Which city is the capital of {c}?"),
             ("The government of {c} meets in {x}. Farming and trade matter to the country.",
              "Where does the government of {c} meet?")]


def qa_data(store) -> None:
    """Train on the first 15 countries, evaluate on the last 5 (never seen): the span, not the city, is learnt."""
    import datasets

    def rows(pairs):
        out = {"question": [], "context": [], "answers": []}
        for c, x in pairs:
            for ctx, q in TEMPLATES:
                context = ctx.format(c=c, x=x)
                out["question"].append(q.format(c=c))
                out["context"].append(context)
                out["answers"].append({"text": [x], "answer_start": [context.index(x)]})
        return out

    dd = datasets.DatasetDict({"train": datasets.Dataset.from_dict(rows(COUNTRIES[:15])),
                               "test": datasets.Dataset.from_dict(rows(COUNTRIES[15:]))})
    store.save(dd, "bench-capitals", "bench: hand-made SQuAD-format rows, held-out countries")


def decoders(folder: Path) -> tuple[Path, Path]:
    import torch
    from transformers import (
        AutoTokenizer,
        BartConfig,
        BartForConditionalGeneration,
        GPT2Config,
        GPT2LMHeadModel,
    )

    from core.assets import minilm_path

    tok = AutoTokenizer.from_pretrained(str(minilm_path()))
    gpt, bart = folder / "gpt2-128", folder / "bart-128"
    torch.manual_seed(0)
    if not (gpt / "config.json").is_file():
        GPT2LMHeadModel(GPT2Config(vocab_size=tok.vocab_size, n_embd=128, n_layer=2, n_head=4, n_positions=128,
                                   bos_token_id=tok.cls_token_id, eos_token_id=tok.sep_token_id)).save_pretrained(gpt)
        tok.save_pretrained(gpt)
    if not (bart / "config.json").is_file():
        cfg = BartConfig(vocab_size=tok.vocab_size, d_model=128, encoder_layers=2, decoder_layers=2,
                         encoder_attention_heads=4, decoder_attention_heads=4, encoder_ffn_dim=256,
                         decoder_ffn_dim=256, max_position_embeddings=128, pad_token_id=tok.pad_token_id,
                         bos_token_id=tok.cls_token_id, eos_token_id=tok.sep_token_id,
                         decoder_start_token_id=tok.cls_token_id, forced_eos_token_id=tok.sep_token_id)
        BartForConditionalGeneration(cfg).save_pretrained(bart)
        tok.save_pretrained(bart)
    return gpt, bart


def main() -> None:
    from core.data import DatasetStore
    from core.settings import Settings
    from core.training import JobManager, TrainingConfig
    from core.training.curves import headline

    ap = argparse.ArgumentParser()
    ap.add_argument("--workspace", default="/tmp/taskbench/ws")
    ap.add_argument("--tasks", nargs="*", default=["ner", "qa", "causal", "seq2seq"])
    ap.add_argument("--max-steps", type=int, default=None, help="every run stops after this many steps")
    ap.add_argument("--generate", action="store_true", help="time batch generation of the generation runs")
    ap.add_argument("--estimate", action="store_true", help="'Estimate first' for each config before its run")
    args = ap.parse_args()
    s = Settings(workspace=Path(args.workspace))
    store = DatasetStore(s.datasets_dir)
    store.ensure_sample()
    gpt, bart = decoders(s.workspace / "bench-models")
    if "qa" in args.tasks and not store.versions("bench-capitals"):
        qa_data(store)
    if "seq2seq" in args.tasks and not store.versions("bench-conditions"):
        dd = store.load("drug-reviews")  # 3 training reviews name no condition: a seq2seq target can't be empty
        store.save(dd.filter(lambda r: bool((r["condition"] or "").strip())), "bench-conditions",
                   "bench: drug reviews with a condition")
    if "ner" in args.tasks:
        from core.data.conll import ensure_ner_sample

        ensure_ner_sample(store)
    runs = {
        "ner": TrainingConfig(task="token-classification", model="minilm-l6", dataset="ner-sample",
                              columns={"tokens": "tokens", "tags": "ner_tags"}, epochs=10, learning_rate=1e-4,
                              batch_size=16, max_length=64, name="bench ner"),
        "qa": TrainingConfig(task="question-answering", model="minilm-l6", dataset="bench-capitals",
                             columns={"question": "question", "context": "context", "answers": "answers"},
                             epochs=8, learning_rate=1e-4, batch_size=8, max_length=64, name="bench qa"),
        "causal": TrainingConfig(task="causal-lm", model=str(gpt), dataset="drug-reviews", columns={"text": "text"},
                                 max_steps=150, learning_rate=1e-3, batch_size=16, max_length=64,
                                 max_eval_samples=200, name="bench causal"),
        "seq2seq": TrainingConfig(task="seq2seq", model=str(bart), dataset="bench-conditions",
                                  columns={"source": "text", "target": "condition"}, max_steps=300,
                                  learning_rate=1e-3, batch_size=16, max_length=96, max_target_length=12,
                                  max_eval_samples=200, name="bench seq2seq"),
    }
    runs["causal-pad"] = TrainingConfig(**{**runs["causal"].__dict__, "packing": False, "name": "bench causal padded"})
    if args.max_steps:
        for c in runs.values():
            c.max_steps = args.max_steps
    jobs = JobManager(settings=s)
    for key in args.tasks:
        if args.estimate:
            from core.training.estimate import estimate

            t = time.time()
            est = estimate(runs[key], s)
            print(f"{key} estimate ({time.time() - t:.1f} s): {est.parameters:,} parameters, "
                  f"{est.seconds_per_step:.3f} s/step, {est.steps_per_epoch} steps/epoch, typical length "
                  f"{est.typical_length}, memory {est.total_bytes / 1e6:.0f} MB; {'; '.join(est.notes)}", flush=True)
        t = time.time()
        rid = jobs.submit(runs[key])
        status = jobs.wait(rid, 7200)
        rec = jobs.store.get(rid)
        label, value, base = headline(rec.config["task"], rec.final_metrics)
        extra = {k: round(v, 4) for k, v in rec.final_metrics.items()
                 if isinstance(v, float) and k not in ("epoch",)}
        print(f"{key}: {status} in {time.time() - t:.0f} s, {rec.final_metrics.get('global_step')} steps; "
              f"{label} {value} vs {base} before / baseline; {extra}", flush=True)
        if args.estimate and rec.final_metrics.get("global_step"):
            rows = jobs.store.metrics(rid, "train")
            print(f"{key}: run {rid}: {len(rows)} logged train rows; first / last: {rows[:1]} / {rows[-1:]}",
                  flush=True)
        if args.generate and key in ("causal", "causal-pad", "seq2seq") and status == "completed":
            generate_bench(rec, s)
    jobs.shutdown()


def generate_bench(rec, settings) -> None:
    """Batch inference over the run's evaluation split: greedy, 64 rows, 1 / 8 / 32 prompts per generate() call."""
    import torch

    from core.training import TrainingConfig
    from core.training import generation_tools as T

    gen = T.load_generator(rec)
    config = TrainingConfig.from_dict(rec.config)
    s = T.GenerationSettings(max_new_tokens=12 if config.task == "seq2seq" else 20)
    T.batch_generate(gen, config, settings, s, limit=8, batch_size=8)  # warm-up
    for size in (1, 8, 32):
        out = T.batch_generate(gen, config, settings, s, limit=64, batch_size=size)
        print(f"  generate {config.task} batch {size}: {len(out.rows)} rows in {out.seconds:.2f} s, "
              f"{out.examples_per_s:.1f} examples/s, {out.tokens_per_s:.0f} new tokens/s, {out.new_tokens} tokens, "
              f"ROUGE-L {out.scores['rougeL']:.4f}, threads {torch.get_num_threads()}", flush=True)


if __name__ == "__main__":
    main()
