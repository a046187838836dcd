"""Configs, a tiny text dataset and a few-step Trainer for the from-scratch tests."""
from pathlib import Path

from core.settings import Settings
from core.training.config import TrainingConfig

POSITIVE = ["great drug, it worked well", "loved it, no side effects", "works wonderfully for my pain",
            "a real help, I sleep well now", "excellent results after a week"]
NEGATIVE = ["awful, made me sick", "terrible side effects and headaches", "did not work at all",
            "worst drug, constant nausea", "poor results and I felt dizzy"]


def config(kind: str, dataset: str, **kw) -> TrainingConfig:
    from core.scratch import default_architecture

    arch = kw.pop("architecture", None) or default_architecture(kind)
    return TrainingConfig(task="scratch", architecture=arch, dataset=dataset, **kw)


def text_dataset(settings: Settings, name: str = "tiny-reviews", rows: int = 60, labels=("pos", "neg")):
    """Alternating positive / negative reviews with string labels, saved in the workspace's DatasetStore."""
    import datasets

    from core.data import DatasetStore

    texts, ys, num = [], [], []
    for i in range(rows):
        bank, y = (POSITIVE, labels[0]) if i % 2 == 0 else (NEGATIVE, labels[-1])
        texts.append(bank[(i // 2) % len(bank)])
        ys.append(y)
        num.append(float(i % 2) + 0.1 * (i % 3))
    ds = datasets.Dataset.from_dict({"text": texts, "label": ys, "score": num})
    return DatasetStore(settings.datasets_dir).save(ds, name, "test fixture")


def trainer(task, out: Path, steps: int, lr: float = 3e-3, batch: int = 16):
    """A plain Hugging Face Trainer on a TaskSetup, as the engine builds one."""
    from transformers import Trainer, TrainingArguments

    args = TrainingArguments(output_dir=str(out), max_steps=steps, per_device_train_batch_size=batch,
                             per_device_eval_batch_size=32, learning_rate=lr, logging_steps=1, report_to=[],
                             use_cpu=True, save_strategy="no", eval_strategy="no", dataloader_num_workers=0,
                             seed=0, disable_tqdm=True)
    return Trainer(model=task.model, args=args, train_dataset=task.train_dataset, eval_dataset=task.eval_dataset,
                   data_collator=task.data_collator, compute_metrics=task.compute_metrics,
                   processing_class=task.processing_class)
