"""Torch Lab's engine: tensors, autograd, tokenizers, data, training, NLP. Never imports streamlit.

Submodules load their heavy dependencies (torch, transformers, datasets) on first use, so
`import core` stays fast; import what you need, e.g. `from core.expr import evaluate`.
"""
from core.settings import Settings, get_settings

__all__ = ["Settings", "get_settings"]
