"""The dataset page: opens on the sample, uploads a CSV (good and malformed), browses, shapes and saves."""
import uuid

from core.data import DatasetStore


def test_upload_browse_shape_and_save(open_page):
    at = open_page("pages/dataset_browser.py", timeout=180)
    assert not at.exception
    assert at.title[0].value == "Datasets"
    sample = next(o for o in at.selectbox(key="ds_pick").options if o.startswith("drug-reviews v1 "))
    at.selectbox(key="ds_pick").set_value(sample).run()  # other tests may have saved newer datasets
    assert at.radio(key="ds_split").options == ["train", "test"]
    first_page = at.dataframe[0].value
    assert len(first_page) == 100 and "text" in first_page.columns

    # a malformed upload: a clear message naming the line, nothing saved, the page still works
    before = len(DatasetStore.default().list())
    at.file_uploader(key="up_file").set_value(("bad.csv", b"a,b\n1,2\n3,4,5\n", "text/csv"))
    at.radio(key="load_src").set_value("upload")
    at.button(key="load_btn").click().run()
    assert not at.exception
    assert "line 3 has 3 fields, expected 2" in at.error[0].value
    assert len(DatasetStore.default().list()) == before
    # a binary renamed .csv: refused, the message names the file as the user named it (not the server's copy)
    at.file_uploader(key="up_file").set_value(("photo 1.csv", b"\x89PNG\r\n\x1a\n" + bytes(range(256)), "text/csv"))
    at.button(key="load_btn").click().run()
    assert not at.exception
    assert at.error[0].value == "photo-1.csv is a PNG image, not a text file: export it as CSV first"
    assert len(DatasetStore.default().list()) == before

    # a good upload is saved as a new dataset and becomes the one on screen
    name = f"apptest-{uuid.uuid4().hex[:6]}"
    csv = b"text,label\n" + b"".join(f"review number {i},{'pos' if i % 3 else 'neg'}\n".encode() for i in range(250))
    at.file_uploader(key="up_file").set_value(("my reviews.csv", csv, "text/csv"))
    at.text_input(key="up_name").set_value(name)
    at.button(key="load_btn").click().run()
    assert not at.exception, at.exception
    assert f"Saved {name} v1 · 250 rows" in at.success[0].value
    assert at.selectbox(key="ds_pick").value == f"{name} v1 · 250 rows"
    assert list(at.dataframe[0].value["text"][:2]) == ["review number 0", "review number 1"]

    # page 3 of the browser shows rows 200..249
    at.number_input(key="br_page").set_value(3).run()
    assert not at.exception
    assert list(at.dataframe[0].value.index[:1]) == [200] and len(at.dataframe[0].value) == 50

    # shape: encode the label, then save a new version with its history
    at.selectbox(key="op_kind").set_value("class_label").run()
    at.button(key="op_apply").click().run()
    assert not at.exception
    encode = "ds = ds.cast_column('label', Value('string')).cast_column('label', ClassLabel(names=names))"
    shown = next(c.value for c in at.code if "load_from_disk" in c.value)
    assert encode in shown and "core" not in shown  # plain `datasets` code
    at.button[[b.label for b in at.button].index("Save as a new version")].click().run()
    assert not at.exception
    assert any(f"Saved {name} v2 · 250 rows" in s.value for s in at.success)
    ref = DatasetStore.default().ref(name)
    assert ref.version == 2 and any(encode in h for h in ref.history)
    assert at.selectbox(key="ds_pick").value == f"{name} v2 · 250 rows"
    # still on page 3: rows 200.. with the class ids shown as their names (200 % 3 -> pos, 201 -> neg)
    assert list(at.dataframe[0].value["label"][:3]) == ["pos", "neg", "pos"]
    assert DatasetStore.default().load(name)["train"].features["label"].names == ["neg", "pos"]
    store = DatasetStore.default()
    for v in store.versions(name):  # leave the shared test workspace as it was
        store.delete(name, v)


def test_server_paths_stay_in_allowed_folders_and_export_says_it_neutralises(open_page, tmp_path):
    """Issue 13: a path outside the allowed folders (or a link leading out) is refused beside the path input,
    quoting nothing of the file; a file in imports/ loads; the export area says CSV is neutralised and
    refuses nested columns beside its button."""
    import datasets

    from core.settings import get_settings

    secret = "SECRET-5b1e-TOKEN"
    imports = get_settings().workspace / "imports"
    imports.mkdir(parents=True, exist_ok=True)
    tag = uuid.uuid4().hex[:6]
    (tmp_path / "secret.csv").write_text(f"{secret},b\n1,2\n")
    link, good = imports / f"link-{tag}.csv", imports / f"good-{tag}.csv"
    link.symlink_to(tmp_path / "secret.csv")
    good.write_text("text,label\n=HYPERLINK(1),pos\nhi,neg\n")
    store = DatasetStore.default()
    name, nested = f"apptest-path-{tag}", f"apptest-nested-{tag}"
    try:
        at = open_page("pages/dataset_browser.py", timeout=180)
        # browse a flat dataset: the shared workspace may open on another test's nested one, whose export
        # refusal would be a second, unrelated error on the page
        pick = at.selectbox(key="ds_pick")
        pick.set_value(next(o for o in pick.options if o.startswith("drug-reviews "))).run()
        at.radio(key="load_src").set_value("server path").run()
        for typed in ["/etc/passwd", link.name, "/proc/self/maps", "../../../../etc/passwd"]:
            at.text_input(key="path_input").set_value(typed)
            at.button(key="load_btn").click().run()
            assert not at.exception
            assert len(at.error) == 1 and "outside the folders the server may read" in at.error[0].value, typed
            assert secret not in at.error[0].value and "root:" not in at.error[0].value
            assert str(imports.resolve()) in at.error[0].value
        assert not any(r.name == name for r in store.list())

        at.text_input(key="path_input").set_value(good.name)
        at.text_input(key="path_name").set_value(name)
        at.button(key="load_btn").click().run()
        assert not at.exception and not at.error
        assert f"Saved {name} v1 · 2 rows" in at.success[0].value
        assert any("neutralised against spreadsheet formulas" in c.value for c in at.caption)
        assert not at.download_button(key="ex_btn").disabled

        store.save(datasets.Dataset.from_dict({"tokens": [[1, 2]], "text": ["a"]}), nested, "test")
        at.run()  # the picker lists what is on disk at each run
        at.selectbox(key="ds_pick").set_value(f"{nested} v1 · 1 rows").run()
        assert not at.exception
        # a dataset CSV can't hold is offered as Parquet, with nothing to refuse…
        assert at.selectbox(key="ex_fmt_nested").value == "parquet" and not at.download_button(key="ex_btn").disabled
        assert not any("CSV cells" in e.value for e in at.error)
        at.selectbox(key="ex_fmt_nested").set_value("csv").run()  # …and CSV, asked for, is refused beside its button
        assert any("CSV cells can't hold the column 'tokens'" in e.value for e in at.error)
        assert at.download_button(key="ex_btn").disabled
    finally:
        link.unlink(missing_ok=True)
        good.unlink(missing_ok=True)
        for n in (name, nested):
            for v in store.versions(n):
                store.delete(n, v)


def test_a_long_load_shows_progress_with_rows_per_second_and_eta(open_page, monkeypatch):
    import components.data_views as V

    frac, text = V.progress_text(25_000_000, 100_000_000, 200_000, 2.0)
    assert frac == 0.25 and "200,000 rows" in text and "100,000 rows/s" in text and "about 6 s left" in text
    assert V.progress_text(0, 10, 0, 0.0)[1].endswith("time left unknown")

    monkeypatch.setattr(V, "PROGRESS_AFTER_S", 0.0)  # every load counts as long
    calls, bar = [], V._progress_bar

    def spy():
        draw = bar()
        return lambda *a: (calls.append(a), draw(*a))

    monkeypatch.setattr(V, "_progress_bar", spy)
    at = open_page("pages/dataset_browser.py", timeout=180)
    name = f"apptest-{uuid.uuid4().hex[:6]}"
    csv = b"text,label\n" + b"".join(f"row {i},{i % 2}\n".encode() for i in range(3000))
    at.file_uploader(key="up_file").set_value(("p.csv", csv, "text/csv"))
    at.radio(key="load_src").set_value("upload")
    at.text_input(key="up_name").set_value(name)
    at.button(key="load_btn").click().run()
    assert not at.exception, at.exception
    assert f"Saved {name} v1 · 3,000 rows" in at.success[0].value
    assert calls and calls[-1][2] == 3000 and calls[-1][1] == len(csv)  # (bytes read, size, rows) from core
    store = DatasetStore.default()
    for v in store.versions(name):
        store.delete(name, v)
