"""'Export as script' for an extractive-QA run: the course's recipe as one standalone file.

The windowing (`extractive_qa.features`) and the scoring (`squad`) are copied into the script from their
source, so the script computes exactly what the run computed, with plain transformers and datasets.
"""
from __future__ import annotations

import inspect

from core.settings import Settings
from core.training.config import TrainingConfig

SCRIPT = '''\
"""Reproduce Torch Lab run {run_id!r} with plain transformers: {name} (extractive question answering).

Run it with the same packages as Torch Lab (requirements.txt): python {filename}
"""
from __future__ import annotations

import json
import re
import string
from collections import Counter

from datasets import load_from_disk
from transformers import (AutoModelForQuestionAnswering, AutoTokenizer, Trainer, TrainingArguments,
                          default_data_collator, set_seed)

MODEL = {model_path!r}
DATA = {data_path!r}  # a datasets.DatasetDict saved with save_to_disk
QUESTION, CONTEXT, ANSWERS = {question!r}, {context!r}, {answers!r}
MAX_LENGTH, STRIDE = {max_length}, {stride}  # windows of MAX_LENGTH tokens; neighbours share STRIDE tokens
N_BEST, MAX_ANSWER_TOKENS = {n_best}, {max_answer_tokens}
OUTPUT = {output!r}
_PUNCT = set(string.punctuation)
_ARTICLES = re.compile(r"\\b(a|an|the)\\b")

set_seed({seed})
data = load_from_disk(DATA)
train_name = "train" if "train" in data else list(data)[0]
eval_name = next((s for s in ("validation", "test", "eval") if s in data and s != train_name), None)


def roles(ds):
    """question, context, answers (SQuAD dicts; JSON text parsed) and each row's index."""
    def convert(batch, idx):
        answers = [json.loads(a) if isinstance(a, str) else a for a in batch[ANSWERS]]
        return {{"question": batch[QUESTION], "context": batch[CONTEXT], "answers": answers, "row": idx}}
    return ds.map(convert, batched=True, with_indices=True, remove_columns=ds.column_names)


train = roles(data[train_name])
if eval_name is None:
    parts = train.train_test_split(test_size=max(1, round(len(train) * {eval_fraction})), seed={seed})
    train, evaluation = parts["train"], parts["test"]
else:
    evaluation = roles(data[eval_name])
{limits}
tokenizer = AutoTokenizer.from_pretrained(MODEL)


{features_code}


def preprocess(batch):
    f = features(tokenizer, batch["question"], batch["context"], batch["answers"], MAX_LENGTH, STRIDE)
    f["example_id"] = [batch["row"][i] for i in f["example_id"]]
    return f


train_windows = train.map(preprocess, batched=True, remove_columns=train.column_names)
train_windows = train_windows.remove_columns(["example_id", "offset_mapping"])
eval_windows = evaluation.map(preprocess, batched=True, remove_columns=evaluation.column_names)
example_ids, offsets = list(eval_windows["example_id"]), list(eval_windows["offset_mapping"])
eval_windows = eval_windows.remove_columns(["example_id", "offset_mapping"])
row_index = {{row: i for i, row in enumerate(list(evaluation["row"]))}}
contexts = list(evaluation["context"])
golds = [a["text"] for a in list(evaluation["answers"])]


# SQuAD v1.1 exact match / F1 (the official script's definitions) and the n-best span search
{squad_code}


def compute_metrics(eval_pred):
    """Windows back to text spans, one best span per example, scored against the gold answers."""
    start_logits, end_logits = eval_pred.predictions[:2]
    best = best_spans(start_logits, end_logits, [row_index[r] for r in example_ids], offsets, contexts,
                      N_BEST, MAX_ANSWER_TOKENS)
    return squad_v1([b[0] for b in best], golds)


model = AutoModelForQuestionAnswering.from_pretrained(MODEL)
{arguments}trainer = Trainer(model=model, args=args, train_dataset=train_windows, eval_dataset=eval_windows,
                  processing_class=tokenizer, data_collator=default_data_collator, compute_metrics=compute_metrics)
result = trainer.train()
print("train", result.metrics)
print("eval", trainer.evaluate())
trainer.save_model(OUTPUT + "/model")
'''


def export_script(config: TrainingConfig, settings: Settings, run_id: str = "new", eval_steps: int | None = None,
                  output: str = "reproduced-run") -> str:
    """The script's text; paths point at this server's model folder and saved dataset version. The
    TrainingArguments come from the text-classification export, so every script sets them the same way."""
    from core.data.store import DatasetStore
    from core.training import extractive_qa, squad
    from core.training.export import export_script as classification_script
    from core.training.runner import plan

    p = plan(config, settings)
    ref = DatasetStore(settings.datasets_dir).ref(config.dataset, config.dataset_version)
    base = classification_script(config, settings, run_id, [], eval_steps, output)
    arguments = base[base.index("args = TrainingArguments("): base.index("trainer = Trainer(")]
    # the evaluation windows must come back in dataset order (compute_metrics maps them by position):
    # length grouping would reorder them, as it does in the run (no length column there)
    arguments = arguments.replace("train_sampling_strategy='group_by_length'", "train_sampling_strategy='random'")
    limits = ""
    if config.max_train_samples:
        limits += f"train = train.select(range(min({config.max_train_samples}, len(train))))\n"
    if config.max_eval_samples:
        limits += f"evaluation = evaluation.select(range(min({config.max_eval_samples}, len(evaluation))))\n"
    features_code = "\n\n".join(inspect.getsource(f) for f in (extractive_qa.doc_stride, extractive_qa.features))
    squad_code = "\n\n".join(inspect.getsource(f) for f in (squad.normalize_answer, squad.exact_match, squad.f1,
                                                            squad.score, squad.squad_v1, squad.best_spans))
    c = config.columns
    return SCRIPT.format(
        run_id=run_id, name=config.display_name(), filename=f"train_{run_id}.py", model_path=p.model_path,
        data_path=str((ref.path / "data").resolve()), question=c["question"], context=c["context"],
        answers=c["answers"], max_length=config.max_length, stride=extractive_qa.doc_stride(config.max_length),
        n_best=squad.N_BEST, max_answer_tokens=squad.MAX_ANSWER_TOKENS, output=output, seed=config.seed,
        eval_fraction=config.eval_fraction, limits=limits, features_code=features_code, squad_code=squad_code,
        arguments=arguments)


def pipeline_code(model_dir: str, max_length: int = 384) -> str:
    """Answer with the saved model in plain transformers: the pipeline call (transformers 4.x), and the same
    windows and span search by hand for transformers 5, which removed the question-answering pipeline."""
    from core.training.extractive_qa import doc_stride

    return f'''\
# transformers 4.x:
#   from transformers import pipeline
#   qa = pipeline("question-answering", model={model_dir!r})
#   print(qa(question="Where is the tower?", context="The tower stands in Paris."))
# transformers 5 has no question-answering pipeline; the same steps with the model classes:
import torch
from transformers import AutoModelForQuestionAnswering, AutoTokenizer

MODEL = {model_dir!r}
tokenizer = AutoTokenizer.from_pretrained(MODEL)
model = AutoModelForQuestionAnswering.from_pretrained(MODEL).eval()
question, context = "Where is the tower?", "The tower stands in Paris."
enc = tokenizer(question, context, truncation="only_second", max_length={max_length}, stride={doc_stride(max_length)},
                return_overflowing_tokens=True, return_offsets_mapping=True, padding=True, return_tensors="pt")
offsets = enc.pop("offset_mapping").tolist()
enc.pop("overflow_to_sample_mapping")
with torch.no_grad():
    out = model(**enc)
best = (float("-inf"), 0, 0)  # (start + end logit, start char, end char) over every window
for w, offs in enumerate(offsets):
    ctx = [t for t, s in enumerate(enc.sequence_ids(w)) if s == 1]  # only context tokens can answer
    for s in ctx:
        for e in ctx:
            if s <= e < s + 30:
                score = float(out.start_logits[w, s] + out.end_logits[w, e])
                best = max(best, (score, offs[s][0], offs[e][1]))
answer = context[best[1]:best[2]]
print(answer)
'''
