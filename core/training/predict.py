"""Predictions of a run's model, and of the same backbone before fine-tuning (for before/after)."""
from __future__ import annotations

import zipfile
from io import BytesIO
from pathlib import Path

from core.settings import Settings
from core.training.config import TrainingConfig
from core.training.store import RunRecord


def predict_after(run: RunRecord, texts: list[str]) -> list[dict[str, float]]:
    """Label -> probability from the run's fine-tuned model."""
    from core.nlp.encoder import classify

    if not run.model_dir or not Path(run.model_dir, "config.json").is_file():
        raise ValueError(f"run {run.id} has no saved model ({run.status}): finish or resume it first")
    return classify(run.model_dir, texts)


def predict_before(run: RunRecord, texts: list[str], settings: Settings) -> list[dict[str, float]]:
    """The backbone the run started from, with the same seeded, untrained classification head."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer, set_seed

    from core.nlp.encoder import LoadedModel, classify
    from core.training.runner import plan

    config = TrainingConfig.from_dict(run.config)
    labels = run.plan.get("labels") or []
    p = plan(config, settings)
    set_seed(config.seed)  # the head starts exactly as it did in the run
    model = AutoModelForSequenceClassification.from_pretrained(
        p.model_path, num_labels=len(labels), id2label=dict(enumerate(labels)),
        label2id={n: i for i, n in enumerate(labels)}, ignore_mismatched_sizes=True).eval()
    lm = LoadedModel(model=model, tokenizer=AutoTokenizer.from_pretrained(p.model_path), device="cpu",
                     task="text-classification", source=p.model_path)
    return classify(lm, texts)


def zip_model(model_dir: str | Path) -> bytes:
    """The save_pretrained folder as a zip, for the download button."""
    folder = Path(model_dir)
    buf = BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for f in sorted(folder.rglob("*")):
            if f.is_file():
                z.write(f, f.relative_to(folder.parent))
    return buf.getvalue()


def eval_examples(run: RunRecord, settings: Settings, n: int = 3) -> list[str]:
    """Texts from the run's own evaluation split, one per label first: what "try it" starts from."""
    from core.training.data import load_splits

    config = TrainingConfig.from_dict(run.config)
    try:
        splits = load_splits(config, settings)
    except ValueError:  # the dataset was deleted since: the page falls back to an empty box
        return []
    ev = splits.eval
    texts, seen = [], set()
    for text, label in zip(ev[config.text_column][:500], ev["labels"][:500], strict=False):
        if label not in seen and isinstance(text, str) and text.strip():
            seen.add(label)
            texts.append(text)
        if len(texts) >= n:
            break
    return texts
