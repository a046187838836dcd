"""The plain transformers + torch lines that reproduce what the anatomy page shows for one head."""
from __future__ import annotations

_BERT = '''import torch
from transformers import AutoModel, AutoTokenizer

path = {path!r}
tok = AutoTokenizer.from_pretrained(path)
model = AutoModel.from_pretrained(path, attn_implementation="eager").eval()  # eager returns attentions
enc = tok({text!r}, return_tensors="pt", truncation=True, max_length={max_tokens})
with torch.no_grad():
    out = model(**enc, output_attentions=True, output_hidden_states=True)
    layer, head = {layer}, {head}
    weights = out.attentions[layer][0, head]          # (T, T) the head view
    x = out.hidden_states[layer][0]                   # (T, {hidden}) the layer's input
    att = model.encoder.layer[layer].attention.self
    d = att.attention_head_size                       # d_k = {head_dim}
    rows = slice(head * d, (head + 1) * d)            # this head's rows of W_Q, W_K, W_V
    q = x @ att.query.weight[rows].T + att.query.bias[rows]
    k = x @ att.key.weight[rows].T + att.key.bias[rows]
    v = x @ att.value.weight[rows].T + att.value.bias[rows]
    scores = q @ k.T / d ** 0.5                       # one sentence, no padding: nothing to mask
    mine = torch.softmax(scores, dim=-1)
    context = mine @ v                                # (T, d) this head's slice of the concatenation
print(tok.convert_ids_to_tokens(enc["input_ids"][0]))
print("matches the model:", torch.allclose(mine, weights, atol=1e-5))
'''

_GPT2 = '''import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

path = {path!r}
tok = AutoTokenizer.from_pretrained(path)
model = AutoModelForCausalLM.from_pretrained(path, attn_implementation="eager").eval()
ids = tok({text!r}, return_tensors="pt", add_special_tokens=False)["input_ids"]  # ids only: no token_type_ids
with torch.no_grad():
    out = model(input_ids=ids, output_attentions=True, output_hidden_states=True)
    layer, head = {layer}, {head}
    weights = out.attentions[layer][0, head]          # (T, T) the head view
    blk = model.transformer.h[layer]
    x = blk.ln_1(out.hidden_states[layer][0])         # GPT-2 normalises before attention
    H, d = model.config.hidden_size, model.config.hidden_size // model.config.n_head
    q, k, v = (x @ blk.attn.c_attn.weight + blk.attn.c_attn.bias).split(H, dim=-1)  # Conv1D: x @ W
    q, k, v = (t[:, head * d:(head + 1) * d] for t in (q, k, v))
    scores = q @ k.T * {scaling!r}                    # 1/sqrt(d_k)
    causal = torch.ones(len(x), len(x)).tril().bool() # a token sees itself and the tokens before it
    mine = torch.softmax(scores.masked_fill(~causal, float("-inf")), dim=-1)
    context = mine @ v
    probs = torch.softmax(out.logits[0, -1] / {temperature!r}, dim=-1)  # next token, at this temperature
print("matches the model:", torch.allclose(mine, weights, atol=1e-5))
print("most likely next:", tok.convert_ids_to_tokens(probs.topk(5).indices.tolist()))
'''


def reproduce_code(lm, text: str, layer: int, head: int, temperature: float = 1.0) -> str:
    """Code for `lm` (a LoadedModel) and `text` that recomputes (layer, head) and compares it with the model."""
    from core.models.attention import scaling_of

    template = _GPT2 if lm.family == "gpt2" else _BERT
    return template.format(path=lm.path, text=text, layer=layer, head=head, max_tokens=lm.max_tokens,
                           hidden=lm.config.hidden_size, head_dim=lm.head_dim, scaling=scaling_of(lm, layer),
                           temperature=max(float(temperature), 1e-4))
