import time


def test_home_shows_device_panel_and_assets(open_page):
    at = open_page("pages/home.py", timeout=180)
    assert not at.exception
    assert at.title[0].value == "Torch Lab"
    # the device probe and the asset check run in the background (they took ~22 s inline); the page
    # says so until they are done, then shows their results
    deadline = time.monotonic() + 300
    while not any(m.label == "CUDA" for m in at.metric) or "⏳" in at.table[-1].value.index:
        assert time.monotonic() < deadline, "background probes did not finish"
        assert any("Probing" in c.value or "Loading each" in c.value for c in at.caption) or \
            any(m.label == "CUDA" for m in at.metric)
        time.sleep(0.5)
        at.run()
        assert not at.exception
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
