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


def _column_with(at, key: str):
    """The innermost column holding the widget `key`: errors must show beside the widget that caused them."""
    cols = [c for c in at.columns if any(w.key == key for w in [*c.text_area, *c.text_input, *c.selectbox])]
    return cols[-1]


def test_hostile_programs_and_literals_show_clear_errors_beside_their_widget(open_page):
    at = open_page("pages/tensor_playground.py")
    cases = {"a = torch.ones(3).to('meta')": "'meta' device", "a = 2 ** 99999\nb = a ** 2": "integers are capped",
             "b = [[0] * 10**7] * 10**7 == 0": "max_container_items", "b = torch.zeros(10**4, 1) + torch.zeros(1, 10**4)":
             "max_tensor_elements", "a = torch.zeros(1000, 1000)\ni = torch.zeros(10**5, 1, dtype=torch.long)\n"
             "j = torch.zeros(1, 10**5, dtype=torch.long)\na[i, j] = 1.0": "max_tensor_elements"}
    for program, words in cases.items():
        at.text_area(key="tp_program").set_value(program).run()
        assert not at.exception, program
        beside = [e.value for e in _column_with(at, "tp_program").error]
        assert any(words in e for e in beside), (program, beside)
    # uninitialised memory reads as zeros; a hostile literal is refused beside its definition
    at.text_area(key="tp_program").set_value("b = torch.empty(300, 300)").run()
    at.selectbox(key="tp_pick").set_value("b").run()
    assert not at.exception and (at.dataframe[1].value.values == 0).all()
    at.text_input[0].set_value("big")
    at.segmented_control[0].set_value("literal")
    at.text_input[1].set_value("[[0] * 10**4] * 3000")
    next(b for b in at.button if b.label == "Define tensor").click().run()
    assert not at.exception
    left = [c for c in at.columns if any(b.label == "Define tensor" for b in c.button)][-1]
    assert any("tensor big" in e.value and "max_container_items" in e.value for e in left.error)


def test_empty_and_many_dimensional_tensors_render(open_page):
    at = open_page("pages/tensor_playground.py")
    at.text_area(key="tp_program").set_value("h = torch.zeros(0, 2, 3)\ng = torch.ones([1] * 12)").run()
    for pick in ("h", "g"):
        at.selectbox(key="tp_pick").set_value(pick).run()
        assert not at.exception, pick
    at.selectbox(key="tp_pick").set_value("h").run()
    assert any("empty tensor of shape (0, 2, 3)" in c.value for c in at.caption)
