"""Batches as a model sees them: padding, truncation, overflow windows and the tensors, unpacked.

The batch's shape is predicted from one cheap pass over the token counts before anything is built,
so a batch whose rows could not form one tensor, or that is too big to draw, is refused with a
`TextError` that says why instead of failing inside transformers or the Rust library.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from core.tokenizers.guard import ENCODE_BUDGET_S, TextError, bounded, rust_errors, whole

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerFast

PADDINGS = ("longest", "max_length", "do_not_pad")
MAX_BATCH_POSITIONS = 4096  # columns of the batch view (and the largest max_length it takes)
MAX_BATCH_CELLS = 100_000  # rows × positions: the page draws the tokens and every tensor as a grid
MAX_BATCH_LINES = 1000


def encode_ids(tok: PreTrainedTokenizerFast, texts: list[str], budget_s: float | None = None,
               special: bool = True) -> list[list[int]]:
    """Token ids of many texts at once: one call into the Rust batch encoder (all cores)."""

    def run():
        return tok(texts, add_special_tokens=special, padding=False, truncation=False,
                   return_attention_mask=False, return_token_type_ids=False)["input_ids"]

    if budget_s is None:
        with rust_errors(TextError, "the tokenizer could not encode the texts"):
            return run()
    return bounded(run, error=TextError, what="encoding the texts", budget_s=budget_s, owner=tok)


@dataclass
class BatchView:
    """What `tokenizer(texts, padding=…, truncation=…, return_tensors="pt")` returns, unpacked."""

    tensors: dict[str, list[list[int]]]  # input_ids, attention_mask, token_type_ids, …
    tokens: list[list[str]]  # one row per sequence (overflow rows included)
    sample_of_row: list[int]  # which input sentence each row came from
    shape: tuple[int, int]
    tensor_repr: str  # str() of the real torch tensor


def _left(deadline: float) -> float:
    """Seconds left of one action's budget (a sliver at least, so a finished call still returns)."""
    return max(0.05, deadline - time.monotonic())


def _windows(n: int, window: int, stride: int) -> int:
    """Rows the Rust truncation makes of `n` tokens: windows of `window`, each repeating `stride`."""
    return 1 + max(0, -(-(n - window) // (window - stride)))


def _check_batch_args(padding: object, max_length: object, truncation: object, stride: object,
                      overflow: object) -> None:
    if padding not in PADDINGS:
        raise TextError(f"padding must be one of {', '.join(PADDINGS)}, got {padding!r}")
    if max_length is not None:
        whole(max_length, "max_length", 1, MAX_BATCH_POSITIONS, TextError)
    whole(stride, "stride", 0, MAX_BATCH_POSITIONS, TextError)
    for label, flag in (("truncation", truncation), ("overflow", overflow)):
        if not isinstance(flag, bool):
            raise TextError(f"{label} must be True or False, got {flag!r}")


def _batch_shape(tok: PreTrainedTokenizerFast, texts: list[str], pairs: list[str] | None, padding: str,
                 max_length: int | None, cut: bool, stride: int, overflow: bool, deadline: float) -> tuple[int, int]:
    """(rows, positions) the batch will have, from one cheap pass without padding, truncation or tensors.

    Refuses, before anything is built, a batch whose rows could not form one tensor or that is too big to show.
    """
    sp = tok.num_special_tokens_to_add(pair=pairs is not None)
    first = [len(r) for r in encode_ids(tok, texts, _left(deadline), special=False)]
    second = [len(r) for r in encode_ids(tok, pairs, _left(deadline), special=False)] if pairs else [0] * len(first)
    total = [a + b + sp for a, b in zip(first, second, strict=True)]
    longest = max(total)
    if padding == "max_length" and not cut and longest > max_length:
        i = total.index(longest)
        raise TextError(f"padding to max_length {max_length} without truncation: sentence {i + 1} has {longest:,} "
                        f"tokens, so the rows would have different lengths and can't form one tensor "
                        f"(`return_tensors='pt'` raises here). Tick \"Truncate\" or raise max_length to {longest:,}.")
    rows = len(texts)
    if overflow:  # pairs keep the first part whole and window the second (the question-answering recipe)
        rows = 0
        for i, (a, b) in enumerate(zip(first, second, strict=True)):
            window = max_length - sp - (a if pairs else 0)
            if window <= stride:
                raise TextError(f"sentence {i + 1}: " + (f"its first part has {a:,} tokens, leaving {max(window, 0):,} "
                                f"of max_length {max_length} for the second, which must be more than the stride "
                                f"{stride}" if pairs else f"stride {stride} must be smaller than max_length minus the "
                                f"{sp} special tokens ({window})"))
            rows += _windows(b if pairs else a, window, stride)
    width = max_length if padding == "max_length" else min(longest, max_length) if cut else longest
    if width > MAX_BATCH_POSITIONS:
        raise TextError(f"the longest sentence has {longest:,} tokens, over the {MAX_BATCH_POSITIONS:,} positions the "
                        "batch view shows: tick \"Truncate\" with a max_length")
    if rows * width > MAX_BATCH_CELLS:
        raise TextError(f"this batch would be {rows:,} rows × {width:,} positions = {rows * width:,} cells, over the "
                        f"cap of {MAX_BATCH_CELLS:,}: use fewer or shorter sentences, a smaller max_length, or (with "
                        "overflow) a smaller stride")
    return rows, width


def batch_encode(tok: PreTrainedTokenizerFast, texts: list[str], *, pairs: list[str] | None = None,
                 padding: str = "longest", max_length: int | None = None, truncation: bool = False,
                 stride: int = 0, overflow: bool = False, budget_s: float = ENCODE_BUDGET_S) -> BatchView:
    """Encode several sentences as one padded batch, through the Rust batch encoder.

    Every argument is checked and the batch's size predicted before anything is built: a batch that
    can't form one tensor, or is over `MAX_BATCH_CELLS`, is refused with a `TextError` saying why.
    """
    _check_batch_args(padding, max_length, truncation, stride, overflow)
    if not isinstance(texts, list) or not all(isinstance(t, str) for t in texts):
        raise TextError("the sentences must be a list of strings")
    if pairs is not None and (not isinstance(pairs, list) or not all(isinstance(t, str) for t in pairs)):
        raise TextError("the second parts must be a list of strings")
    texts = [t for t in texts if t.strip()]
    if not texts:
        raise TextError("no sentences: write one sentence per line")
    if len(texts) > MAX_BATCH_LINES:
        raise TextError(f"{len(texts):,} sentences, over the cap of {MAX_BATCH_LINES:,} for one batch")
    if pairs is not None and len(pairs) != len(texts):
        raise TextError("every line of a pair batch needs both parts, written `first ||| second`")
    if padding == "max_length" and not max_length:
        raise TextError("padding to max_length needs a max_length")
    if (truncation or overflow) and not max_length:
        raise TextError("truncation needs a max_length")
    if padding != "do_not_pad" and tok.pad_token is None:
        raise TextError("this tokenizer has no padding token, so it can't pad a batch; choose no padding")
    specials = tok.num_special_tokens_to_add(pair=pairs is not None)
    if overflow and max_length and stride >= max_length - specials:
        raise TextError(f"stride {stride} must be smaller than max_length minus the {specials} special "
                        f"tokens ({max_length - specials})")
    if max_length and max_length <= specials:
        raise TextError(f"max_length {max_length} leaves no room next to the {specials} special tokens")
    deadline = time.monotonic() + budget_s
    cut = truncation or overflow
    _batch_shape(tok, texts, pairs, padding, max_length, cut, stride, overflow, deadline)
    strategy = ("only_second" if overflow and pairs else "longest_first") if cut else False
    enc = bounded(lambda: tok(texts, pairs, padding=padding if padding != "do_not_pad" else False,
                              truncation=strategy, max_length=max_length, stride=stride if overflow else 0,
                              return_overflowing_tokens=overflow),
                  error=TextError, what="encoding the batch", budget_s=_left(deadline),
                  owner=tok)
    mapping = enc.pop("overflow_to_sample_mapping", None)
    tensors = {k: list(v) for k, v in enc.items()}
    rows = tensors["input_ids"]
    if padding != "do_not_pad" and len({len(r) for r in rows}) > 1:  # never expected after the shape check
        raise TextError("the padded rows still differ in length, so they can't form one tensor")
    if padding != "do_not_pad":
        import torch

        text_repr = "\n".join(f"{k} = {torch.tensor(v)!r}" for k, v in tensors.items())
    else:
        text_repr = "(rows of different lengths: without padding return_tensors='pt' raises, so none here)"
    shape = (len(rows), max(len(r) for r in rows))
    return BatchView(tensors, [tok.convert_ids_to_tokens(r) for r in rows],
                     list(mapping) if mapping is not None else list(range(len(rows))), shape, text_repr)
