"""Tiny generation checkpoints (a GPT-2 and a BART, random weights, MiniLM's WordPiece vocabulary) and text data."""
from pathlib import Path

from core.settings import Settings

SENTENCES = ["the cat sat on the mat", "a dog ran in the park", "the bird sang at dawn", "my friend read a book",
             "the sun rose over the hills", "we ate bread and cheese", "the train left at noon",
             "she painted the old door", "rain fell on the roof", "the children played outside"]


def tiny_bart(folder: Path, seed: int = 0) -> Path:
    """A 1+1-layer, 32-wide BART whose special tokens are BERT's ([CLS] starts the decoder, [SEP] ends)."""
    import torch
    from transformers import AutoTokenizer, BartConfig, BartForConditionalGeneration

    from core.assets import minilm_path

    if (folder / "config.json").is_file():
        return folder
    tok = AutoTokenizer.from_pretrained(str(minilm_path()))
    torch.manual_seed(seed)
    cfg = BartConfig(vocab_size=tok.vocab_size, d_model=32, encoder_layers=1, decoder_layers=1,
                     encoder_attention_heads=2, decoder_attention_heads=2, encoder_ffn_dim=64, decoder_ffn_dim=64,
                     max_position_embeddings=64, pad_token_id=tok.pad_token_id, bos_token_id=tok.cls_token_id,
                     eos_token_id=tok.sep_token_id, decoder_start_token_id=tok.cls_token_id,
                     forced_eos_token_id=tok.sep_token_id)
    BartForConditionalGeneration(cfg).save_pretrained(folder)
    tok.save_pretrained(folder)
    return folder


def text_dataset(settings: Settings, name: str = "tiny-text", rows: int = 40, **columns):
    """`text` (a sentence), `document` (the sentence and more) and `summary` (its last three words), or the
    given columns, saved in the DatasetStore."""
    import datasets

    from core.data import DatasetStore

    if not columns:
        texts = [SENTENCES[i % len(SENTENCES)] for i in range(rows)]
        columns = {"text": texts, "document": [f"today {t} and then we went home" for t in texts],
                   "summary": [" ".join(t.split()[-3:]) for t in texts]}
    return DatasetStore(settings.datasets_dir).save(datasets.Dataset.from_dict(columns), name, "test fixture")
