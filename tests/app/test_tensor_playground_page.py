"""The tensor playground page, rendered through app.py."""
import torch


def _codes(at) -> str:
    return "\n".join(c.value for c in at.code)


def test_first_lesson_renders_with_storage_and_code(open_page):
    at = open_page("pages/tensor_playground.py")
    assert not at.exception
    assert at.title[0].value == "Tensor playground"
    assert "x = torch.tensor([[1, 2], [3, 4]], dtype=torch.float32)" in _codes(at)
    # the default pick is the last result, c = r.T.contiguous(): a copy with fresh strides
    assert at.selectbox(key="tp_pick").value == "c"
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["stride()"] == "(3, 1)" and metrics["is_contiguous()"] == "True"
    at.selectbox(key="tp_pick").set_value("t").run()
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["stride()"] == "(1, 4)" and metrics["is_contiguous()"] == "False"
    assert any("shares its storage with `r`" in s.value for s in at.success)
    assert any("would copy 12 elements" in m.value for m in at.markdown)
    assert "t = r.T\nprint(t)" in _codes(at)


def test_program_edit_and_bad_input_keep_the_session(open_page):
    at = open_page("pages/tensor_playground.py")
    at.text_area(key="tp_program").set_value("y = x + 2\nz = torch.matmul(x, y.T)\nh = torch.arange(24).reshape(2, 3, 4)").run()
    assert not at.exception
    at.selectbox(key="tp_pick").set_value("h").run()
    at.number_input(key="tp_val_h-dim0").set_value(1).run()  # slice picker for a 3-D tensor
    assert at.dataframe[1].value.values.tolist() == torch.arange(12, 24).reshape(3, 4).tolist()
    at.selectbox(key="tp_pick").set_value("z").run()
    table = at.dataframe[1].value  # [0] is the summary of all tensors
    assert torch.equal(torch.tensor(table.values, dtype=torch.float32), torch.tensor([[11.0, 17.0], [25.0, 39.0]]))
    # a syntax error shows the caret, a refused construct names the rule; earlier tensors stay
    at.text_area(key="tp_program").set_value("y = x +* 2").run()
    assert not at.exception and "syntax error" in at.error[0].value
    assert "^" in _codes(at)
    at.text_area(key="tp_program").set_value("y = torch.load('secrets.pt')").run()
    assert not at.exception and "not on the whitelist" in at.error[0].value
    assert "z" in at.selectbox(key="tp_pick").options  # the last good program's tensors are kept


def test_define_a_tensor_with_the_form_and_broadcast(open_page):
    at = open_page("pages/tensor_playground.py")
    at.text_input[0].set_value("b")
    at.text_input[2].set_value("4, 1")
    next(b for b in at.button if b.label == "Define tensor").click().run()
    assert not at.exception
    assert "torch.randn(4, 1, generator=g, dtype=torch.float32)" in _codes(at)
    at.selectbox(key="tp_bl").set_value("b")
    at.selectbox(key="tp_br").set_value("s").run()
    assert any("do not broadcast" in e.value for e in at.error)
    at.selectbox(key="tp_br").set_value("flat").run()
    assert any("has shape (4, 4)" in s.value for s in at.success)
    assert any("CUDA" in i.value for i in at.info) or torch.cuda.is_available()
