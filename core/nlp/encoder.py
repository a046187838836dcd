"""The sentence encoder, model loading and classification that QA and summaries stand on.

Offline (the default) both tasks run on the packaged all-MiniLM-L6-v2 sentence embeddings
(`core.nlp.qa`, `core.nlp.summaries`); with a checkpoint folder or a hub id they run on the model
classes directly (transformers 5 has no QA / summarization pipelines any more).

    >>> from core.nlp.encoder import answer
    >>> a = answer("Where is the tower?", "The tower is in Paris. Bread is baked daily.")  # doctest: +SKIP
    >>> a.text, a.start, a.end  # doctest: +SKIP
    ('The tower is in Paris.', 0, 22)
"""
from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core.settings import Settings, get_settings

if TYPE_CHECKING:
    import torch

from core.nlp.types import NLPError, Progress

# --- input checks and sentence splitting ------------------------------------------------------

def check_text(text: str, what: str, settings: Settings | None = None) -> str:
    """`text` if it is usable, else NLPError naming the field (empty, or past the size cap)."""
    settings = settings or get_settings()
    if text is None or not str(text).strip():
        raise NLPError(f"the {what} is empty: paste some text or pick a sample")
    if len(text) > settings.max_text_chars:
        raise NLPError(f"the {what} has {len(text):,} characters, over the limit of {settings.max_text_chars:,} "
                       f"(raise it with {settings.env_name('max_text_chars')})")
    return str(text)


_ABBREV = {"mr", "mrs", "ms", "dr", "prof", "st", "vs", "etc", "e.g", "i.e", "jr", "sr", "no", "fig", "approx"}
# a sentence ends at . ! ? (plus closing quotes) before a space and an upper-case letter or digit,
# at a full-width 。！？ (scripts without spaces), or at a blank line
_END = re.compile(r"""[.!?]+["'”’)\]]*(?=\s+["'“‘(\[]?[^\W_a-z])|[。！？]+[」』”’）]*|\n[ \t]*\n""")
MAX_SPAN_WORDS = 60  # MiniLM was trained on inputs up to 128 tokens; longer pieces are cut
MAX_SPAN_CHARS_NO_SPACE = 120


def sentence_spans(text: str) -> list[tuple[int, int]]:
    """Sentences of `text` as (start, end) offsets, whitespace trimmed; long ones cut into windows."""
    cuts, pos = [], 0
    for m in _END.finditer(text):
        word = re.search(r"(\S+)$", text[pos:m.start()])
        prev = word.group(1).lower().rstrip(".") if word else ""
        if m.group().startswith(".") and (prev in _ABBREV or (len(prev) == 1 and prev.isalpha())):
            continue  # "Dr. Smith", "J. Smith": not a sentence end
        cuts.append(m.end())
        pos = m.end()
    spans = []
    for a, b in zip([0, *cuts], [*cuts, len(text)], strict=True):
        piece = text[a:b]
        if piece.strip():
            start = a + len(piece) - len(piece.lstrip())
            spans.extend(_windows(text, start, a + len(piece.rstrip())))
    return spans


def _windows(text: str, start: int, end: int) -> list[tuple[int, int]]:
    """Cut one over-long sentence into consecutive pieces the encoder can read whole."""
    words = [(m.start() + start, m.end() + start) for m in re.finditer(r"\S+", text[start:end])]
    if len(words) > MAX_SPAN_WORDS:
        return [(words[i][0], words[min(i + MAX_SPAN_WORDS, len(words)) - 1][1])
                for i in range(0, len(words), MAX_SPAN_WORDS)]
    if len(words) == 1 and end - start > MAX_SPAN_CHARS_NO_SPACE:  # a script written without spaces
        return [(i, min(i + MAX_SPAN_CHARS_NO_SPACE, end)) for i in range(start, end, MAX_SPAN_CHARS_NO_SPACE)]
    return [(start, end)]


def script_warning(text: str) -> str | None:
    """A note when most of `text` is in a script without spaces (MiniLM learned English)."""
    from core.nlp.metrics import no_space_share

    if no_space_share(text) > 0.3:
        return ("Most of this text is in a script written without spaces (Chinese, Japanese, Thai…). It is "
                "split at 。！？ and into short pieces, but MiniLM was trained on English, so the ranking is rough.")
    return None


# --- the sentence encoder ----------------------------------------------------------------------

class Encoder:
    """Sentence embeddings: token vectors averaged over the attention mask, then L2-normalised."""

    def __init__(self, model: Any, tokenizer: Any, device: str, max_length: int = 256, name: str = "MiniLM"):
        self.model, self.tokenizer, self.device = model, tokenizer, device
        self.max_length = max_length  # all-MiniLM-L6-v2 reads up to 256 word pieces
        self.name = name

    def encode(self, texts: Sequence[str], batch_size: int = 32, progress: Progress | None = None) -> torch.Tensor:
        """(len(texts), hidden) unit vectors, on the CPU."""
        import torch

        # batches of similar length pad less: sort, encode, put back in order
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        out = torch.empty(len(texts), self.model.config.hidden_size)
        with torch.inference_mode():
            for b in range(0, len(order), batch_size):
                idx = order[b:b + batch_size]
                enc = self.tokenizer([texts[i] for i in idx], padding=True, truncation=True,
                                     max_length=self.max_length, return_tensors="pt").to(self.device)
                hidden = self.model(**enc).last_hidden_state
                mask = enc["attention_mask"].unsqueeze(-1).to(hidden.dtype)
                pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
                out[idx] = torch.nn.functional.normalize(pooled, dim=-1).float().cpu()
                if progress:
                    done = min(b + batch_size, len(order))
                    progress(done / len(order), f"embedding {done:,} / {len(order):,} pieces")
        return out


def load_encoder(path: str | Path | None = None, device: str | None = None) -> Encoder:
    """The packaged all-MiniLM-L6-v2 (or another BERT-like folder) as an `Encoder`."""
    from transformers import AutoModel, AutoTokenizer

    from core.assets import minilm_path
    from core.settings import resolve_device

    path = str(path or minilm_path())
    device = device or resolve_device(get_settings().device)
    model = AutoModel.from_pretrained(path).to(device).eval()
    return Encoder(model, AutoTokenizer.from_pretrained(path), device)


# --- checkpoints: a local folder or a hub id, checked against the task -------------------------

TASKS = {  # task -> (auto class, the auto mapping of model types, what a head's class name ends with)
    "question-answering": ("AutoModelForQuestionAnswering", "MODEL_FOR_QUESTION_ANSWERING_MAPPING_NAMES",
                           "ForQuestionAnswering"),
    "summarization": ("AutoModelForSeq2SeqLM", "MODEL_FOR_SEQ_TO_SEQ_CAUSAL_LM_MAPPING_NAMES",
                      "ForConditionalGeneration"),
    "text-classification": ("AutoModelForSequenceClassification",
                            "MODEL_FOR_SEQUENCE_CLASSIFICATION_MAPPING_NAMES", "ForSequenceClassification"),
}


@dataclass
class LoadedModel:
    """A checkpoint loaded for one task, with its tokenizer and the device it sits on."""

    model: Any
    tokenizer: Any
    device: str
    task: str
    source: str  # the folder or hub id it came from
    architecture: str = field(default="")


def load_model(spec: str, task: str, settings: Settings | None = None) -> LoadedModel:
    """Load a checkpoint folder or hub id for `task`; NLPError if it isn't a model for that task."""
    import transformers
    from transformers import AutoConfig, AutoTokenizer
    from transformers.models.auto import modeling_auto

    from core.assets import AssetError, resolve_model
    from core.settings import resolve_device

    if task not in TASKS:
        raise NLPError(f"unknown task {task!r}; one of {', '.join(TASKS)}")
    auto_name, mapping_name, suffix = TASKS[task]
    settings = settings or get_settings()
    try:
        source = resolve_model(spec, settings)
        config = AutoConfig.from_pretrained(source)
    except AssetError as e:
        raise NLPError(str(e)) from None
    except (OSError, ValueError) as e:  # hub id that doesn't exist, a broken config.json
        raise NLPError(f"could not read a model config from {spec!r}: {e}") from None
    expected = getattr(modeling_auto, mapping_name).get(config.model_type)
    archs = list(getattr(config, "architectures", None) or [])
    what = archs[0] if archs else f"{config.model_type!r} model"
    if expected is None:
        raise NLPError(f"{spec!r} holds a {what}, not a {task} model: transformers has no {task} class "
                       f"for the {config.model_type!r} model type. Pick a {task} checkpoint.")
    if archs and not any(a == expected or a.endswith(suffix) for a in archs):
        raise NLPError(f"{spec!r} holds a {what}, not a {task} model: its {task} head would be "
                       f"untrained and its output random. Pick a checkpoint saved as {expected} "
                       f"(fine-tuned for {task}).")
    try:
        tokenizer = AutoTokenizer.from_pretrained(source)
    except (OSError, ValueError) as e:
        raise NLPError(f"{spec!r} has no usable tokenizer next to the model "
                       f"(save it with tokenizer.save_pretrained into the same folder): {e}") from None
    device = resolve_device(settings.device)
    model = getattr(transformers, auto_name).from_pretrained(source).to(device).eval()
    return LoadedModel(model, tokenizer, device, task, source, archs[0] if archs else expected)


def classify(model_dir: str | Path | LoadedModel, texts: Sequence[str],
             batch_size: int = 16) -> list[dict[str, float]]:
    """Label -> probability for each text, with a sequence-classification checkpoint's id2label."""
    import torch

    lm = model_dir if isinstance(model_dir, LoadedModel) else load_model(str(model_dir), "text-classification")
    texts = [check_text(t, f"text {i + 1}") for i, t in enumerate(texts)]
    id2label = lm.model.config.id2label
    out: list[dict[str, float]] = []
    with torch.inference_mode():
        for b in range(0, len(texts), batch_size):
            enc = lm.tokenizer(list(texts[b:b + batch_size]), padding=True, truncation=True,
                               max_length=_input_limit(lm), return_tensors="pt").to(lm.device)
            probs = lm.model(**enc).logits.float().softmax(-1).cpu()
            out.extend({str(id2label.get(j, j)): float(p[j]) for j in range(p.numel())} for p in probs)
    return out


def _input_limit(lm: LoadedModel, cap: int = 1024) -> int:
    """Longest input the model reads, in tokens (tokenizers often say 1e30: 'unknown')."""
    cfg = lm.model.config
    limits = [lm.tokenizer.model_max_length, cap,
              getattr(cfg, "max_position_embeddings", None) or getattr(cfg, "n_positions", None) or cap]
    return int(min(x for x in limits if x))
