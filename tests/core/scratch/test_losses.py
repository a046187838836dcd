"""The losses the Trainer reports and steps on for from-scratch models, checked against cross-entropy by hand:
the tiny GPT averages over the T - 1 predicted tokens, and gradient accumulation averages over the effective
batch (transformers 5 passes `num_items_in_batch` to any forward with **kwargs and then stops dividing by the
accumulation steps)."""
import pytest
import torch
from transformers import Trainer, TrainingArguments

from core.scratch import setup
from core.settings import Settings
from tests.core.scratch.scratch_fixtures import config, text_dataset


@pytest.fixture(scope="module")
def settings(tmp_path_factory):
    s = Settings(workspace=tmp_path_factory.mktemp("losses-ws"))
    text_dataset(s)
    return s


def args(out, **kw) -> TrainingArguments:
    return TrainingArguments(**{**dict(output_dir=str(out), report_to=[], use_cpu=True, save_strategy="no",
                                       eval_strategy="no", logging_steps=1, seed=0, disable_tqdm=True,
                                       dataloader_num_workers=0), **kw})


def test_tiny_gpt_eval_loss_is_the_mean_over_predicted_tokens(settings, tmp_path):
    arch = config("gpt", "x").architecture
    arch.update(vocab_size=300, n_embd=32, n_layer=1, n_head=2, dropout=0.0)
    task = setup(config("gpt", "tiny-reviews", architecture=arch, max_length=32, eval_fraction=0.2), settings, tmp_path)
    rows = len(task.eval_dataset)
    trainer = Trainer(model=task.model, args=args(tmp_path, per_device_eval_batch_size=rows),  # one batch
                      eval_dataset=task.eval_dataset, data_collator=task.data_collator,
                      compute_metrics=task.compute_metrics)
    reported = trainer.evaluate()["eval_loss"]
    batch = task.data_collator([task.eval_dataset[i] for i in range(rows)])
    with torch.no_grad():
        logits = task.model.eval()(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
    # position t predicts token t + 1: the last position predicts nothing, the first token is never a target
    target = batch["labels"][:, 1:]
    by_hand = torch.nn.functional.cross_entropy(logits[:, :-1].reshape(-1, logits.size(-1)), target.reshape(-1),
                                                ignore_index=-100).item()
    # averaged over every label instead (loss_type None) it read 5.0 for 5.3 here: 190 targets / 202 labels
    assert (target != -100).sum() < (batch["labels"] != -100).sum()
    assert reported == pytest.approx(by_hand, rel=1e-5)


@pytest.mark.parametrize("kind", ["mlp", "seq2seq"])
def test_gradient_accumulation_averages_over_the_effective_batch(settings, tmp_path, kind):
    """4 accumulated micro-batches of 8 log the loss and gradient norm of one batch of 32 (the same 32 rows:
    both samplers cut the same seeded permutation; lr 0 and no dropout keep the model fixed)."""
    if kind == "mlp":
        arch = {"kind": "mlp", "layers": [{"type": "Linear", "out_features": 16}, {"type": "ReLU"}]}
        cfg = config("mlp", "sklearn:iris", architecture=arch)
    else:
        arch = config("seq2seq", "x").architecture
        arch.update(d_model=16, dim_feedforward=32, train_size=64, eval_size=8, max_len=6, dropout=0.0)
        cfg = config("seq2seq", "toy:reverse", architecture=arch)
    logged = []
    for batch, accumulate in ((32, 1), (8, 4)):
        task = setup(cfg, settings, tmp_path)
        trainer = Trainer(model=task.model, args=args(tmp_path, max_steps=1, learning_rate=0.0,
                                                      per_device_train_batch_size=batch,
                                                      gradient_accumulation_steps=accumulate),
                          train_dataset=task.train_dataset, data_collator=task.data_collator)
        trainer.train()
        logged.append(next(h for h in trainer.state.log_history if "loss" in h))
    one, accumulated = logged
    # before the fix the accumulated run logged 4 × the loss (and stepped on 4 × the gradient)
    assert accumulated["loss"] == pytest.approx(one["loss"], rel=1e-4)
    assert accumulated["grad_norm"] == pytest.approx(one["grad_norm"], rel=1e-4)
