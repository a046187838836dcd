"""From-scratch models wrapped as transformers models (PretrainedConfig + PreTrainedModel), so the Trainer,
save_pretrained and from_pretrained serve them like any checkpoint. Nothing is registered with AutoModel:
each folder is loaded with its own class (see `core.scratch.inference`)."""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn
from transformers import GPT2Config, GPT2LMHeadModel, PretrainedConfig, PreTrainedModel
from transformers.modeling_outputs import Seq2SeqLMOutput, SequenceClassifierOutput
from transformers.utils import ModelOutput

from core.scratch.modules import PositionalEncoding, Stack


class ScratchConfig(PretrainedConfig):
    """A classifier from a layer list: MLP / CNN over numbers, RNN / Transformer encoder over token ids."""

    model_type = "torchlab-scratch"

    def __init__(self, architecture: dict | None = None, input_shape: list | None = None, input_dtype: str = "float",
                 feature_mean: list | None = None, feature_std: list | None = None, **kwargs):
        self.architecture = architecture or {}
        self.input_shape = list(input_shape or [])  # one example, batch excluded: (F,), (C, H, W) or (T,)
        self.input_dtype = input_dtype  # "float" (numbers) or "long" (token ids)
        self.feature_mean = feature_mean  # standardisation fitted on the training rows (numbers only)
        self.feature_std = feature_std
        super().__init__(**kwargs)


def mean_loss(logits, labels, num_items_in_batch=None):
    """Cross-entropy averaged over the labels of the whole optimizer step. The Trainer sees `**kwargs` in a
    forward and then passes `num_items_in_batch` (the labels of every accumulated micro-batch) and no longer
    divides by the accumulation steps itself: a per-micro-batch mean would be summed, k times too large with
    k-step gradient accumulation (logged loss and gradients)."""
    flat_logits, flat_labels = logits.reshape(-1, logits.size(-1)), labels.reshape(-1)
    if num_items_in_batch is None:
        return nn.functional.cross_entropy(flat_logits, flat_labels, ignore_index=-100)
    total = nn.functional.cross_entropy(flat_logits, flat_labels, ignore_index=-100, reduction="sum")
    return total / num_items_in_batch


def _torch_default_init(module: nn.Module) -> None:
    """PyTorch's own initialisation (Kaiming-uniform for Linear / Conv), which these small nets are tuned for."""
    if hasattr(module, "reset_parameters") and not isinstance(module, (nn.TransformerEncoderLayer,)):
        with torch.no_grad():
            module.reset_parameters()


class ScratchClassifier(PreTrainedModel):
    """The layer list as one classifier: inputs (numbers) or input_ids (+ attention_mask) -> logits over classes."""

    config_class = ScratchConfig
    base_model_prefix = "body"
    main_input_name = "inputs"

    def __init__(self, config: ScratchConfig):
        from core.scratch.layers import resolve

        super().__init__(config)
        resolved = resolve(config.architecture["layers"], tuple(config.input_shape), config.num_labels,
                           config.input_dtype)
        self.body = Stack(resolved)
        n = len(config.feature_mean or [])
        self.register_buffer("feature_mean", torch.tensor(config.feature_mean or [], dtype=torch.float32))
        self.register_buffer("feature_std", torch.tensor(config.feature_std or [], dtype=torch.float32))
        self._standardise = n > 0
        self.post_init()

    def _init_weights(self, module):
        _torch_default_init(module)

    def forward(self, inputs=None, input_ids=None, attention_mask=None, labels=None, num_items_in_batch=None, **_):
        if self.config.input_dtype == "long":
            x, mask = input_ids, attention_mask
        else:
            x, mask = inputs.float(), None
            if self._standardise:
                x = (x - self.feature_mean) / self.feature_std
            x = x.view(x.size(0), *self.config.input_shape)
        logits = self.body(x, mask)
        loss = mean_loss(logits, labels, num_items_in_batch) if labels is not None else None
        return SequenceClassifierOutput(loss=loss, logits=logits)


class Seq2SeqConfig(PretrainedConfig):
    """nn.Transformer encoder–decoder over a small vocabulary (the toy reverse task)."""

    model_type = "torchlab-seq2seq"

    def __init__(self, vocab_size: int = 13, d_model: int = 64, nhead: int = 4, num_encoder_layers: int = 2,
                 num_decoder_layers: int = 2, dim_feedforward: int = 128, dropout: float = 0.1, max_len: int = 32,
                 norm_first: bool = True, pad_token_id: int = 0, bos_token_id: int = 1, eos_token_id: int = 2, **kwargs):
        self.vocab_size, self.d_model, self.nhead = vocab_size, d_model, nhead
        self.num_encoder_layers, self.num_decoder_layers = num_encoder_layers, num_decoder_layers
        self.dim_feedforward, self.dropout, self.max_len = dim_feedforward, dropout, max_len
        self.norm_first = norm_first  # layer norm before attention / feed-forward (pre-LN): trains at higher rates
        super().__init__(pad_token_id=pad_token_id, bos_token_id=bos_token_id, eos_token_id=eos_token_id, **kwargs)


class Seq2SeqTransformer(PreTrainedModel):
    """PyTorch's nn.Transformer with shared token embeddings, sinusoidal positions and a linear generator."""

    config_class = Seq2SeqConfig
    main_input_name = "input_ids"

    def __init__(self, config: Seq2SeqConfig):
        super().__init__(config)
        self.embed = nn.Embedding(config.vocab_size, config.d_model, padding_idx=config.pad_token_id)
        self.positions = PositionalEncoding(config.d_model, config.max_len + 2, config.dropout)
        self.transformer = nn.Transformer(config.d_model, config.nhead, config.num_encoder_layers,
                                          config.num_decoder_layers, config.dim_feedforward, config.dropout,
                                          batch_first=True, norm_first=config.norm_first)
        # padded positions stay in the output (no nested tensors): same shapes in training, evaluation, tables
        self.transformer.encoder.enable_nested_tensor = self.transformer.encoder.use_nested_tensor = False
        self.generator = nn.Linear(config.d_model, config.vocab_size)
        self.post_init()

    def _init_weights(self, module):
        _torch_default_init(module)

    def shift_right(self, labels):
        start = torch.full_like(labels[:, :1], self.config.bos_token_id)
        dec = torch.cat([start, labels[:, :-1]], dim=1)
        return dec.masked_fill(dec == -100, self.config.pad_token_id)

    def forward(self, input_ids=None, attention_mask=None, decoder_input_ids=None, labels=None,
                num_items_in_batch=None, **_):
        if decoder_input_ids is None:
            decoder_input_ids = self.shift_right(labels)
        # no sqrt(d_model) scaling: nn.Embedding starts at N(0, 1), as loud as the positions already, and
        # reversing needs the positions heard
        src = self.positions(self.embed(input_ids))
        tgt = self.positions(self.embed(decoder_input_ids))
        n = tgt.size(1)
        causal = torch.ones(n, n, dtype=torch.bool, device=tgt.device).triu(1)  # True = may not attend
        src_pad = None if attention_mask is None else ~attention_mask.bool()
        tgt_pad = decoder_input_ids == self.config.pad_token_id
        tgt_pad[:, 0] = False  # the start token is never padding
        hidden = self.transformer(src, tgt, tgt_mask=causal, src_key_padding_mask=src_pad,
                                  tgt_key_padding_mask=tgt_pad, memory_key_padding_mask=src_pad,
                                  tgt_is_causal=True)
        logits = self.generator(hidden)
        loss = mean_loss(logits, labels, num_items_in_batch) if labels is not None else None
        return Seq2SeqLMOutput(loss=loss, logits=logits)

    @torch.no_grad()
    def greedy(self, input_ids, attention_mask=None, max_new_tokens: int | None = None):
        """Greedy decoding: one token at a time until every row has produced eos."""
        n = max_new_tokens or self.config.max_len + 1
        out = torch.full_like(input_ids[:, :1], self.config.bos_token_id)
        done = torch.zeros(input_ids.size(0), dtype=torch.bool, device=input_ids.device)
        for _ in range(n):
            logits = self.forward(input_ids, attention_mask, decoder_input_ids=out).logits[:, -1]
            nxt = logits.argmax(-1).masked_fill(done, self.config.pad_token_id)
            out = torch.cat([out, nxt[:, None]], dim=1)
            done |= nxt == self.config.eos_token_id
            if done.all():
                break
        return out[:, 1:]


class TinyGPTConfig(GPT2Config):
    """GPT2Config sized down; evaluation returns per-token losses, not the (B, T, vocab) logits, to the Trainer."""

    keys_to_ignore_at_inference = ["past_key_values", "logits"]


@dataclass
class TinyGPTOutput(ModelOutput):
    loss: torch.FloatTensor | None = None
    logits: torch.FloatTensor | None = None
    token_nll: torch.FloatTensor | None = None  # (B, T): -log p(token t | tokens < t); 0 where there is none
    token_hit: torch.FloatTensor | None = None  # (B, T): 1 where the most likely next token was right


class TinyGPT(GPT2LMHeadModel):
    """GPT2LMHeadModel whose evaluation also returns token-level losses, so perplexity is counted per token
    (the same tokens the bigram baseline scores) without holding every logit of the evaluation set."""

    config_class = TinyGPTConfig

    def __init__(self, config: TinyGPTConfig):
        super().__init__(config)
        # transformers 5 names the loss after the class: "TinyGPT" (like "GPT2LMHeadModel") matches no loss, so
        # loss_type is None. The loss itself still defaults to the causal one, but the Trainer counts the tokens
        # it divides by over all T labels instead of the T - 1 predicted ones unless loss_type says "ForCausalLM":
        # eval_loss read 6 % low on the tests' rows of about 17 tokens (tests/core/scratch/test_losses.py)
        self.loss_type = "ForCausalLM"

    def forward(self, input_ids=None, attention_mask=None, labels=None, **kwargs):
        out = super().forward(input_ids=input_ids, attention_mask=attention_mask, labels=labels, **kwargs)
        if labels is None or self.training:
            return out
        logits = out.logits[:, :-1].float()
        target = labels[:, 1:]
        valid = target != -100
        nll = nn.functional.cross_entropy(logits.transpose(1, 2), target.clamp(min=0), reduction="none") * valid
        hit = (logits.argmax(-1) == target) & valid
        pad = torch.zeros_like(nll[:, :1])
        return TinyGPTOutput(loss=out.loss, logits=out.logits, token_nll=torch.cat([pad, nll], 1),
                             token_hit=torch.cat([pad, hit.float()], 1))
