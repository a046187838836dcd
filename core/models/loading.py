"""Open a Transformer for inspection: the packaged MiniLM, a run's folder, a local folder or a hub id.

Models load in float32 with `attn_implementation="eager"` (the only implementation that returns
attention weights) and in eval mode. The loaded object is shared read-only by every caller.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.models.types import AnatomyError
from core.settings import Settings, get_settings

ENCODERS = ("bert",)  # BERT-family: embeddings.{word,position,token_type}, encoder.layer[i].attention.self
DECODERS = ("gpt2",)  # GPT-2-style: wte, wpe, h[i].attn.c_attn (Conv1D), ln_1 / ln_2 before each block
# encoder-decoders whose encoder opens: BART's is BERT's shape under other names (post-LayerNorm, learned
# positions); T5 (relative position bias), mBART / Marian (other norm order or sinusoidal positions) do not
SEQ2SEQ = ("bart",)
PACKAGED = "minilm-l6"
CAUSAL_HINT = ("No causal language model is loaded. Offline there is no packaged GPT: give a local folder "
               "holding a GPT-2-style model saved with `save_pretrained` (e.g. `GPT2LMHeadModel(GPT2Config(...))` "
               "and a tokenizer, trained or not), or train a Tiny GPT on the Build a network page: its completed "
               "run then appears in the model picker.")


@dataclass
class LoadedModel:
    """A model opened for anatomy, with its tokenizer and where its parts live."""

    name: str  # what the user picked
    path: str  # the folder or hub id it was loaded from
    family: str  # "bert" | "gpt2" | "bart" (its encoder)
    kind: str  # "encoder" | "decoder"
    model: Any  # the transformers model, eval mode; never mutate (cached for every session)
    tokenizer: Any
    max_tokens: int  # position-table length, capped at 512

    @property
    def config(self):
        return self.model.config

    @property
    def base(self):
        """The bare Transformer under any task head (BertModel, GPT2Model; BART: its encoder)."""
        if self.family == "bart":
            return self.model.get_encoder()
        return self.model.transformer if self.family == "gpt2" else self.model.base_model

    @property
    def runner(self):
        """What the anatomy runs: the model (a causal LM with its head, for the logits), or BART's encoder alone."""
        return self.base if self.family == "bart" else self.model

    @property
    def layers(self) -> list:
        if self.family == "bart":
            return list(self.base.layers)
        return list(self.base.h) if self.family == "gpt2" else list(self.base.encoder.layer)

    @property
    def num_heads(self) -> int:
        return int(self.config.num_attention_heads)

    @property
    def head_dim(self) -> int:
        return int(self.config.hidden_size) // self.num_heads


def _resolve(spec: str, settings: Settings) -> str:
    from core.assets import AssetError, resolve_model

    try:
        return resolve_model(spec, settings)
    except AssetError as e:
        raise AnatomyError(str(e)) from None


def model_family(folder: str | Path) -> str | None:
    """"bert", "gpt2" or "bart" when a saved model folder holds a model this page can open (config.json only)."""
    import json

    try:
        cfg = json.loads((Path(folder) / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    t = cfg.get("model_type")
    return "gpt2" if t in DECODERS else "bert" if t in ENCODERS else "bart" if t in SEQ2SEQ else None


def is_causal_folder(folder: str | Path) -> bool:
    """Whether a saved model folder holds a GPT-2-style causal LM (reads config.json only)."""
    import json

    try:
        cfg = json.loads((Path(folder) / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return cfg.get("model_type") in DECODERS


def load_model(spec: str, settings: Settings | None = None) -> LoadedModel:
    """Load `spec` (registry name, folder or hub id) for anatomy; AnatomyError says why it can't."""
    settings = settings or get_settings()
    path = _resolve(spec, settings)
    try:
        import torch
        from transformers import (
            AutoConfig,
            AutoModel,
            AutoModelForCausalLM,
            AutoModelForSeq2SeqLM,
            AutoTokenizer,
        )

        config = AutoConfig.from_pretrained(path)
        family = config.model_type
        if family not in ENCODERS + DECODERS + SEQ2SEQ:
            raise AnatomyError(f"{spec!r} is a {family!r} model; the anatomy opens BERT-family encoders "
                               f"({', '.join(ENCODERS)}), GPT-2-style causal LMs ({', '.join(DECODERS)}) and the "
                               f"encoder of a BART ({', '.join(SEQ2SEQ)}); T5's relative position bias and the "
                               "pre-LayerNorm or sinusoidal seq2seq models (mBART, Marian) are not recomputed yet")
        # a BART loads as the seq2seq run saved it (its LM head's keys then all match); the anatomy runs its encoder
        cls = AutoModelForCausalLM if family in DECODERS else AutoModelForSeq2SeqLM if family in SEQ2SEQ else AutoModel
        model = cls.from_pretrained(path, attn_implementation="eager", dtype=torch.float32)
        model.eval()
        try:
            tokenizer = AutoTokenizer.from_pretrained(path)
        except (OSError, ValueError, TypeError) as e:
            raise AnatomyError(f"{spec!r} has no tokenizer the anatomy can load ({type(e).__name__}); "
                               "save one beside the model with `tokenizer.save_pretrained(folder)`") from None
    except AnatomyError:
        raise
    except OSError as e:  # a hub id that does not exist, a folder with missing weights
        raise AnatomyError(f"could not load {spec!r}: {str(e)[:300]}") from None
    positions = config.n_positions if family in DECODERS else config.max_position_embeddings
    return LoadedModel(name=spec, path=path, family=family, kind="decoder" if family in DECODERS else "encoder",
                       model=model, tokenizer=tokenizer, max_tokens=min(512, int(positions)))
