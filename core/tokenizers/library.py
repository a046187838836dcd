"""Load tokenizers of every family and compare how they split the same text.

`available()` and `load(name)` are the stable entry points other pages use. A name is a
packaged tokenizer (`core.assets`), `trained:NAME` for one trained in the app (saved under
`settings.tokenizers_dir`), a local folder path, or a hub id (offline: `AssetError`).
Comparison, batch and vocabulary views are here; corpus statistics and training over a
dataset column are in `core.tokenizers.training`.
"""
from __future__ import annotations

import bisect
import dataclasses
import json
import re
import time
import unicodedata
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

from core.assets import REGISTRY, AssetError, load_tokenizer, names, offline_message
from core.settings import Settings, get_settings
from core.tokenizers.batch import (  # noqa: F401  (re-exported: compare is where callers look first)
    MAX_BATCH_CELLS,
    MAX_BATCH_LINES,
    MAX_BATCH_POSITIONS,
    PADDINGS,
    BatchView,
    batch_encode,
    encode_ids,
)
from core.tokenizers.guard import ENCODE_BUDGET_S, TextError, bounded, rust_errors, trained_folder

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerFast

TRAINED_PREFIX = "trained:"
_FOLDERS_FILE = "local_folders.json"  # folders the user registered, kept in the workspace
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.\-]*(/[\w.\-]+)?$")
MAX_TOKENIZER_FILE_MB = 200  # a tokenizer.json read into memory (XLM-R's is 17 MB)
MAX_QUERY_CHARS = 200  # a vocabulary search
_PROBE = "Hello, World! 123 naïve café 東京 👍🏽 aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa!\n\t x"  # one of each kind
MARKERS = {
    "Ġ": "byte-level BPE (GPT-2, tiktoken, Qwen): the token starts with a space",
    "Ċ": "byte-level BPE: a newline",
    "▁": "SentencePiece (XLM-R, T5): the token starts a new word (the space is part of it)",
    "##": "WordPiece (BERT): the token continues the word before it, no space in between",
}


# --------------------------------------------------------------------------- loading
def available(settings: Settings | None = None) -> list[str]:
    """Packaged tokenizers, then the ones trained in the app, then registered local folders."""
    settings = settings or get_settings()
    out = names("tokenizer")
    tdir = settings.tokenizers_dir
    if tdir.is_dir():
        # dot-folders are half-written trainings (see tokenizer_training.train); links out are never listed
        out += [TRAINED_PREFIX + p.name for p in sorted(tdir.iterdir())
                if _is_trained(p.name, tdir) and (p / "tokenizer.json").is_file()]
    out += [f for f in registered_folders(settings) if f not in out]
    return out


def _is_trained(name: str, tdir: Path) -> bool:
    try:
        trained_folder(name, tdir, AssetError)
    except AssetError:
        return False
    return True


def registered_folders(settings: Settings | None = None) -> list[str]:
    """Local tokenizer folders the user added (those still on disk)."""
    file = (settings or get_settings()).tokenizers_dir / _FOLDERS_FILE
    try:
        folders = json.loads(file.read_text())
    except (OSError, ValueError, RecursionError):
        return []
    return [f for f in folders if isinstance(f, str) and local_folder(f)] if isinstance(folders, list) else []


def local_folder(spec: object) -> Path | None:
    """`spec` as an existing folder on the server, or None (a hub id, a missing path, '~nobody', a NUL)."""
    if not isinstance(spec, str) or not spec.strip() or len(spec) > 4096:
        return None
    try:
        folder = Path(spec.strip()).expanduser()
        return folder if folder.is_dir() else None
    except (OSError, RuntimeError, ValueError):  # RuntimeError: '~user' with no such user
        return None


def register_folder(path: str, settings: Settings | None = None) -> str:
    """Check that `path` loads as a tokenizer, remember it, and return its name."""
    settings = settings or get_settings()
    folder = local_folder(path)
    if folder is None:
        raise AssetError(f"no folder {path!r} on the server")
    name = str(folder.resolve())
    load(name, settings)  # raises a clear AssetError if it is not a tokenizer folder
    file = settings.tokenizers_dir / _FOLDERS_FILE
    folders = [f for f in registered_folders(settings) if f != name] + [name]
    try:
        file.parent.mkdir(parents=True, exist_ok=True)
        file.write_text(json.dumps(folders, indent=1))
    except OSError as e:
        raise AssetError(f"{name} loads, but the list of folders could not be saved: {e}") from None
    return name


def add_tokenizer(spec: str, settings: Settings | None = None) -> str:
    """The name to load for what the user typed: a folder is checked and remembered, anything else is
    taken as a hub id (loading it says whether it exists, or that the server is offline)."""
    spec = spec.strip() if isinstance(spec, str) else ""
    if not spec:
        raise AssetError("type a folder path on the server or a hub id")
    return register_folder(spec, settings) if local_folder(spec) else spec


def load(name: str, settings: Settings | None = None) -> PreTrainedTokenizerFast:
    """A fast tokenizer by name: packaged, `trained:NAME`, a local folder, or a hub id."""
    settings = settings or get_settings()
    name = name.strip() if isinstance(name, str) else ""
    if not name:
        raise AssetError("no tokenizer given: pick a packaged one, a trained one, a folder or a hub id")
    if name in REGISTRY:
        with rust_errors(AssetError, f"packaged tokenizer {name!r} did not load"):
            tok = load_tokenizer(name, settings)
    elif name.startswith(TRAINED_PREFIX):
        # resolved (links too) to a folder directly inside tokenizers_dir, never a path
        folder = trained_folder(name.removeprefix(TRAINED_PREFIX), settings.tokenizers_dir, AssetError)
        if not (folder / "tokenizer.json").is_file():
            raise AssetError(f"no trained tokenizer {name!r} in {settings.tokenizers_dir}")
        tok = _load_folder(folder)
    elif folder := local_folder(name):
        tok = _load_folder(folder)
    elif name.startswith((".", "/", "~")) or not _HUB_ID.match(name):
        raise AssetError(f"no folder {name!r} on the server, and it is not a hub id")
    elif settings.offline:
        raise AssetError(offline_message(name, "tokenizer"))
    else:
        from transformers import AutoTokenizer

        with rust_errors(AssetError, f"hub id {name!r} did not load"):  # unknown id, no network, gated repo
            tok = AutoTokenizer.from_pretrained(name)
    if not getattr(tok, "is_fast", False):
        raise AssetError(f"{name!r} has only a slow (Python) tokenizer: offsets and batch speed need a fast one")
    with rust_errors(AssetError, f"{name!r} did not load"):
        tok.backend_tokenizer.no_padding()  # MiniLM's tokenizer.json pads every encoding to 128 by itself
        tok.backend_tokenizer.no_truncation()
        if tok.pad_token is None and tok.eos_token is not None:
            tok.pad_token = tok.eos_token  # the usual GPT-2 recipe, so padding works for every family
    if name not in REGISTRY:  # a file from disk: encode one probe now, so a broken one is refused at load
        bounded(lambda: tok(_PROBE, return_offsets_mapping=True), error=AssetError,
                what=f"{name!r} loads but fails on a probe text", budget_s=ENCODE_BUDGET_S)
    return tok


def _json_object(file: Path) -> dict:
    """A tokenizer's JSON file as a dict, or an AssetError saying what is wrong with it."""
    try:
        size = file.stat().st_size
        if size > MAX_TOKENIZER_FILE_MB * 2**20:
            raise AssetError(f"{file} has {size / 2**20:,.0f} MB, over the {MAX_TOKENIZER_FILE_MB} MB cap")
        data = json.loads(file.read_bytes())
    except UnicodeDecodeError as e:  # before ValueError: it is one
        raise AssetError(f"{file} is not UTF-8 text (byte {e.start})") from None
    except json.JSONDecodeError as e:
        raise AssetError(f"{file} is not valid JSON: {e.msg} at line {e.lineno}, column {e.colno}") from None
    except (OSError, ValueError, RecursionError) as e:  # unreadable, nested too deep
        raise AssetError(f"{file} can't be read as JSON: {e}") from None
    if not isinstance(data, dict):
        raise AssetError(f"{file} holds a JSON {type(data).__name__}, not an object")
    return data


def _load_folder(folder: Path) -> PreTrainedTokenizerFast:
    from transformers import AutoTokenizer, PreTrainedTokenizerFast

    file = folder / "tokenizer.json"
    if file.is_file():
        model = _json_object(file).get("model")
        if not isinstance(model, dict) or "vocab" not in model:  # every model kind (BPE, WordPiece, …) has one
            raise AssetError(f"{file} has no \"model\" with a \"vocab\": it is not a tokenizers tokenizer.json")
    if (folder / "tokenizer_config.json").is_file():
        _json_object(folder / "tokenizer_config.json")
        with rust_errors(AssetError, f"folder {folder} does not load as a tokenizer"):
            return AutoTokenizer.from_pretrained(str(folder))
    if file.is_file():
        with rust_errors(AssetError, f"{file} does not match the tokenizers format"):
            return PreTrainedTokenizerFast(tokenizer_file=str(file))
    raise AssetError(f"folder {folder} has no tokenizer.json or tokenizer_config.json")


def family(name: str, tok: PreTrainedTokenizerFast) -> str:
    """WordPiece / byte-level BPE / BPE / SentencePiece Unigram / …, from the registry or the model."""
    if name in REGISTRY:
        return REGISTRY[name].family
    kind = type(tok.backend_tokenizer.model).__name__
    if kind == "BPE" and is_byte_level(tok):
        return "byte-level BPE"
    if kind == "Unigram" and "Metaspace" in str(tok.backend_tokenizer.pre_tokenizer):
        return "SentencePiece Unigram"
    return kind


def is_byte_level(tok: PreTrainedTokenizerFast) -> bool:
    """Whether tokens are spelled in GPT-2's byte alphabet (Ġ for a space)."""
    return "ByteLevel" in str(tok.backend_tokenizer.pre_tokenizer)


# --------------------------------------------------------------------------- text checks
def check_text(text: str, settings: Settings | None = None) -> str:
    """The text if the views can take it, else `TextError` saying why (empty, over the cap)."""
    settings = settings or get_settings()
    if not isinstance(text, str):
        raise TextError(f"the text must be a string, got {type(text).__name__}")
    if not text.strip():
        raise TextError("the text is empty: type or paste something to tokenize")
    if len(text) > settings.max_text_chars:
        raise TextError(f"the text has {len(text):,} characters, over the cap of {settings.max_text_chars:,} "
                        f"(set {settings.env_name('max_text_chars')} to raise it)")
    return text


ZERO_WIDTH = {"\u200b", "\u200c", "\u200d", "\u2060", "\ufeff"}


def text_notes(text: str) -> list[str]:
    """Plain-language notes on characters that tokenizers treat specially."""
    kinds: dict[str, int] = {}
    for ch in text:
        cp, cat = ord(ch), unicodedata.category(ch)
        if ch in ZERO_WIDTH:
            k = "zero-width characters (invisible, but most tokenizers keep them as tokens or drop them)"
        elif cat == "Cc" and ch not in "\n\t\r":
            k = "control characters (BERT's normalizer deletes them; byte-level BPE keeps every byte)"
        elif cat == "So" or 0x1F000 <= cp <= 0x1FAFF:
            k = "emoji / symbols (byte-level BPE may split one into several byte tokens)"
        elif 0x4E00 <= cp <= 0x9FFF or 0x3040 <= cp <= 0x30FF or 0xAC00 <= cp <= 0xD7AF:
            k = "CJK characters (no spaces between words; BERT splits every Chinese character)"
        elif unicodedata.bidirectional(ch) in ("R", "AL"):
            k = "right-to-left script (offsets still count in logical order, left to right in memory)"
        else:
            continue
        kinds[k] = kinds.get(k, 0) + 1
    return [f"{n:,} {k}" for k, n in kinds.items()]


# --------------------------------------------------------------------------- compare
@dataclass(frozen=True)
class TokenView:
    """One token with the exact span of the original text it came from."""

    id: int
    token: str  # the raw vocabulary entry (Ġ, ▁, ## and all)
    start: int
    end: int
    special: bool  # added by the tokenizer ([CLS], <s>, …), no text behind it
    unknown: bool
    agrees: bool = True  # every compared tokenizer has token boundaries at both ends


@dataclass
class TokenizerResult:
    """How one tokenizer splits the text, with the numbers the page shows."""

    name: str
    family: str
    tokens: list[TokenView]
    vocab_size: int
    specials_added: list[str]
    n_unknown: int
    round_trip: bool
    decoded: str

    @property
    def n_tokens(self) -> int:
        return len(self.tokens)

    @property
    def n_text_tokens(self) -> int:
        return sum(not t.special for t in self.tokens)

    def chars_per_token(self, text: str) -> float:
        return len(text) / max(self.n_text_tokens, 1)


@dataclass
class Comparison:
    text: str
    results: list[TokenizerResult]
    split_points: dict[int, int] = field(default_factory=dict)  # boundary -> tokenizers that have it


def encode_view(name: str, tok: PreTrainedTokenizerFast, text: str, budget_s: float = ENCODE_BUDGET_S
                ) -> TokenizerResult:
    """Encode `text` once, keeping ids, raw tokens and character offsets (within `budget_s`)."""

    def run():
        # through the tokenizer's own call: it resets the padding/truncation a packaged tokenizer.json may carry
        enc = tok(text, add_special_tokens=True, return_offsets_mapping=True).encodings[0]
        return enc, tok.decode(enc.ids, skip_special_tokens=True, clean_up_tokenization_spaces=False)

    enc, decoded = bounded(run, error=TextError, what=f"{name} could not tokenize the text", budget_s=budget_s,
                           owner=tok)
    unk = tok.unk_token_id
    views = [TokenView(i, t, s, e, bool(sp), unk is not None and i == unk)
             for i, t, (s, e), sp in zip(enc.ids, enc.tokens, enc.offsets, enc.special_tokens_mask, strict=True)]
    return TokenizerResult(
        name=name, family=family(name, tok), tokens=views, vocab_size=len(tok),
        specials_added=[v.token for v in views if v.special], n_unknown=sum(v.unknown for v in views),
        round_trip=decoded == text, decoded=decoded,
    )


def _boundary(text: str, pos: int) -> int:
    """Move a split point past whitespace, so ' are' (BPE) and 'are' (WordPiece) split at the same place."""
    while pos < len(text) and text[pos].isspace():
        pos += 1
    return pos


def compare(tokenizers: dict[str, PreTrainedTokenizerFast], text: str, settings: Settings | None = None
            ) -> Comparison:
    """Encode `text` with each tokenizer and mark tokens whose split points not all of them share."""
    check_text(text, settings)
    if not isinstance(tokenizers, dict) or not tokenizers:
        raise TextError("pick at least one tokenizer")
    deadline = time.monotonic() + ENCODE_BUDGET_S  # one budget for the whole comparison
    results = [encode_view(n, t, text, max(0.05, deadline - time.monotonic())) for n, t in tokenizers.items()]
    points: dict[int, int] = {}
    for r in results:
        for b in {_boundary(text, p) for t in r.tokens if not t.special for p in (t.start, t.end)}:
            points[b] = points.get(b, 0) + 1
    shared = {b for b, n in points.items() if n == len(results)}
    cuts = sorted(points)

    def agrees(t: TokenView) -> bool:
        """Both ends shared by all, and no tokenizer cuts inside it."""
        a, b = _boundary(text, t.start), _boundary(text, t.end)
        return a in shared and b in shared and bisect.bisect_right(cuts, a) == bisect.bisect_left(cuts, b)

    for r in results:
        r.tokens = [t if t.special or agrees(t) else dataclasses.replace(t, agrees=False) for t in r.tokens]
    return Comparison(text, results, points)


def readable(token: str) -> str:
    """A byte-level token's real text (Ġare -> ' are'; a partial character shows as �)."""
    table = _byte_decoder()
    if all(c in table for c in token):
        return bytes(table[c] for c in token).decode("utf-8", errors="replace")
    return token


@lru_cache(maxsize=1)
def _byte_decoder() -> dict[str, int]:
    """GPT-2's printable stand-in for each byte, reversed (the table byte-level BPE spells tokens with)."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), 256))
    cs, n = bs[:], 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return {chr(c): b for b, c in zip(bs, cs, strict=True)}


# --------------------------------------------------------------------------- vocabulary
def vocab_search(tok: PreTrainedTokenizerFast, query: str = "", limit: int = 200) -> list[tuple[int, str, str]]:
    """(id, raw token, readable text) of tokens containing `query`, or of the id `query` if it is a number."""
    if not isinstance(query, str):
        raise TextError(f"the search must be text, got {type(query).__name__}")
    query = query.strip()
    if len(query) > MAX_QUERY_CHARS:
        raise TextError(f"the search has {len(query):,} characters; tokens are short, so at most {MAX_QUERY_CHARS}")
    with rust_errors(TextError, "the vocabulary could not be read"):
        byte_level = is_byte_level(tok)
        if re.fullmatch(r"-?[0-9]+", query):  # ASCII digits only: '²'.isdigit() is True but int('²') fails
            i = int(query)
            if not 0 <= i < len(tok):
                raise TextError(f"id {query} is outside the vocabulary (0 to {len(tok) - 1:,})")
            hits = [(i, tok.convert_ids_to_tokens(i))]
        else:
            hits = [(i, t) for t, i in tok.get_vocab().items()
                    if not query or query in t or (byte_level and query in readable(t))]
            hits.sort()
    # only byte-level tokens are spelled in the byte alphabet: WordPiece's '²' is the character itself
    return [(i, t, readable(t) if byte_level else t) for i, t in hits[:limit]]


def bpe_merges(tok: PreTrainedTokenizerFast) -> list[tuple[str, str]]:
    """Every BPE merge (left, right) in rank order; empty for WordPiece / Unigram models."""
    import tempfile

    with rust_errors(TextError, "the BPE merges could not be read"):
        model = tok.backend_tokenizer.model
        if type(model).__name__ != "BPE":
            return []
        with tempfile.TemporaryDirectory() as d:
            merges_file = next((f for f in model.save(d) if f.endswith("merges.txt")), None)
            lines = Path(merges_file).read_text(encoding="utf-8").splitlines() if merges_file else []
    pairs = (ln.split(" ", 1) for ln in lines if ln and not ln.startswith("#version"))
    return [(p[0], p[1]) for p in pairs if len(p) == 2]


def search_merges(merges: list[tuple[str, str]], query: str = "", limit: int = 200
                  ) -> list[tuple[int, str, str, str]]:
    """(rank, left, right, readable result) of merges whose result contains `query`."""
    out = []
    for rank, (left, right) in enumerate(merges):
        merged = readable(left + right)
        if not query or query in left + right or query in merged:
            out.append((rank, left, right, merged))
            if len(out) >= limit:
                break
    return out
