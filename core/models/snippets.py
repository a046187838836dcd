"""The plain transformers + torch lines that reproduce what the anatomy page shows for one head."""
from __future__ import annotations

_BERT = '''import torch
from transformers import {auto}, AutoTokenizer

path = {path!r}
tok = AutoTokenizer.from_pretrained(path)
model = {auto}.from_pretrained(path, attn_implementation="eager").eval()  # eager returns attentions
{encode}
with torch.no_grad():
    out = {call}
    layer, head = {layer}, {head}
    weights = out.attentions[layer][0, head]          # (T, T) the head view
    x = out.hidden_states[layer][0]                   # (T, {hidden}) the layer's input
    att = {att}
    d = {head_dim}  # d_k, one head's width
    rows = slice(head * d, (head + 1) * d)            # this head's rows of W_Q, W_K, W_V
    q = x @ att.{q}.weight[rows].T + att.{q}.bias[rows]
    k = x @ att.{k}.weight[rows].T + att.{k}.bias[rows]
    v = x @ att.{v}.weight[rows].T + att.{v}.bias[rows]
{scores}
    mine = torch.softmax(scores, dim=-1)
    context = mine @ v                                # (T, d) this head's slice of the concatenation
print(tok.convert_ids_to_tokens(enc["input_ids"][0]))
print("matches the model:", torch.allclose(mine, weights, atol=1e-5))
'''
_BERT_ONE = ('enc = tok({text!r}, return_tensors="pt", truncation=True, max_length={max_tokens})',
             '    scores = q @ k.T / d ** 0.5                       # one sentence, no padding: nothing to mask')
_BERT_PADDED = (
    'texts = [{text!r}, {other!r}]\n'
    'enc = tok(texts, return_tensors="pt", padding=True, truncation=True, max_length={max_tokens})'
    '  # row 0 is shown',
    '    keep = enc["attention_mask"][0].bool()            # False at [PAD]: no query may look there\n'
    '    scores = (q @ k.T / d ** 0.5).masked_fill(~keep, float("-inf"))  # [PAD] columns: weight exactly 0')

_BERT_NAMES = dict(auto="AutoModel", call="model(**enc, output_attentions=True, output_hidden_states=True)",
                   att="model.encoder.layer[layer].attention.self", q="query", k="key", v="value")
# a BART's encoder, run alone (it takes no token_type_ids)
_BART = dict(auto="AutoModelForSeq2SeqLM", att="model.get_encoder().layers[layer].self_attn", q="q_proj", k="k_proj",
             v="v_proj", call="model.get_encoder()(input_ids=enc[\"input_ids\"], attention_mask=enc[\"attention_mask\"],\n"
             "                              output_attentions=True, output_hidden_states=True)")

_GPT2 = '''import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

path = {path!r}
tok = AutoTokenizer.from_pretrained(path)
model = AutoModelForCausalLM.from_pretrained(path, attn_implementation="eager").eval()
{encode}
keep = mask[0].bool()                               # False at [PAD]: no query may look there
with torch.no_grad():
    out = model(input_ids=ids, attention_mask=mask, output_attentions=True, output_hidden_states=True)
    layer, head = {layer}, {head}
    weights = out.attentions[layer][0, head]          # (T, T) the head view
    blk = model.transformer.h[layer]
    x = blk.ln_1(out.hidden_states[layer][0])         # GPT-2 normalises before attention
    H, d = model.config.hidden_size, model.config.hidden_size // model.config.n_head
    q, k, v = (x @ blk.attn.c_attn.weight + blk.attn.c_attn.bias).split(H, dim=-1)  # Conv1D: x @ W
    q, k, v = (t[:, head * d:(head + 1) * d] for t in (q, k, v))
    scores = q @ k.T * {scaling!r}                    # 1/sqrt(d_k)
    causal = torch.ones(len(x), len(x)).tril().bool() # a token sees itself and the tokens before it
    mine = torch.softmax(scores.masked_fill(~(causal & keep), float("-inf")), dim=-1)
    context = mine @ v
    last = int(keep.sum()) - 1                        # the last real token (padding comes after it)
    probs = torch.softmax(out.logits[0, last] / {temperature!r}, dim=-1)  # next token, at this temperature
print("matches the model:", torch.allclose(mine, weights, atol=1e-5))
print("most likely next:", tok.convert_ids_to_tokens(probs.topk(5).indices.tolist()))
'''
_GPT2_ONE = ('ids = tok({text!r}, return_tensors="pt", add_special_tokens=False)["input_ids"]'
             '  # ids only: no token_type_ids\n'
             'mask = torch.ones_like(ids)                         # one text, no padding',)
_GPT2_PADDED = (
    'tok.pad_token = tok.pad_token or tok.eos_token     # GPT-2 has no pad token of its own\n'
    'tok.padding_side = "right"                         # positions 0, 1, 2… stay right without position_ids\n'
    'enc = tok([{text!r}, {other!r}], return_tensors="pt", add_special_tokens=False, padding=True)\n'
    'ids, mask = enc["input_ids"], enc["attention_mask"]  # row 0 is shown',)


def reproduce_code(lm, text: str, layer: int, head: int, temperature: float = 1.0,
                   batch_with: str | None = None) -> str:
    """Code for `lm` (a LoadedModel) and `text` that recomputes (layer, head) and compares it with the model.

    With `batch_with`, `text` is row 0 of a batch with that second text, padded as the page pads it.
    """
    from core.models.attention import scaling_of

    fields = dict(**(_BART if lm.family == "bart" else _BERT_NAMES),path=lm.path, text=text, other=batch_with, layer=layer, head=head, max_tokens=lm.max_tokens,
                  hidden=lm.config.hidden_size, head_dim=lm.head_dim, scaling=scaling_of(lm, layer),
                  temperature=max(float(temperature), 1e-4))
    if lm.family == "gpt2":
        (encode,) = _GPT2_PADDED if batch_with is not None else _GPT2_ONE
        return _GPT2.format(encode=encode.format(**fields), **fields)
    encode, scores = _BERT_PADDED if batch_with is not None else _BERT_ONE
    return _BERT.format(encode=encode.format(**fields), scores=scores.format(**fields), **fields)
