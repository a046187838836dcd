def test_home_shows_device_panel_and_assets(open_page):
    at = open_page("pages/home.py", timeout=180)
    assert not at.exception
    assert at.title[0].value == "Torch Lab"
    labels = {m.label: m.value for m in at.metric}
    assert labels["CUDA"] in {"available", "not available"}
    assert int(labels["CPU cores"]) >= 1
    assets_table = at.table[-1].value
    assert set(assets_table["name"]) >= {"bert-wordpiece-uncased", "cl100k_base", "xlm-r-unigram", "minilm-l6"}
    assert (assets_table.index == "✅").all()


def test_every_page_renders(open_page):
    for page in ["pages/tensor_playground.py", "pages/autograd_graph.py", "pages/tokenizer_lab.py",
                 "pages/dataset_browser.py", "pages/fine_tuning.py", "pages/summarize_qa.py"]:
        at = open_page(page, timeout=180)
        assert not at.exception, (page, at.exception)
        assert at.title, page
