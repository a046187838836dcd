"""A tiny BERT classifier folder and a tiny labelled dataset, so training tests take seconds."""
from pathlib import Path

from core.settings import Settings

POSITIVE = ["great film", "loved it", "wonderful acting", "a joy to watch", "superb and moving",
            "brilliant story", "really enjoyable", "fantastic cast", "I liked it a lot", "excellent fun"]
NEGATIVE = ["awful film", "hated it", "terrible acting", "a pain to watch", "dull and boring",
            "weak story", "really tedious", "dreadful cast", "I disliked it a lot", "poor and slow"]


def tiny_model(folder: Path) -> Path:
    """A 2-layer, 32-wide BERT with MiniLM's WordPiece tokenizer, saved with save_pretrained."""
    from transformers import AutoTokenizer, BertConfig, BertModel

    from core.assets import minilm_path

    tok = AutoTokenizer.from_pretrained(str(minilm_path()))
    cfg = BertConfig(vocab_size=tok.vocab_size, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                     intermediate_size=64, max_position_embeddings=64)
    BertModel(cfg).save_pretrained(folder)
    tok.save_pretrained(folder)
    return folder


def tiny_dataset(settings: Settings, name: str = "tiny", rows: int = 40, labels=("pos", "neg")):
    """Alternating positive / negative sentences with string labels, saved in the DatasetStore."""
    import datasets

    from core.data import DatasetStore

    texts, ys = [], []
    for i in range(rows):
        bank, y = (POSITIVE, labels[0]) if i % 2 == 0 else (NEGATIVE, labels[1])
        texts.append(bank[(i // 2) % len(bank)])
        ys.append(y)
    ds = datasets.Dataset.from_dict({"text": texts, "label": ys})
    return DatasetStore(settings.datasets_dir).save(ds, name, "test fixture")
