"""Choosing the epoch on a validation split carved from the training rows, not on the test split.

The job engine hands the Trainer one `eval_dataset` (the test split) and, with early stopping, judges the
best checkpoint on the evaluations made while training. `validation_trainer(validation)` is a Trainer
subclass that evaluates on `validation` while `train()` runs (the curve's eval points, early stopping,
`load_best_model_at_end`) and on the test split everywhere else: the final `evaluate()` reports the test split
once, for the epoch the validation split chose."""
from __future__ import annotations


def validation_trainer(validation, base=None):
    """A subclass of `base` (Trainer) whose evaluations inside `train()` read `validation`."""
    from transformers import Trainer

    class ValidationTrainer(base or Trainer):
        validation_dataset = validation

        def train(self, *args, **kwargs):
            self._on_validation = True
            try:
                out = super().train(*args, **kwargs)
            finally:
                self._on_validation = False
            if not self.args.load_best_model_at_end and self.args.eval_strategy != "no":
                # the engine reuses the last logged evaluation as the final figure when it was made at the last
                # step: make that one the test split's (with the best checkpoint loaded the engine evaluates anew)
                self.evaluate()
            return out

        def evaluate(self, eval_dataset=None, ignore_keys=None, metric_key_prefix="eval"):
            if eval_dataset is None and getattr(self, "_on_validation", False):
                eval_dataset = self.validation_dataset
            return super().evaluate(eval_dataset, ignore_keys, metric_key_prefix)

    return ValidationTrainer
