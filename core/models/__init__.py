"""Transformer anatomy: open a BERT-family encoder, a GPT-2-style decoder or a BART's encoder; prove every number.

    from core.models import inspect_text, load_model, walk_head
    lm = load_model("minilm-l6")                 # packaged; or a run's folder, a local folder, a hub id
    anatomy = inspect_text(lm, "Transformers are amazing")
    walk = walk_head(lm, anatomy, layer=2, head=5)  # with verify=False: the head alone now, verify_walk() later
    [(c.name, c.matched) for c in walk.checks]   # every step against the model's own tensors
    padded = inspect_text(lm, "A dog barked.", batch_with="The cat sat on the mat.")  # the shorter row, [PAD]s in

Sampling (`next_token_probs`, `choose_token`) and positions (`sinusoidal_table`) are pure numpy.
"""
from core.models.anatomy import encode, inspect_text, run_anatomy
from core.models.attention import attention_mask, compare_masks, verify_walk, walk_head
from core.models.loading import CAUSAL_HINT, PACKAGED, LoadedModel, is_causal_folder, load_model, model_family
from core.models.positions import PositionTables, cosine_similarity, position_tables, sinusoidal_table
from core.models.sampling import (
    TokenChoice,
    choose_token,
    next_token_probs,
    softmax,
    top_k_mask,
    top_p_mask,
    top_tokens,
)
from core.models.snippets import reproduce_code
from core.models.summaries import head_summaries, pooled
from core.models.types import ATOL, Anatomy, AnatomyError, Check, HeadSummary, HeadWalk

__all__ = [
    "ATOL", "Anatomy", "AnatomyError", "CAUSAL_HINT", "Check", "HeadSummary", "HeadWalk", "LoadedModel",
    "PACKAGED", "PositionTables", "TokenChoice", "attention_mask", "choose_token", "compare_masks",
    "cosine_similarity", "encode", "head_summaries", "inspect_text", "is_causal_folder", "load_model", "model_family",
    "next_token_probs", "pooled", "position_tables", "reproduce_code", "run_anatomy", "sinusoidal_table",
    "softmax", "top_k_mask", "top_p_mask", "top_tokens", "verify_walk", "walk_head",
]
