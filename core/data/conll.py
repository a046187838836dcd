"""CoNLL-style files (one word per line, its tag in the last column, a blank line between sentences) ->
a `datasets.Dataset` with `tokens` and `ner_tags` (lists of strings), the shape token classification reads.

CoNLL-2003 (`word POS chunk tag`), WNUT (`word<TAB>tag`) and the shipped sample all read the same way;
`-DOCSTART-` lines are document separators, not words. Hand-parsed (the format is a few lines) because
`datasets`' own CoNLL builders are loading scripts that fetch from the hub.
"""
from __future__ import annotations

from pathlib import Path

from core.data.types import DataError

SUFFIXES = (".conll", ".conllu", ".iob", ".bio")  # files the Datasets page can hand to `read_conll`
SAMPLE_NAME = "ner-sample"
SAMPLE_PATH = Path(__file__).resolve().parents[2] / "samples" / "ner_sample.conll"
MAX_SENTENCES = 1_000_000


def parse_conll(text: str) -> dict[str, list[list[str]]]:
    """{"tokens": [[word, ...], ...], "ner_tags": [[tag, ...], ...]}; DataError names the line."""
    tokens: list[list[str]] = []
    tags: list[list[str]] = []
    words: list[str] = []
    labels: list[str] = []

    def close() -> None:
        if words:
            tokens.append(words.copy())
            tags.append(labels.copy())
            words.clear()
            labels.clear()
            if len(tokens) > MAX_SENTENCES:
                raise DataError(f"more than {MAX_SENTENCES:,} sentences")

    for n, line in enumerate(text.splitlines(), 1):
        parts = line.split()
        if not parts or parts[0] == "-DOCSTART-":
            close()
            continue
        if len(parts) < 2:
            raise DataError(f"line {n}: {line.strip()!r} has a word but no tag (CoNLL: word … tag, "
                            "separated by spaces or tabs)")
        words.append(parts[0])
        labels.append(parts[-1])
    close()
    return {"tokens": tokens, "ner_tags": tags}


def read_conll(path: str | Path):
    """The file as a `datasets.Dataset` (columns tokens, ner_tags)."""
    import datasets

    try:
        text = Path(path).read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise DataError(f"{Path(path).name} is not UTF-8 text: {e}") from None
    rows = parse_conll(text)
    if not rows["tokens"]:
        raise DataError(f"{Path(path).name} holds no sentence")
    features = datasets.Features({"tokens": datasets.List(datasets.Value("string")),
                                  "ner_tags": datasets.List(datasets.Value("string"))})
    return datasets.Dataset.from_dict(rows, features=features)


def load_conll(path: str | Path, out: str | Path, limits=None):
    """`load_file_report`'s branch for CoNLL files: the rows written as an Arrow stream at `out` (which
    `datasets.Dataset.from_file` memory-maps), and a LoadReport; `limits.rows` caps the sentences."""
    import pyarrow as pa

    from core.data.types import LoadReport

    ds = read_conll(path)
    if limits is not None and len(ds) > limits.rows:
        raise DataError(f"{Path(path).name}: more than {limits.rows:,} sentences, over the row cap "
                        "(TORCHLAB_MAX_ROWS)")
    table = ds.data.table  # carries the features (tokens, ner_tags: lists of strings) in its schema
    with pa.OSFile(str(out), "wb") as sink, pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    words = sum(len(t) for t in ds["tokens"])
    return LoadReport(dataset=None, format="conll", delimiter=None, header=False,  # type: ignore[arg-type]
                      notes=[f"CoNLL: {len(ds):,} sentences, {words:,} words; tokens and ner_tags (BIO strings)"])


def ensure_ner_sample(store):
    """Register the shipped CoNLL sample (samples/ner_sample.conll, hand-written) in `store` once."""
    from core.data.store import _lock  # the store's own cross-process lock, as its ensure_sample takes it

    if store.versions(SAMPLE_NAME):
        return store.ref(SAMPLE_NAME, store.versions(SAMPLE_NAME)[0])
    data = read_conll(SAMPLE_PATH)
    with _lock(store.root):
        if store.versions(SAMPLE_NAME):  # another process registered it meanwhile
            return store.ref(SAMPLE_NAME, store.versions(SAMPLE_NAME)[0])
        return store.save(data, SAMPLE_NAME,
                          "sample: 60 hand-written CoNLL sentences (samples/ner_sample.conll), PER / ORG / LOC / MISC",
                          ["ds = core.data.conll.read_conll('samples/ner_sample.conll')"])
