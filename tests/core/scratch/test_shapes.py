"""The layer table (shape propagation on `meta`) against a real forward on CPU, for every kind."""
import pytest
import torch

from core.scratch import KINDS, default_architecture, layer_table
from core.scratch.architectures import build_model, example_inputs, full_architecture, trace_rows, with_vocab
from core.scratch.models import ScratchClassifier, ScratchConfig
from core.training.config import ConfigError

SHAPES = {"mlp": (13,), "cnn": (1, 8, 8), "rnn": (16,), "transformer": (16,), "seq2seq": (12,), "gpt": (16,)}


def small(kind: str) -> dict:
    arch = default_architecture(kind)
    if kind in ("rnn", "transformer"):
        arch = with_vocab(full_architecture(arch), 50)
    if kind == "gpt":
        arch.update(vocab_size=50, n_embd=32, n_layer=2, n_head=2)
    return arch


@pytest.mark.parametrize("kind", KINDS)
def test_meta_shapes_equal_a_real_forward(kind):
    arch, shape = small(kind), SHAPES[kind]
    table = layer_table(arch, shape, num_classes=3 if kind not in ("seq2seq", "gpt") else None)
    meta = [tuple(r["output_shape"][1:]) for r in table]
    torch.manual_seed(0)
    if kind in ("seq2seq", "gpt"):
        full = full_architecture(arch)
        model = build_model(full, vocab=50, max_length=shape[0]) if kind == "gpt" else build_model(full)
        rows = trace_rows(model.eval(), example_inputs(kind, model, shape[0]))
        real = [tuple(r["output_shape"][1:]) for r in rows]
        assert [r["params"] for r in rows] == [r["params"] for r in table]
    else:
        text = kind in ("rnn", "transformer")
        cfg = ScratchConfig(arch, list(shape), "long" if text else "float", num_labels=3)
        model = ScratchClassifier(cfg).eval()
        if text:
            x = torch.randint(1, 50, (2, shape[0]))
            mask = torch.ones_like(x)
            mask[1, 5:] = 0  # one padded row: packing and attention masks on the real path
        else:
            x, mask = torch.randn(2, *shape), None
        trace = []
        with torch.no_grad():
            model.body(x, mask, trace)
        real = [t[1:] for t in trace]
        assert sum(r["params"] for r in table) == sum(p.numel() for p in model.parameters())
    assert meta == real
    assert all(r["bytes"] == 4 * r["params"] for r in table)


def test_table_rows_name_type_and_memory():
    rows = layer_table(default_architecture("cnn"), (1, 8, 8), num_classes=10)
    assert rows[0] == {"name": "layers[0]", "type": "Conv2d", "output_shape": ["B", 32, 8, 8], "params": 320,
                       "bytes": 1280, "activation_bytes": 32 * 64 * 4,
                       "args": {"in_channels": 1, "out_channels": 32, "kernel_size": 3, "stride": 1, "padding": 1}}
    assert rows[-1]["name"] == "head" and rows[-1]["output_shape"] == ["B", 10]


def test_resizing_a_layer_repropagates():
    arch = default_architecture("mlp")
    arch["layers"][0]["out_features"] = 7
    rows = layer_table(arch, (4,), num_classes=2)
    assert rows[0]["output_shape"] == ["B", 7] and rows[3]["args"]["in_features"] == 7


def test_an_impossible_stack_names_the_layer_and_the_shapes():
    arch = default_architecture("cnn")
    arch["layers"].insert(7, {"type": "Conv2d", "out_channels": 8, "kernel_size": 9})
    with pytest.raises(ConfigError) as e:
        layer_table(arch, (1, 8, 8), num_classes=10)
    assert e.value.field == "architecture.layers[7]"
    assert "(B, 64, 4, 4)" in e.value.message and "Kernel size" in e.value.message

    arch = default_architecture("cnn")
    del arch["layers"][8]  # no Flatten: the Linear after it still fits (last dim), the head does not
    with pytest.raises(ConfigError) as e:
        layer_table(arch, (1, 8, 8), num_classes=10)
    assert e.value.field == "architecture.layers" and "Flatten" in e.value.message

    arch = {"kind": "mlp", "layers": [{"type": "Conv2d", "out_channels": 4}]}
    with pytest.raises(ConfigError) as e:
        layer_table(arch, (13,), num_classes=2)
    assert e.value.field == "architecture.layers[0]" and "(B, C, H, W)" in e.value.message and "(B, 13)" in e.value.message
