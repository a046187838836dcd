"""Tokenizers over a corpus: where the text comes from, what a tokenizer does to it, training a new one.

Training uses the `tokenizers` library's BPE / WordPiece / Unigram trainers. The Rust trainer
reports no progress to Python, so progress is measured where Python sees it: the texts the
trainer has pulled from our iterator (counting words); the merge / pruning phase after that
is reported as a phase with no fraction, not as made-up numbers.
"""
from __future__ import annotations

import json
import shutil
import time
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING

from core.settings import Settings, get_settings
from core.tokenizers.guard import CORPUS_BUDGET_S, TRAINED_NAME, first_line, rust_errors, whole
from core.tokenizers.library import TRAINED_PREFIX, TextError

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerFast

SAMPLE = "drug-reviews sample"
MODELS = ("BPE", "WordPiece", "Unigram")
NORMALIZERS = ("NFD", "NFKC", "lowercase", "strip_accents")
PRE_TOKENIZERS = ("whitespace", "byte_level", "metaspace")
DEFAULT_SPECIALS = {
    "WordPiece": ("[UNK]", "[CLS]", "[SEP]", "[PAD]", "[MASK]"),
    "BPE": ("<s>", "<pad>", "</s>", "<unk>", "<mask>"),
    "Unigram": ("<s>", "<pad>", "</s>", "<unk>", "<mask>"),
}
MAX_VOCAB = 262_144  # above every packaged vocabulary (XLM-R: 250,002)
MAX_MIN_FREQUENCY = 10**9
MAX_SPECIALS, MAX_SPECIAL_CHARS = 100, 64
MAX_TRAIN_CHARS = 20_000_000  # about 15-25 s of alphabet check + training on a 2-core CPU
TRAIN_BUDGET_S = 300.0  # reading the corpus; the merge phase after it is bounded by MAX_VOCAB
MAX_STATS_LENGTH = 1_000_000


class TrainError(ValueError):
    """A training request that can't run; the message says what to change."""


# --------------------------------------------------------------------------- text sources
def text_sources(settings: Settings | None = None) -> dict[str, list[str]]:
    """Source label -> its string columns: the built-in sample, then saved datasets (when core.data has them)."""
    out = {SAMPLE: ["text", "drug", "condition"]}
    for label, (_, _, cols) in _stored_datasets(settings).items():
        out[label] = cols
    return out


def _stored_datasets(settings: Settings | None) -> dict[str, tuple[str, object, list[str]]]:
    """label -> (name, version, string columns) from the dataset page's store, if it is there yet."""
    try:
        from core.data.store import DatasetStore
    except ImportError:
        return {}
    settings = settings or get_settings()
    try:
        refs = DatasetStore(settings.datasets_dir).list()
    except Exception:  # a half-written store must not break the tokenizer page
        return {}
    return {f"{r.name} (v{r.version})": (r.name, r.version, list(r.columns)) for r in refs}


def source_texts(source: str, column: str, settings: Settings | None = None, limit: int | None = None
                 ) -> list[str]:
    """The non-empty strings of one column of a source (all splits)."""
    if source == SAMPLE:
        from core.assets import drug_reviews

        df = drug_reviews()
        if column not in df.columns:
            raise TextError(f"the sample has no column {column!r}; it has {', '.join(df.columns)}")
        values = df[column].tolist()
    else:
        stored = _stored_datasets(settings)
        if source not in stored:
            raise TextError(f"no dataset {source!r}; saved ones: {', '.join(stored) or 'none'}")
        from core.data.store import DatasetStore

        name, version, cols = stored[source]
        if column not in cols:
            raise TextError(f"dataset {source} has no column {column!r}; it has {', '.join(cols)}")
        dd = DatasetStore((settings or get_settings()).datasets_dir).load(name, version)
        splits = dd.values() if hasattr(dd, "values") else [dd]
        values = [v for split in splits for v in split[column]]
    texts = [v for v in values if isinstance(v, str) and v.strip()]
    if not texts:
        raise TextError(f"column {column!r} of {source} has no text (every value is empty or not a string)")
    return texts[:limit] if limit else texts


def file_texts(data: bytes, filename: str = "the file") -> list[str]:
    """Non-empty lines of an uploaded UTF-8 text file."""
    if b"\x00" in data[:4096]:
        raise TextError(f"{filename} looks binary (it has NUL bytes): upload a UTF-8 text file")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise TextError(f"{filename} is not UTF-8 text (byte {e.start} is invalid)") from None
    lines = [ln for ln in text.splitlines() if ln.strip()]
    if not lines:
        raise TextError(f"{filename} is empty: there is no text to train on")
    return lines


# --------------------------------------------------------------------------- corpus statistics
@dataclass
class CorpusStats:
    """What one tokenizer does to a column of texts."""

    name: str
    lengths: list[int]  # tokens per text, special tokens included
    n_words: int
    n_text_tokens: int
    n_unknown: int
    max_length: int
    fertility: float  # text tokens per whitespace-separated word
    pct_unknown: float
    pct_truncated: float  # texts longer than max_length
    pct_padding_max_length: float  # of the slots when every text is padded to max_length
    pct_padding_dynamic: float  # padding to the longest text of each batch, batches in order


def corpus_stats(name: str, tok: PreTrainedTokenizerFast, texts: list[str], max_length: int = 128,
                 batch_size: int = 16) -> CorpusStats:
    """Fertility, unknowns, truncation and padding waste of `tok` on `texts`."""
    from core.tokenizers.library import encode_ids

    if not isinstance(texts, list) or not all(isinstance(t, str) for t in texts):
        raise TextError("the texts to measure must be a list of strings")
    if not texts:
        raise TextError("no texts to measure")
    whole(max_length, "max_length", 1, MAX_STATS_LENGTH, TextError)
    whole(batch_size, "batch_size", 1, MAX_STATS_LENGTH, TextError)
    ids = encode_ids(tok, texts, CORPUS_BUDGET_S)
    specials = tok.num_special_tokens_to_add()
    lengths = [len(r) for r in ids]
    unk = tok.unk_token_id
    n_unknown = sum(r.count(unk) for r in ids) if unk is not None else 0
    n_words = sum(len(t.split()) for t in texts)
    n_text = sum(lengths) - specials * len(texts)
    kept = [min(n, max_length) for n in lengths]
    dyn_slots = sum(max(kept[i:i + batch_size]) * len(kept[i:i + batch_size]) for i in range(0, len(kept), batch_size))
    return CorpusStats(
        name=name, lengths=lengths, n_words=n_words, n_text_tokens=n_text, n_unknown=n_unknown,
        max_length=max_length, fertility=n_text / max(n_words, 1), pct_unknown=100 * n_unknown / max(n_text, 1),
        pct_truncated=100 * sum(n > max_length for n in lengths) / len(lengths),
        pct_padding_max_length=100 * (1 - sum(kept) / (max_length * len(kept))),
        pct_padding_dynamic=100 * (1 - sum(kept) / dyn_slots),
    )


# --------------------------------------------------------------------------- training
@dataclass(frozen=True)
class TrainConfig:
    """What to train; defaults train a small BPE in a second on CPU."""

    name: str  # folder name under the workspace's tokenizers/ (letters, digits, _ . -)
    model: str = "BPE"  # BPE | WordPiece | Unigram
    vocab_size: int = 2000  # the final vocabulary, alphabet and special tokens included
    min_frequency: int = 2  # a pair seen fewer times is never merged (BPE, WordPiece)
    normalizers: tuple[str, ...] = ("NFD", "lowercase", "strip_accents")
    pre_tokenizer: str = "whitespace"  # whitespace | byte_level | metaspace
    special_tokens: tuple[str, ...] = ()  # empty: the model's usual ones (DEFAULT_SPECIALS)

    @property
    def specials(self) -> tuple[str, ...]:
        return tuple(self.special_tokens) or DEFAULT_SPECIALS.get(self.model, ())

    def validate(self) -> None:
        """Type, range and choice of every field (a bool is not a count here); TrainError says which."""
        if not isinstance(self.name, str) or not TRAINED_NAME.fullmatch(self.name):
            raise TrainError(f"name {self.name!r}: use 1-64 letters, digits, '_', '.' or '-', starting with a "
                             "letter or digit")
        if not isinstance(self.model, str) or self.model not in MODELS:
            raise TrainError(f"model must be one of {', '.join(MODELS)}, got {self.model!r}")
        whole(self.vocab_size, "vocabulary size (vocab_size)", 1, MAX_VOCAB, TrainError)
        whole(self.min_frequency, "min frequency (min_frequency)", 1, MAX_MIN_FREQUENCY, TrainError)
        if not isinstance(self.pre_tokenizer, str) or self.pre_tokenizer not in PRE_TOKENIZERS:
            raise TrainError(f"pre-tokenizer must be one of {', '.join(PRE_TOKENIZERS)}, got {self.pre_tokenizer!r}")
        for label, items in (("normalizers", self.normalizers), ("special tokens", self.special_tokens)):
            if not isinstance(items, (tuple, list)) or not all(isinstance(x, str) for x in items):
                raise TrainError(f"{label} must be a list of strings, got {items!r:.80}")
        if bad := [n for n in self.normalizers if n not in NORMALIZERS]:
            raise TrainError(f"unknown normalizer {bad[0]!r}; choose from {', '.join(NORMALIZERS)}")
        specials = self.specials
        if len(specials) > MAX_SPECIALS or any(len(t) > MAX_SPECIAL_CHARS for t in specials):
            raise TrainError(f"at most {MAX_SPECIALS} special tokens of at most {MAX_SPECIAL_CHARS} characters each")
        if len(set(specials)) != len(specials) or any(not t.strip() for t in specials):
            raise TrainError("special tokens must be distinct and non-empty")


@dataclass
class TrainProgress:
    """Progress shared with whoever watches: the trainer's thread writes, the page reads."""

    fraction: float = 0.0
    phase: str = "waiting"
    done: bool = False


@dataclass
class TrainedTokenizer:
    name: str  # what core.tokenizers.load takes
    path: str
    vocab_size: int
    seconds: float
    notes: list[str] = field(default_factory=list)


def _build(config: TrainConfig):
    """An untrained `tokenizers.Tokenizer` and its trainer for `config`."""
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers

    config.validate()
    specials = list(config.specials)
    unk = next((t for t in specials if t.strip("<>[]").lower() == "unk"), None)
    if config.model == "WordPiece":
        tok = Tokenizer(models.WordPiece(unk_token=unk or "[UNK]"))
        trainer = trainers.WordPieceTrainer(vocab_size=config.vocab_size, min_frequency=config.min_frequency,
                                            special_tokens=specials, show_progress=False)
    elif config.model == "Unigram":
        tok = Tokenizer(models.Unigram())
        trainer = trainers.UnigramTrainer(vocab_size=config.vocab_size, special_tokens=specials, unk_token=unk,
                                          show_progress=False)
    else:
        tok = Tokenizer(models.BPE(unk_token=None if config.pre_tokenizer == "byte_level" else unk))
        alphabet = pre_tokenizers.ByteLevel.alphabet() if config.pre_tokenizer == "byte_level" else []
        trainer = trainers.BpeTrainer(vocab_size=config.vocab_size, min_frequency=config.min_frequency,
                                      special_tokens=specials, initial_alphabet=alphabet, show_progress=False)
    steps = {"NFD": normalizers.NFD, "NFKC": normalizers.NFKC, "lowercase": normalizers.Lowercase,
             "strip_accents": normalizers.StripAccents}
    norm = list(config.normalizers)
    if "strip_accents" in norm and "NFD" not in norm:
        norm.insert(0, "NFD")  # accents are only separate characters to strip after NFD
    if norm:
        tok.normalizer = normalizers.Sequence([steps[n]() for n in norm])
    if config.pre_tokenizer == "byte_level":
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        tok.decoder = decoders.ByteLevel()
    elif config.pre_tokenizer == "metaspace":
        tok.pre_tokenizer = pre_tokenizers.Metaspace()
        tok.decoder = decoders.Metaspace()
    else:
        tok.pre_tokenizer = pre_tokenizers.Whitespace()
        if config.model == "WordPiece":
            tok.decoder = decoders.WordPiece(prefix="##")
    return tok, trainer


def alphabet(config: TrainConfig, texts: Iterable[str]) -> set[str]:
    """The characters the trainer starts from, after normalizing and pre-tokenizing `texts`."""
    from tokenizers import pre_tokenizers

    config.validate()
    if config.pre_tokenizer == "byte_level":
        return set(pre_tokenizers.ByteLevel.alphabet())
    tok, _ = _build(config)
    chars: set[str] = set()
    with rust_errors(TrainError, "the normalizer / pre-tokenizer failed on the corpus"):
        for text in texts:
            norm = tok.normalizer.normalize_str(text) if tok.normalizer else text
            for piece, _ in tok.pre_tokenizer.pre_tokenize_str(norm):
                chars.update(piece)
    return chars


def check_config(config: TrainConfig, texts: list[str], settings: Settings | None = None) -> int:
    """Refuse a bad request before training; returns the smallest vocabulary that fits."""
    settings = settings or get_settings()
    if not isinstance(config, TrainConfig):
        raise TrainError(f"expected a TrainConfig, got {type(config).__name__}")
    config.validate()
    if (settings.tokenizers_dir / config.name).exists() or (settings.tokenizers_dir / config.name).is_symlink():
        raise TrainError(f"a tokenizer named {config.name!r} already exists: pick another name")
    _check_texts(texts)
    if not any(t.strip() for t in texts):
        raise TrainError("there is no text to train on (the column or file is empty)")
    if config.model == "Unigram" and not any(t.strip("<>[]").lower() == "unk" for t in config.specials):
        raise TrainError("Unigram needs an unknown token among the special tokens (e.g. <unk>)")
    need = len(alphabet(config, texts)) + len(config.specials)
    if config.vocab_size < need:
        base = ("the byte-level alphabet has 256 bytes" if config.pre_tokenizer == "byte_level" else
                f"the corpus has {need - len(config.specials):,} distinct characters after normalizing")
        raise TrainError(f"vocabulary size {config.vocab_size:,} is smaller than the alphabet: {base}, plus "
                         f"{len(config.specials)} special tokens, so at least {need:,} are needed")
    return need


def _check_texts(texts: object) -> None:
    if not isinstance(texts, list) or not all(isinstance(t, str) for t in texts):
        raise TrainError("the texts to train on must be a list of strings")
    if (chars := sum(map(len, texts))) > MAX_TRAIN_CHARS:
        raise TrainError(f"the corpus has {chars:,} characters, over the cap of {MAX_TRAIN_CHARS:,} for training "
                         "here: train on a sample of it")


def _counted(texts: list[str], progress: TrainProgress, budget_s: float | None = None) -> Iterator[str]:
    """Yield texts, recording how far the (Rust) trainer has read; past the budget it stops the trainer."""
    n = len(texts)
    budget_s = TRAIN_BUDGET_S if budget_s is None else budget_s
    stop = time.monotonic() + budget_s
    for i, t in enumerate(texts):
        if i % 64 == 0:
            progress.fraction = 0.9 * i / n
            if time.monotonic() > stop:
                raise TrainError(f"reading the corpus ran past the {budget_s:g} s budget: train on a sample of it")
        yield t
    progress.fraction, progress.phase = 0.9, "merging / pruning the vocabulary (the Rust trainer reports no steps)"


def train(config: TrainConfig, texts: list[str], progress: TrainProgress | None = None,
          settings: Settings | None = None, corpus: str = "") -> TrainedTokenizer:
    """Train, save as a Hugging Face tokenizer folder in the workspace, and return how to load it.

    Every refusal is a TrainError (bad config, corpus over the cap, the Rust trainer's errors and panics).
    """
    settings = settings or get_settings()
    progress = progress or TrainProgress()
    try:
        return _train(config, texts, progress, settings, corpus)
    finally:
        progress.done = True  # finished or refused: a watcher never waits forever


def _train(config: TrainConfig, texts: list[str], progress: TrainProgress, settings: Settings, corpus: str
           ) -> TrainedTokenizer:
    from tokenizers import processors
    from transformers import PreTrainedTokenizerFast

    _check_texts(texts)
    texts = [t for t in texts if t.strip()]
    progress.phase = "checking the alphabet"
    check_config(config, texts, settings)
    tok, trainer = _build(config)
    started = time.perf_counter()
    progress.phase = "reading the corpus and counting words"
    # the Rust trainer's own refusals (e.g. Unigram's vocab too small), its panics, and our budget
    with rust_errors(TrainError, f"the {config.model} trainer refused"):
        tok.train_from_iterator(_counted(texts, progress), trainer, length=len(texts))
    specials = set(config.specials)
    roles = {}
    for role, cands in {"unk_token": ("[UNK]", "<unk>"), "pad_token": ("[PAD]", "<pad>"),
                        "cls_token": ("[CLS]", "<s>"), "sep_token": ("[SEP]", "</s>"),
                        "mask_token": ("[MASK]", "<mask>"), "bos_token": ("<s>",), "eos_token": ("</s>",)}.items():
        if hit := next((c for c in cands if c in specials), None):
            roles[role] = hit
    inputs = ["input_ids", "attention_mask"]
    if "cls_token" in roles and "sep_token" in roles:  # [CLS] a [SEP] like BERT, <s> a </s> like RoBERTa
        c, s = roles["cls_token"], roles["sep_token"]
        with rust_errors(TrainError, "the [CLS] … [SEP] template could not be built"):
            tok.post_processor = processors.TemplateProcessing(
                single=f"{c} $A {s}", pair=f"{c} $A {s} $B:1 {s}:1",
                special_tokens=[(c, tok.token_to_id(c)), (s, tok.token_to_id(s))])
        inputs.insert(1, "token_type_ids")  # the pair template marks the second segment with 1
    seconds = time.perf_counter() - started
    folder = settings.tokenizers_dir / config.name
    tmp = settings.tokenizers_dir / f".{config.name}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        with rust_errors(TrainError, "the trained tokenizer could not be saved"):
            PreTrainedTokenizerFast(tokenizer_object=tok, model_input_names=inputs, **roles).save_pretrained(str(tmp))
        meta = {"config": asdict(config), "corpus": corpus, "texts": len(texts), "seconds": round(seconds, 3)}
        (tmp / "torchlab.json").write_text(json.dumps(meta, indent=1))
        tmp.rename(folder)  # appears whole or not at all
    except OSError as e:  # disk full, folder taken meanwhile
        shutil.rmtree(tmp, ignore_errors=True)
        raise TrainError(f"the trained tokenizer could not be saved: {first_line(e)}") from None
    notes = []
    if tok.get_vocab_size() < config.vocab_size:
        notes.append(f"the corpus ran out of merges at {tok.get_vocab_size():,} tokens "
                     f"(asked for {config.vocab_size:,}): more text or a lower min frequency gives more")
    elif tok.get_vocab_size() > config.vocab_size:
        notes.append(f"the vocabulary has {tok.get_vocab_size():,} tokens, more than the {config.vocab_size:,} "
                     "asked: WordPiece adds a ## form of every character it starts from")
    progress.fraction, progress.phase = 1.0, "saved"
    return TrainedTokenizer(TRAINED_PREFIX + config.name, str(folder), tok.get_vocab_size(), seconds, notes)
