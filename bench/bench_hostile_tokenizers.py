"""Hostile input against the tokenizers and the training config (issue #13): how each input ended, and how long.

    .venv/bin/python -m bench.bench_hostile_tokenizers

Every input runs through the public core call a page makes, in a scratch workspace. An input ends as:
  refused   the module's own error (AssetError / TextError / TrainError / ConfigError) with a message
  finished  a valid request that completed (only counted where finishing is acceptable)
  wrong     any other exception, a PanicException, or a trained: name that loaded from outside its folder
and separately "over budget" when it took longer than its class's budget. Prints a markdown table.
"""
from __future__ import annotations

import dataclasses
import json
import math
import os
import tempfile
import time
from pathlib import Path

from core.assets import AssetError
from core.settings import get_settings
from core.tokenizers import guard
from core.tokenizers import library as L
from core.tokenizers import training as TT
from core.training import ConfigError, TrainingConfig

CLEAN = (AssetError, L.TextError, TT.TrainError, ConfigError)


def run(case, budget_s: float, may_finish: bool) -> tuple[str, float]:
    started = time.perf_counter()
    try:
        case()
        outcome = "finished" if may_finish else "wrong"
    except CLEAN:
        outcome = "refused"
    except BaseException as e:  # PanicException included: that is exactly what must not happen
        if isinstance(e, KeyboardInterrupt):
            raise
        outcome = "wrong"
        print(f"  wrong: {type(e).__name__}: {str(e)[:120]}")
    seconds = time.perf_counter() - started
    return outcome, seconds


def table(classes: dict[str, tuple[list, float, bool]]) -> None:
    print("| class | inputs | refused cleanly | finished (valid) | wrong exception / escaped | over budget "
          "| budget | worst time |")
    print("|---|---|---|---|---|---|---|---|")
    for label, (cases, budget_s, may_finish) in classes.items():
        results = [run(c, budget_s, may_finish) for c in cases]
        count = {k: sum(o == k for o, _ in results) for k in ("refused", "finished", "wrong")}
        over = sum(s > budget_s for _, s in results)
        worst = max(s for _, s in results)
        print(f"| {label} | {len(cases)} | {count['refused']} | {count['finished']} | {count['wrong']} | {over} "
              f"| {budget_s:g} s | {worst:.2f} s |", flush=True)


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        ws = Path(tmp)
        s = dataclasses.replace(get_settings(), workspace=ws / "ws")
        s.tokenizers_dir.mkdir(parents=True)
        out_s = dataclasses.replace(get_settings(), workspace=ws / "outside")
        corpus = ["the cat sat on the mat", "a dog and a cat", "aaaa bbbb abab"] * 30
        outside = Path(TT.train(TT.TrainConfig("valid", "WordPiece", vocab_size=60, min_frequency=1), corpus,
                                settings=out_s).path)
        good = json.loads((outside / "tokenizer.json").read_text())

        def plant(name: str, content: str | bytes) -> str:
            (s.tokenizers_dir / name).mkdir()
            data = content.encode() if isinstance(content, str) else content
            (s.tokenizers_dir / name / "tokenizer.json").write_bytes(data)
            return L.TRAINED_PREFIX + name

        def split(regex: str) -> str:
            doc = dict(good, normalizer=None)
            doc["pre_tokenizer"] = {"type": "Split", "pattern": {"Regex": regex}, "behavior": "Isolated",
                                    "invert": False}
            return json.dumps(doc)

        # 1. names: anything that loads is an escape (the only valid tokenizer is outside the folder)
        rel = os.path.relpath(outside, s.tokenizers_dir)
        (s.tokenizers_dir / "folder-link").symlink_to(outside, target_is_directory=True)
        (s.tokenizers_dir / "file-link").mkdir()
        (s.tokenizers_dir / "file-link" / "tokenizer.json").symlink_to(outside / "tokenizer.json")
        (s.tokenizers_dir / "loop").symlink_to(s.tokenizers_dir / "loop")
        names = [rel, str(outside), "../../outside/tokenizers/valid", "..", ".", "", "valid/../valid", "..\\valid",
                 "%2e%2e%2fvalid", "valid\x00", "~/valid", "./valid", " ../valid", "\uff0e\uff0e/valid", "x" * 65,
                 ".hidden", rel + "/", "folder-link", "file-link", "loop", "/etc", "a/../../../outside"]
        name_cases = [lambda n=n: L.load(L.TRAINED_PREFIX + n, s) for n in names]

        # 2. malformed tokenizer.json
        bad_files = ["not json{", "", "{}", "[]", "null", '{"model": 5}', '{"model": {"type": "BPE"}}',
                     '{"model": {"type": "BPE", "vocab": {"a": 0}, "merges": []}, "pre_tokenizer": {"type": "No"}}',
                     '{"model": {"type": "Unigram", "vocab": "abc"}}', "[" * 100_000, b"\xff\xfe{\x00}",
                     split("("), split("[z-a]"), json.dumps(dict(good, added_tokens=5)),
                     json.dumps(dict(good, model=dict(good["model"], type="Nope")))]
        file_cases = [lambda n=plant(f"bad{i}", c): L.load(n, s) for i, c in enumerate(bad_files)]

        # 3. a pre-tokenizer regex that panics in Rust, on the calls the page makes
        panic_tok = L.load(plant("panics", split("^(a|a)*$")), s)
        bert = L.load("bert-wordpiece-uncased", s)
        hostile = ["a" * n + "!" for n in (30, 40, 200, 5000, 100_000)]
        panic_cases = ([lambda t=t: L.compare({"p": panic_tok}, t, s) for t in hostile]
                       + [lambda t=t: L.batch_encode(panic_tok, [t, "a b"]) for t in hostile]
                       + [lambda t=t: TT.corpus_stats("p", panic_tok, [t] * 3) for t in hostile])
        # pairs with overflow and a stride over half the window: longest_first panicked in Rust here
        pair_cases = [lambda st=st, q=q: L.batch_encode(bert, [q], pairs=[" ".join(["v"] * 40)], max_length=10,
                                                        overflow=True, stride=st)
                      for st in (3, 4, 5, 6) for q in (" ".join(["w"] * 40), "question")]

        # 4. a regex that backtracks: refused at the page's budget, then at once
        slow_tok = L.load(plant("slow", split("(?:a+)+b")), s)
        text = "a" * get_settings().max_text_chars  # the page's own cap: about a minute of backtracking
        slow_cases = [lambda: L.compare({"s": slow_tok}, text, s), lambda: L.compare({"s": slow_tok}, "b", s)]

        # 5. batch & padding: every combination that used to raise inside transformers or build huge tensors
        lines = ["Transformers are amazing", "unaffable", "Tokenizers pad short sentences to the longest one"]
        long = " ".join(["word"] * 30_000)
        batch_args = [dict(padding="max_length", max_length=8, truncation=False),
                      dict(padding="max_length", max_length=4096, truncation=False),
                      dict(padding="max_length", max_length=10**6, truncation=True),
                      dict(padding="max_length", max_length=10**30, truncation=True),
                      dict(padding="max_length", max_length=True), dict(padding="max_length", max_length=8.5),
                      dict(padding="longest", max_length=-1, truncation=True), dict(padding="all"),
                      dict(padding="longest", stride=-3), dict(truncation="yes", max_length=8)]
        batch_cases = ([lambda a=a: L.batch_encode(bert, lines, **a) for a in batch_args]
                       + [lambda: L.batch_encode(bert, [long], max_length=40, truncation=True, overflow=True, stride=37),
                          lambda: L.batch_encode(bert, [long], padding="longest"),
                          lambda: L.batch_encode(bert, ["x"] * 5000), lambda: L.batch_encode(bert, ["a", None]),
                          lambda: L.batch_encode(bert, [long[:2000]] * 1000, padding="max_length", max_length=4096,
                                                 truncation=True),
                          lambda: L.vocab_search(bert, "9" * 5000), lambda: L.vocab_search(bert, "²"),
                          lambda: L.vocab_search(bert, "9" * 150)] + pair_cases)

        # 6. training a tokenizer with absurd values (each request fresh; valid ones may finish)
        train_values = [("vocab_size", v) for v in (10**30, -5, 2000.5, True, "2000", None, math.nan, math.inf, 0,
                                                   TT.MAX_VOCAB + 1)]
        train_values += [("min_frequency", v) for v in (10**30, 0, math.inf, False, "2", None)]
        train_values += [("model", None), ("model", "GPT"), ("pre_tokenizer", 3), ("normalizers", "NFD"),
                         ("special_tokens", ("<s>", "<s>")), ("special_tokens", tuple(f"<{i}>" for i in range(101))),
                         ("special_tokens", ("x" * 65,)), ("name", "../../escape"), ("name", None)]
        train_cases = [lambda f=f, v=v, i=i: TT.train(dataclasses.replace(TT.TrainConfig(f"t{i}"), **{f: v}), corpus,
                                                      settings=s) for i, (f, v) in enumerate(train_values)]
        train_cases += [lambda: TT.train(TT.TrainConfig("huge"), ["x" * 1_000_000] * 21, settings=s),
                        lambda: TT.train(TT.TrainConfig("nones"), ["a", None], settings=s)]
        from core.assets import drug_reviews

        reviews = drug_reviews()["text"].tolist()  # 979 real reviews, ~440,000 characters
        big_cases = [lambda m=m, p=p: TT.train(TT.TrainConfig(f"big-{m}-{p}", m, vocab_size=TT.MAX_VOCAB, min_frequency=1,
                                                              pre_tokenizer=p), reviews, settings=s)
                     for m, p in (("BPE", "whitespace"), ("BPE", "byte_level"), ("WordPiece", "whitespace"),
                                  ("Unigram", "metaspace"))]

        # 7. TrainingConfig: hostile values in every number / choice field
        hostile_values = [math.nan, math.inf, -math.inf, True, "a string", None, 1e9, 10**12, -5, 2000.5]
        skip = {"dataset_version", "max_train_samples", "max_eval_samples", "eval_steps", "save_steps"}  # None is valid
        config_cases = []
        for f in dataclasses.fields(TrainingConfig):
            if f.name in {"model", "dataset", "text_column", "text_pair_column", "label_column", "name",
                          "group_by_length"}:
                continue
            for v in hostile_values:
                if v is None and f.name in skip:
                    continue
                config_cases.append(lambda f=f, v=v: TrainingConfig(**{f.name: v}).validate())
        config_cases += [lambda: TrainingConfig(batch_size=1e9).validate(),
                         lambda: TrainingConfig(grad_accumulation=10**12).validate(),
                         lambda: TrainingConfig(batch_size=4096, max_length=8192).validate()]

        table({
            "`trained:` names escaping the folder (paths, links, loops)": (name_cases, 2.0, False),
            "malformed `tokenizer.json` (not JSON, `{}`, wrong schema, bad regex)": (file_cases, 2.0, False),
            "a pre-tokenizer regex / stride that panics in Rust": (panic_cases, guard.ENCODE_BUDGET_S, False),
            "a backtracking regex (200,000 × 'a', then 'b')": (slow_cases, guard.ENCODE_BUDGET_S + 1, True),
            "Batch & padding arguments and sizes": (batch_cases, guard.ENCODE_BUDGET_S, True),
            "tokenizer `TrainConfig` values and corpus size": (train_cases, 2.0, False),
            "training 4 models with vocab_size = MAX_VOCAB (262,144) on the 979 reviews": (big_cases, 60.0, True),
            "`TrainingConfig` values (nan, inf, bool, str, None, 1e9, 1e12, …)": (config_cases, 0.1, False),
        })


if __name__ == "__main__":
    main()
