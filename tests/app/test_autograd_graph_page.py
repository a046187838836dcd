"""The autograd page: first-lesson values, a bad program, and the nn.Module tab after interaction."""


def _metrics(at):
    return {m.label: m.value for m in at.metric}


def test_autograd_page_default_example_and_interaction(open_page):
    at = open_page("pages/autograd_graph.py", timeout=180)
    assert not at.exception
    assert at.title[0].value == "Autograd graph"
    m = _metrics(at)
    assert "a.grad" in m, [e.value for e in at.error]
    assert m["a.grad"] == "4" and m["b.grad"] == "2" and m["c.grad"] == "1"
    assert any("Gradients verified" in s.value for s in at.success)
    assert len(at.get("graphviz_chart")) >= 2  # the graph and the step-by-step view
    # a second backward without retain_graph: the plain-words reason, and the page keeps working
    at.checkbox(key="ag_retain_graph").uncheck().run()
    assert not at.exception
    assert any("retain_graph=True" in w.value for w in at.warning)

    # backward from a tensor that does not require grad: a clear message, no traceback
    at.text_area(key="ag_program").input("a = torch.tensor(2.0)\nd = a * 3").run()
    assert not at.exception
    assert any("does not require grad" in e.value for e in at.error)

    # another example: the detach / no_grad program; gradients from the graph, not from the cut paths
    at.selectbox(key="ag_example").select("no_grad and detach cut the graph").run()
    assert not at.exception
    m = _metrics(at)
    assert m["a.grad"] == "1" and m["b.grad"] == "2"
    assert any("`s` is not in the graph" in md.value for md in at.markdown)


def test_autograd_page_mlp_and_training_step(open_page):
    at = open_page("pages/autograd_graph.py", timeout=180)
    at.radio(key="nn_kind").set_value("MLP you shape").run()
    at.text_input(key="nn_sizes").input("4, 8, 3").run()
    at.selectbox(key="nn_opt").select("sgd").run()
    assert not at.exception
    m = _metrics(at)
    assert m["Parameters"] == f"{4 * 8 + 8 + 8 * 3 + 3:,}"
    assert m["sgd implementation"] == "foreach"  # SGD: multi-tensor; Adam/AdamW: fused where available
    assert float(m["Loss after"]) < float(m["Loss before"])
    at.text_input(key="nn_sizes").input("4, x").run()
    assert not at.exception
    assert any("whole numbers" in e.value for e in at.error)


def test_dot_escapes_labels_and_colours_by_kind():
    from components.graph_view import COLORS, to_dot
    from core.tensors.graph import GraphEdge, GraphNode

    nodes = [GraphNode("t:a", "leaf", 'a"] evil [x="\\'), GraphNode("fn0", "grad_fn", "MulBackward0", step=1)]
    dot = to_dot(nodes, [GraphEdge("t:a", "fn0", "cut", 'say "hi"')], selected="fn0")
    assert 'a\\"] evil [x=\\"\\\\' in dot  # quotes and backslashes escaped: the label cannot close early
    assert 'label="say \\"hi\\""' in dot and "style=dashed" in dot
    assert COLORS["leaf"][0] in dot and COLORS["grad_fn"][0] in dot
    assert '"fn0" [label="1. MulBackward0"' in dot and "penwidth=3" in dot


def _column_with(at, key: str):
    return [c for c in at.columns if any(w.key == key for w in [*c.text_area, *c.text_input])][-1]


def test_bad_gradient_and_program_errors_show_beside_their_field(open_page):
    at = open_page("pages/autograd_graph.py", timeout=180)
    at.selectbox(key="ag_example").select("Vector output with a gradient").run()
    for gradient, words in {"'abc'": "a str", "torch.finfo(torch.float32)": "a finfo",
                            "torch.ones(3).to('meta')": "'meta' device", "torch.empty(3)": None}.items():
        at.text_input(key="ag_gradient").input(gradient).run()
        assert not at.exception, gradient
        beside = [e.value for e in _column_with(at, "ag_gradient").error]
        if words is None:  # uninitialised memory is zeros: a zero gradient, not an error
            assert not beside and _metrics(at)["x.grad"].replace("-0", "0") == "[0, 0, 0]"
        else:
            assert any(words in e for e in beside), (gradient, beside)
    at.text_area(key="ag_program").input("a = torch.ones(3, requires_grad=True)\nb = a.exp()\nb[1] = 0.0\n"
                                          "z = b.sum()").run()
    at.text_input(key="ag_output").input("z")
    at.text_input(key="ag_gradient").input("").run()
    assert not at.exception
    assert any("changed in place" in e.value for e in _column_with(at, "ag_program").error)


BLITZ = "x = torch.ones(2, 2, requires_grad=True)\ny = x + 2\nz = y * y * 3\nout = z.mean()"


def test_backward_line_stale_fields_and_the_values_headline(open_page):
    """#14: `out.backward()` in the program sets the output field; stale fields reset; 2-D grads shown as values."""
    at = open_page("pages/autograd_graph.py", timeout=180)
    at.text_area(key="ag_program").input(BLITZ + "\nout.backward()").run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    out_field = at.text_input(key="ag_output")
    assert out_field.value == "out" and out_field.disabled
    assert at.text_input(key="ag_retain").value == ""  # `c` is not in this program: dropped, and said so
    assert any("`c`" in i.value for i in at.info)
    assert "[[4.5, 4.5],\n [4.5, 4.5]]" in [c.value for c in at.code]
    assert any("After `out.backward()`" in md.value for md in at.markdown)
    # the backward line taken away: the field keeps `out` and comes back to life
    at.text_area(key="ag_program").input(BLITZ).run()
    assert not at.error and not at.text_input(key="ag_output").disabled
    # a program without `out`: the output resets to its last tensor that requires grad, no error
    at.text_area(key="ag_program").input("p = torch.tensor([1.0, 2.0], requires_grad=True)\nq = p * p\n"
                                          "loss = q.sum()").run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert at.text_input(key="ag_output").value == "loss"
    assert any("Backward now runs on `loss`" in i.value for i in at.info)
    assert _metrics(at)["p.grad"] == "[2, 4]"
    # backward in the middle: one message, beside the program
    at.text_area(key="ag_program").input("a = torch.ones(2, requires_grad=True)\nd = a.sum()\nd.backward()\n"
                                          "e = d * 2").run()
    assert [e.value for e in at.error if "last line" in e.value]


def test_values_text_prints_small_tensors_and_summarises_large_ones():
    import torch

    from components.graph_view import values_text

    assert values_text(torch.tensor(2.5)) == "2.5"
    assert values_text(torch.full((2, 2), 4.5)) == "[[4.5, 4.5],\n [4.5, 4.5]]"
    big = values_text(torch.arange(600.0).reshape(20, 30))
    assert big.startswith("shape (20, 30), 600 values\nfirst: 0, 1, 2, 3, 4, 5, …")
    assert big.endswith("min 0 · mean 299.5 · max 599")
