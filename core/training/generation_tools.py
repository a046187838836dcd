"""Around a causal-lm / seq2seq run (core.training.generation): one example as the model sees it, generation from
the trained model with bounded settings, the equivalent transformers code, and the export script."""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from core.settings import Settings
from core.training import generation as G
from core.training.config import ConfigError, TrainingConfig
from core.training.tasks import MappedExample

MAX_PROMPT_CHARS = 20_000
MAX_TABLE_ROWS = 512


# --- one example as the model sees it ----------------------------------------------------------------------------

def _shown(tok, ids) -> list[str]:
    return [("ignored (-100)" if i == G.IGNORED else tok.convert_ids_to_tokens(int(i))) for i in ids]


def mapped_example(config: TrainingConfig, settings: Settings, model_path: str) -> MappedExample:
    """The first training block (packing) / row, tokens side by side with labels and masks; seq2seq also the
    decoder input (the labels shifted right). Reads only the first rows, not the whole dataset."""
    mcfg = G.check_model(config.task, model_path)
    train, _, _ = G.load_rows(config, settings)
    tok = G.load_tokenizer(model_path)
    if config.task == "seq2seq":
        return _seq2seq_example(config, train, tok, mcfg)
    col = config.columns["text"]
    packing = bool(getattr(config, "packing", G.PACKING))
    if not packing:
        return _padded_lm_example(config, train, tok, col)
    for k in (16, 256, G.GROUP_ROWS):
        rows = train.select(range(min(k, len(train))))
        G.check_texts(rows[col], "text", "train", allow_empty=True)
        blocks = G.lm_dataset(rows, col, tok, config.max_length, True)
        if len(blocks) or k >= len(train):
            break
    if not len(blocks):
        raise ConfigError("max_length", f"the first {len(rows)} rows hold fewer tokens than one block of "
                          f"{config.max_length}: lower max_length")
    ids = blocks[0]["input_ids"]
    end = G.end_token(tok)
    table = [{"position": i, "input token": t, "label": lab, "predicts (next token)": nxt, "attention mask": m}
             for i, (t, lab, nxt, m) in enumerate(zip(
                 _shown(tok, ids), _shown(tok, blocks[0]["labels"]), _shown(tok, ids[1:]) + ["—"],
                 blocks[0]["attention_mask"], strict=True))]
    notes = [f"Packing: rows are tokenized, an end-of-text token ({tok.convert_ids_to_tokens(end)}) closes each, "
             f"and the stream is cut into blocks of {config.max_length} tokens: no padding, and a row may continue "
             f"in the next block. This block holds {sum(1 for t in ids if t == end)} row ends.",
             "Labels are the inputs themselves: the model shifts them inside its loss, so position i is trained "
             "to predict the token at i + 1 (the last column); the first token is never predicted.",
             f"Tokens left after the last whole block of every {G.GROUP_ROWS:,} rows are dropped."]
    return MappedExample(table[:MAX_TABLE_ROWS], notes)


BATCH_ROWS = 8  # the example is one row of a batch of the first rows, padded as in training


def _pair(rows: list[dict], key: str) -> int:
    """Of a batch, the row with the shortest `key` (so its padding shows), the first of equals."""
    return min(range(len(rows)), key=lambda i: len(rows[i][key]))


def _padded_lm_example(config, train, tok, col) -> MappedExample:
    rows = train.select(range(min(BATCH_ROWS, len(train))))
    G.check_texts(rows[col], "text", "train", allow_empty=True)
    ds = G.lm_dataset(rows, col, tok, config.max_length, False)
    if not len(ds):
        raise ConfigError("columns.text", f"the first {len(rows)} rows of the training split are blank")
    feats = [{k: ds[i][k] for k in ("input_ids", "attention_mask")} for i in range(len(ds))]
    batch = G.PadCollator(tok)(feats)
    r = _pair(feats, "input_ids")
    ids, labels, mask = (batch[k][r].tolist() for k in ("input_ids", "labels", "attention_mask"))
    table = [{"position": i, "input token": t, "label": lab, "predicts (next token)": nxt, "attention mask": m}
             for i, (t, lab, nxt, m) in enumerate(zip(_shown(tok, ids), _shown(tok, labels),
                                                      _shown(tok, labels[1:]) + ["—"], mask, strict=True))]
    longest = max(len(f["input_ids"]) for f in feats)
    return MappedExample(table[:MAX_TABLE_ROWS], [
        f"Padding: one row per example, an end-of-text token ({tok.convert_ids_to_tokens(G.end_token(tok))}) after "
        f"it, cut to max_length {config.max_length} tokens and padded to the longest row of its batch ({longest} "
        f"here; row {r} of a batch of {len(feats)} is shown): rows never share a block.",
        "Padding positions have attention mask 0 and label -100 (ignored by the loss); the model shifts the labels "
        "inside its loss, so position i is trained to predict the token at i + 1 (the last column)."])


def _seq2seq_example(config, train, tok, mcfg) -> MappedExample:
    import torch
    from transformers import DataCollatorForSeq2Seq
    from transformers.models.bart.modeling_bart import shift_tokens_right

    src, tgt = config.columns["source"], config.columns["target"]
    rows = train.select(range(min(BATCH_ROWS, len(train))))
    G.check_texts(rows[src], "source", "train")
    G.check_texts(rows[tgt], "target", "train")
    ds = G.seq2seq_dataset(rows, config, tok)
    feats = [{k: ds[i][k] for k in ("input_ids", "attention_mask", "labels")} for i in range(len(ds))]
    batch = DataCollatorForSeq2Seq(tok, label_pad_token_id=G.IGNORED)(feats)
    # what the model builds from labels (its prepare_decoder_input_ids_from_labels): a start token, then the labels
    # shifted right by one, -100 read as padding
    dec = shift_tokens_right(torch.as_tensor(batch["labels"]), mcfg.pad_token_id if mcfg.pad_token_id is not None
                             else tok.pad_token_id, mcfg.decoder_start_token_id)
    r = _pair(feats, "labels")
    ids, mask, labels = (batch[k][r].tolist() for k in ("input_ids", "attention_mask", "labels"))
    n = max(len(ids), len(labels))
    cols = {"input token": _shown(tok, ids), "attention mask": mask, "label": _shown(tok, labels),
            "decoder input": _shown(tok, dec[r].tolist())}
    table = [{"position": i} | {k: (v[i] if i < len(v) else "") for k, v in cols.items()} for i in range(n)]
    full_src = len(tok(rows[src][r])["input_ids"])
    full_tgt = len(tok(text_target=rows[tgt][r])["input_ids"])
    notes = [f"Teacher forcing: the decoder reads the target shifted right (starting with "
             f"{tok.convert_ids_to_tokens(mcfg.decoder_start_token_id)}) and is trained to output the label at each "
             "position; padded label positions are -100, ignored by the loss.",
             f"Source {full_src} tokens" + (f", cut to max_length {config.max_length}" if full_src > config.max_length
                                            else "") + f"; target {full_tgt} tokens" +
             (f", cut to max target length {config.max_target_length}" if full_tgt > config.max_target_length else "")
             + f". Row {r} of a batch of {len(feats)}, padded to the batch's longest."]
    return MappedExample(table[:MAX_TABLE_ROWS], notes)


# --- generation --------------------------------------------------------------------------------------------------

@dataclass
class GenerationSettings:
    """How `generate` decodes: greedy by default; beams, or sampling with temperature / top-k / top-p."""

    max_new_tokens: int = 40  # tokens generated after the prompt
    num_beams: int = 1  # 1 = greedy (or plain sampling); more keeps that many hypotheses
    do_sample: bool = False  # draw each token from the distribution instead of taking the most likely
    temperature: float = 1.0  # sampling only: < 1 sharpens, > 1 flattens
    top_k: int = 50  # sampling only: draw among the k most likely tokens (0 = all)
    top_p: float = 1.0  # sampling only: among the fewest tokens whose probabilities sum to p
    seed: int = 0  # sampling only: the same seed gives the same text

    def validate(self) -> None:
        """ConfigError("settings.<name>", …) for a value out of its bounds."""
        for f in fields(self):
            v = getattr(self, f.name)
            if f.name == "do_sample":
                if not isinstance(v, bool):
                    raise ConfigError("settings.do_sample", f"must be True or False, got {v!r}")
                continue
            low, high = LIMITS[f.name]
            whole = isinstance(low, int)
            if isinstance(v, bool) or not isinstance(v, int if whole else (int, float)):
                raise ConfigError(f"settings.{f.name}", f"must be a {'whole ' if whole else ''}number from {low} to "
                                  f"{high}, got {v!r}")
            if not math.isfinite(v) or not low <= v <= high or (f.name in ("temperature", "top_p") and v <= 0):
                bounds = f"above 0 and at most {high}" if f.name in ("temperature", "top_p") else f"from {low} to {high}"
                raise ConfigError(f"settings.{f.name}", f"must be {bounds}, got {v!r}")


LIMITS = {"max_new_tokens": (1, 512), "num_beams": (1, 16), "temperature": (0.0, 10.0), "top_k": (0, 1000),
          "top_p": (0.0, 1.0), "seed": (0, 2**32 - 1)}


@dataclass
class Generator:
    """A trained model loaded for generation (cache it: loading reads the weights)."""

    path: str
    kind: str  # "decoder" | "encoder-decoder"
    model: Any
    tokenizer: Any

    @property
    def positions(self) -> int:
        c = self.model.config
        return int(getattr(c, "max_position_embeddings", None) or getattr(c, "n_positions", None) or 512)


def model_folder(source) -> str:
    """A run record (its saved model) or a folder path."""
    folder = getattr(source, "model_dir", source)
    if not folder or not (Path(folder) / "config.json").is_file():
        raise ValueError(f"no saved model at {folder!r} (the run did not complete, or the folder was removed)")
    return str(folder)


def load_generator(source) -> Generator:
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoModelForSeq2SeqLM

    path = model_folder(source)
    kind = G.model_kind(AutoConfig.from_pretrained(path))
    if kind not in ("decoder", "encoder-decoder"):
        raise ValueError(f"{path} holds a {kind} model: it can't generate text")
    cls = AutoModelForCausalLM if kind == "decoder" else AutoModelForSeq2SeqLM
    model = cls.from_pretrained(path, dtype=torch.float32).eval()
    return Generator(path, kind, model, G.load_tokenizer(path))


def generate(source, prompt: str, settings: GenerationSettings | dict | None = None) -> str:
    """Text from a run's model (a RunRecord or a folder): the prompt and its continuation for a decoder (as the
    text-generation pipeline returns), the output for an encoder-decoder. Bad settings raise ConfigError."""
    gen = source if isinstance(source, Generator) else None
    s = check_request(prompt, settings)
    return generate_with(gen or load_generator(source), prompt, s)


def check_request(prompt, settings) -> GenerationSettings:
    s = GenerationSettings(**settings) if isinstance(settings, dict) else settings or GenerationSettings()
    s.validate()
    if not isinstance(prompt, str):
        raise ConfigError("prompt", f"must be text, got {type(prompt).__name__}")
    if len(prompt) > MAX_PROMPT_CHARS:
        raise ConfigError("prompt", f"{len(prompt):,} characters, over the limit of {MAX_PROMPT_CHARS:,}")
    return s


def generate_with(gen: Generator, prompt: str, s: GenerationSettings) -> str:
    import torch

    check_request(prompt, s)
    tok, model = gen.tokenizer, gen.model
    kw = dict(num_beams=s.num_beams, do_sample=s.do_sample, pad_token_id=tok.pad_token_id)
    if s.do_sample:  # the sampling knobs only mean something when sampling (transformers warns otherwise)
        kw |= dict(temperature=s.temperature, top_k=s.top_k or None, top_p=s.top_p)
        torch.manual_seed(s.seed)
    if gen.kind == "encoder-decoder":
        if not prompt.strip():
            raise ConfigError("prompt", "give a text to transform")
        enc = tok(prompt, truncation=True, max_length=min(gen.positions, 4096), return_tensors="pt",
                  return_token_type_ids=False)
        with torch.no_grad():
            out = model.generate(**enc, max_new_tokens=s.max_new_tokens, **kw)
        return tok.decode(out[0], skip_special_tokens=True)
    ids = _prompt_ids(tok, prompt)
    new = min(s.max_new_tokens, gen.positions - 1)
    ids = ids[-(gen.positions - new):]  # the window: the prompt's end and the new tokens fit the positions
    x = torch.tensor([ids])
    with torch.no_grad():
        out = model.generate(x, attention_mask=torch.ones_like(x), max_new_tokens=new,
                             eos_token_id=G.end_token(tok), **kw)
    return tok.decode(out[0], skip_special_tokens=True)


def _prompt_ids(tok, prompt: str) -> list[int]:
    """The prompt as the model saw text in training, minus any end-of-text token the tokenizer appends (BERT's
    [SEP]): a text that ends there would be a finished row."""
    ids = tok(prompt)["input_ids"]
    plain = len(tok(prompt, add_special_tokens=False)["input_ids"])
    ends = {tok.eos_token_id, tok.sep_token_id} - {None}
    while len(ids) > plain and ids[-1] in ends:
        ids.pop()
    if not ids:
        start = tok.bos_token_id if tok.bos_token_id is not None else tok.cls_token_id
        ids = [start if start is not None else G.end_token(tok)]
    return ids


def pipeline_code(kind: str, folder: str, prompt: str, s: GenerationSettings) -> str:
    """Plain transformers code that generates the same way."""
    kw = f"max_new_tokens={s.max_new_tokens}, num_beams={s.num_beams}, do_sample={s.do_sample}"
    if s.do_sample:
        kw += f", temperature={s.temperature}, top_k={s.top_k or None}, top_p={s.top_p}"
    if kind == "decoder":
        # As generate_with() does: the prompt without the end-of-text token a BERT-style tokenizer appends (the
        # pipeline would otherwise continue a finished row and often stop at once), its start token kept as the
        # pipeline's prefix, stopping at the run's end token, and the whole sequence decoded at once (the
        # pipeline's generated_text glues the prompt to the new text's decoding, losing word-piece spaces).
        tok = G.load_tokenizer(folder)
        ids, plain = _prompt_ids(tok, prompt), tok(prompt, add_special_tokens=False)["input_ids"]
        start = tok.convert_ids_to_tokens(ids[0]) if len(ids) > len(plain) else ""
        kw += f", eos_token_id={G.end_token(tok)}, pad_token_id={tok.pad_token_id}"
        return (f"from transformers import pipeline, set_seed\n\nset_seed({s.seed})\n"
                f"generator = pipeline(\"text-generation\", model={folder!r})\n"
                f"out = generator({prompt!r}, prefix={start!r}, add_special_tokens=False, return_tensors=True,\n"
                f"                {kw})\n"
                "print(generator.tokenizer.decode(out[0][\"generated_token_ids\"], skip_special_tokens=True))\n")
    return ("# transformers 5 removed the text2text-generation / summarization pipelines: the model's generate()\n"
            "from transformers import AutoModelForSeq2SeqLM, AutoTokenizer, set_seed\n\n"
            f"set_seed({s.seed})\ntokenizer = AutoTokenizer.from_pretrained({folder!r})\n"
            f"model = AutoModelForSeq2SeqLM.from_pretrained({folder!r})\n"
            f"inputs = tokenizer({prompt!r}, truncation=True, return_tensors=\"pt\")\n"
            f"output = model.generate(**inputs, {kw})\n"
            "print(tokenizer.decode(output[0], skip_special_tokens=True))\n")


def settings_dict(s: GenerationSettings) -> dict:
    return asdict(s)


# --- batch inference over the evaluation split -------------------------------------------------------------------

MAX_BATCH_ROWS = 500  # rows one batch-inference click may generate for
PROMPT_WORDS = 6  # causal LM: a row's first words are the prompt, the rest of the row the reference


@dataclass
class BatchGeneration:
    """The run's model over rows of its evaluation split, `batch_size` prompts per generate() call."""

    rows: list[dict]  # prompt / source, generated text, reference, ROUGE-L against it, new tokens
    seconds: float  # wall time of the generate() calls (tokenising and decoding included)
    new_tokens: int  # tokens generated, each row counted up to and including its end-of-text token
    batch_size: int
    scores: dict  # mean ROUGE-1/2/L of the generated texts against the references
    column: str  # the dataset column the prompts came from

    @property
    def examples_per_s(self) -> float:
        return len(self.rows) / self.seconds if self.seconds > 0 else float("inf")

    @property
    def tokens_per_s(self) -> float:
        return self.new_tokens / self.seconds if self.seconds > 0 else float("inf")


def _new_length(ids: list[int], ends: set[int]) -> int:
    """Tokens a row generated: up to and including its first end-of-text token (the rest is padding)."""
    return next((i + 1 for i, t in enumerate(ids) if t in ends), len(ids))


def generate_many(gen: Generator, prompts: list[str], s: GenerationSettings | dict | None = None,
                  batch_size: int = 8) -> tuple[list[str], list[str], list[int]]:
    """(texts, generated parts, new-token counts) for many prompts (a decoder's text is the prompt and its
    continuation, as `generate` returns it; the generated part is the continuation alone), `batch_size` per generate() call: the same texts `generate_with`
    gives one at a time under greedy or beam decoding (a decoder's prompts are padded on the left, so every row's
    last prompt token sits at the end and the position ids skip the padding). Sampling draws differ from one at a
    time (the random numbers are shared across the batch) but are seeded."""
    import torch

    s = GenerationSettings(**s) if isinstance(s, dict) else s or GenerationSettings()
    s.validate()
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or not 1 <= batch_size <= 256:
        raise ConfigError("batch_size", f"must be a whole number from 1 to 256, got {batch_size!r}")
    for i, p in enumerate(prompts):
        if not isinstance(p, str):
            raise ConfigError("prompt", f"row {i}: must be text, got {type(p).__name__}")
        if gen.kind == "encoder-decoder" and not p.strip():
            raise ConfigError("prompt", f"row {i}: the source is empty")
    tok, model = gen.tokenizer, gen.model
    kw = dict(num_beams=s.num_beams, do_sample=s.do_sample, pad_token_id=tok.pad_token_id)
    if s.do_sample:
        kw |= dict(temperature=s.temperature, top_k=s.top_k or None, top_p=s.top_p)
        torch.manual_seed(s.seed)
    ends = {G.end_token(tok), tok.eos_token_id} - {None}
    texts, parts, counts = [], [], []
    for b in range(0, len(prompts), batch_size):
        chunk = [p[:MAX_PROMPT_CHARS] for p in prompts[b:b + batch_size]]
        if gen.kind == "encoder-decoder":
            enc = tok(chunk, truncation=True, max_length=min(gen.positions, 4096), padding=True, return_tensors="pt",
                      return_token_type_ids=False)
            with torch.no_grad():
                out = model.generate(**enc, max_new_tokens=s.max_new_tokens, **kw)
            for row in out.tolist():
                new = row[1:]  # after the decoder's start token
                n = _new_length(new, ends)
                counts.append(n)
                texts.append(tok.decode(new[:n], skip_special_tokens=True))
                parts.append(texts[-1])
            continue
        new_max = min(s.max_new_tokens, gen.positions - 1)
        ids = [_prompt_ids(tok, p)[-(gen.positions - new_max):] for p in chunk]
        width = max(len(x) for x in ids)
        pad = tok.pad_token_id
        x = torch.tensor([[pad] * (width - len(r)) + r for r in ids])
        mask = torch.tensor([[0] * (width - len(r)) + [1] * len(r) for r in ids])
        with torch.no_grad():
            out = model.generate(x, attention_mask=mask, max_new_tokens=new_max, eos_token_id=G.end_token(tok), **kw)
        for r, row in zip(ids, out.tolist(), strict=True):
            new = row[width:]
            n = _new_length(new, ends)
            counts.append(n)
            texts.append(tok.decode(r + new[:n], skip_special_tokens=True))
            # the continuation as it reads in the text (a first sub-word "##ing" glued to the prompt's last word)
            shown = tok.decode(r, skip_special_tokens=True)
            parts.append(texts[-1][len(shown):].strip() if texts[-1].startswith(shown)
                         else tok.decode(new[:n], skip_special_tokens=True))
    return texts, parts, counts


def eval_prompts(config: TrainingConfig, settings: Settings, limit: int = 64) -> tuple[list[str], list[str], str]:
    """(prompts, references, column) from the run's evaluation split (the rows it evaluated on, the same seed):
    seq2seq the source column and its targets; causal LM each non-empty row's first PROMPT_WORDS words and the rest
    of the row (rows of PROMPT_WORDS words or fewer are skipped: nothing would be left to compare with)."""
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_BATCH_ROWS:
        raise ConfigError("rows", f"must be a whole number from 1 to {MAX_BATCH_ROWS}, got {limit!r}")
    _, ev, _ = G.load_rows(config, settings)
    if config.task == "seq2seq":
        src, tgt = config.columns["source"], config.columns["target"]
        ev = ev.select(range(min(limit, len(ev))))
        G.check_texts(ev[src], "source", "evaluation")
        return list(ev[src]), [str(t) for t in ev[tgt]], src
    col = config.columns["text"]
    prompts, refs = [], []
    for text in ev[col]:
        words = text.split() if isinstance(text, str) else []
        if len(words) > PROMPT_WORDS:
            prompts.append(" ".join(words[:PROMPT_WORDS]))
            refs.append(" ".join(words[PROMPT_WORDS:]))
        if len(prompts) >= limit:
            break
    if not prompts:
        raise ConfigError("columns.text", f"no row of the evaluation split has more than {PROMPT_WORDS} words to "
                          "prompt with and compare against")
    return prompts, refs, col


def batch_generate(source, config: TrainingConfig, settings: Settings, s: GenerationSettings | dict | None = None,
                   limit: int = 64, batch_size: int = 8) -> BatchGeneration:
    """Generate for up to `limit` rows of the run's evaluation split (a Generator, a RunRecord or a folder), timed.

    The throughput counts the generate() calls with their tokenising and decoding (as a pipeline call would), not
    reading the dataset. ROUGE compares a seq2seq output with its target; a causal continuation (prompt removed)
    with the rest of its row, a loose measure: many continuations are right without matching the text."""
    import time

    from core.nlp.metrics import rouge
    from core.training.generation_metrics import mean_rouge

    gen = source if isinstance(source, Generator) else load_generator(source)
    prompts, refs, column = eval_prompts(config, settings, limit)
    t = time.perf_counter()
    _, outputs, counts = generate_many(gen, prompts, s, batch_size)
    seconds = time.perf_counter() - t

    rows = [{"prompt" if gen.kind == "decoder" else "source": p, "generated": o, "reference": r,
             "ROUGE-L": round(rouge(o, r)["rougeL"], 4), "new tokens": n}
            for p, o, r, n in zip(prompts, outputs, refs, counts, strict=True)]
    return BatchGeneration(rows, seconds, sum(counts), batch_size, mean_rouge(outputs, refs), column)
