"""A tiny GPT-2 causal LM saved with `save_pretrained`: offline there is no packaged GPT."""
from pathlib import Path


def tiny_gpt2(folder: Path, seed: int = 0) -> Path:
    """2 layers, 4 heads, width 32, with MiniLM's WordPiece vocabulary (no GPT-2 vocabulary ships offline)."""
    import torch
    from transformers import AutoTokenizer, GPT2Config, GPT2LMHeadModel

    from core.assets import minilm_path

    if (folder / "config.json").is_file():
        return folder
    tok = AutoTokenizer.from_pretrained(str(minilm_path()))
    torch.manual_seed(seed)
    cfg = GPT2Config(vocab_size=tok.vocab_size, n_embd=32, n_layer=2, n_head=4, n_positions=64,
                     bos_token_id=tok.cls_token_id, eos_token_id=tok.sep_token_id)
    GPT2LMHeadModel(cfg).save_pretrained(folder)
    tok.save_pretrained(folder)
    return folder
