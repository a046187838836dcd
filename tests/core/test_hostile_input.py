"""Hostile input that is not a formula: file and dataset names, server settings, raw-HTML sinks, eval.

Upload names come from the browser and can be anything; every name-to-path step must stay in the workspace.
"""
from __future__ import annotations

import ast
import io
import tomllib
from pathlib import Path

import pytest

from core.data import save_upload
from core.data.store import DatasetStore, safe_name

ROOT = Path(__file__).resolve().parents[2]
HOSTILE_NAMES = [
    "../../escape.csv", "../../../../../../tmp/escape.csv", "/etc/passwd", "/tmp/escape.csv",
    "..\\..\\escape.csv", "C:\\Windows\\escape.csv", "a/../../escape.csv", "....//....//escape.csv",
    "..", ".", "", "/", "~/escape.csv", "%2e%2e%2fescape.csv", "\x00escape.csv", "escape.csv\x00.png",
    "..\u2215..\u2215escape.csv", "\uff0e\uff0e/escape.csv", "reviews.csv/..", " ../ escape.csv",
    "x" * 5000 + ".csv", "normal name (1).csv", "\n../escape.csv", "-rf.csv", ".hidden.csv",
]


def files_under(folder: Path) -> set[Path]:
    return {p for p in folder.rglob("*") if p.is_file()}


def inside(path: Path, folder: Path) -> bool:
    return path.resolve().is_relative_to(folder.resolve())


@pytest.mark.parametrize("name", HOSTILE_NAMES, ids=lambda n: repr(n[:30]))
def test_upload_names_never_write_outside_the_uploads_folder(tmp_path, name):
    uploads = tmp_path / "ws" / "uploads"
    before = files_under(tmp_path)
    dest = save_upload(name, io.BytesIO(b"text,label\nhi,pos\n"), uploads)
    assert inside(dest, uploads) and dest.parent.resolve() == uploads.resolve()
    assert dest.read_bytes() == b"text,label\nhi,pos\n"
    assert files_under(tmp_path) - before == {dest}  # exactly one new file, and it is that one
    assert "/" not in dest.name and "\\" not in dest.name and ".." not in dest.name and "\x00" not in dest.name
    assert len(dest.name) <= 100


def test_two_uploads_of_the_same_name_do_not_overwrite_each_other(tmp_path):
    a = save_upload("../reviews.csv", io.BytesIO(b"a"), tmp_path)
    b = save_upload("../reviews.csv", io.BytesIO(b"b"), tmp_path)
    assert a != b and a.read_bytes() == b"a" and b.read_bytes() == b"b"


@pytest.mark.parametrize("name", HOSTILE_NAMES[:12], ids=lambda n: repr(n[:30]))
def test_dataset_names_stay_inside_the_store(tmp_path, name):
    """The 'Save as' field of the Datasets page goes through DatasetStore.save."""
    import datasets

    from core.data import DataError

    root = tmp_path / "ws" / "datasets"
    store = DatasetStore(root)
    try:
        ref = store.save(datasets.Dataset.from_dict({"text": ["a"], "label": [1]}), name, "test")
    except DataError as e:  # refusing a name is fine, as long as it says why
        assert "name" in str(e)
        assert not files_under(tmp_path)
        return
    assert inside(ref.path, root) and ref.path.parent.parent == root
    assert files_under(tmp_path) == files_under(root)
    assert ref.name == safe_name(name) and store.load(ref.name, ref.version)["train"]["text"] == ["a"]


@pytest.mark.parametrize("name", ["../../evil", "/tmp/evil", "a/b", "..", ".hidden", "", "x" * 65, "..\\evil"])
def test_trained_tokenizer_names_are_refused_before_anything_is_written(tmp_path, name):
    from core.settings import Settings
    from core.tokenizers.training import TrainConfig, TrainError, train

    settings = Settings(workspace=tmp_path / "ws")
    with pytest.raises(TrainError, match="name"):
        train(TrainConfig(name=name, vocab_size=50, min_frequency=1), ["a b c", "b c d"] * 5, settings=settings)
    assert not files_under(tmp_path)


# --------------------------------------------------------------------------- server settings
def test_streamlit_config_keeps_xsrf_protection_and_an_upload_limit():
    cfg = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text(encoding="utf-8"))
    server = cfg["server"]
    assert server["enableXsrfProtection"] is True
    assert isinstance(server["maxUploadSize"], int) and 0 < server["maxUploadSize"] <= 2048  # MB
    # XSRF protection needs CORS protection on too; Streamlit would silently override otherwise
    assert server.get("enableCORS", True) is True
    assert server.get("address") == "127.0.0.1"  # localhost unless someone opts in


def test_streamlit_reads_those_settings_from_the_project_config(monkeypatch):
    """What the server really uses, as Streamlit parses the file (not only what the file says)."""
    from streamlit import config

    monkeypatch.chdir(ROOT)
    config._config_options = None  # force a fresh parse of ./.streamlit/config.toml
    try:
        config.get_config_options(force_reparse=True)
        assert config.get_option("server.enableXsrfProtection") is True
        assert config.get_option("server.maxUploadSize") == tomllib.loads(
            (ROOT / ".streamlit" / "config.toml").read_text())["server"]["maxUploadSize"]
    finally:
        config._config_options = None


# --------------------------------------------------------------------------- raw HTML and eval
def _sinks(tree: ast.AST) -> list[ast.Call]:
    """Calls that send a string to the browser as HTML: st.html, components.html, unsafe_allow_html=True."""
    out = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        f = node.func
        if isinstance(f, ast.Attribute) and f.attr == "html":
            out.append(node)
        elif any(k.arg == "unsafe_allow_html" and not (isinstance(k.value, ast.Constant) and k.value.value is False)
                 for k in node.keywords):
            out.append(node)
    return out


def _interpolations_escaped(call: ast.Call, module: ast.Module) -> list[str]:
    """Names of f-string parts of the call's HTML argument that are not visibly escaped."""
    escapers = {"escape"} | {f.name for f in ast.walk(module) if isinstance(f, ast.FunctionDef)
                             and any(isinstance(c, ast.Attribute) and c.attr == "escape" for c in ast.walk(f))}
    bad = []
    for arg in call.args[:1]:
        for part in ast.walk(arg):
            if not isinstance(part, ast.FormattedValue):
                continue
            v = part.value
            called = v.func.attr if isinstance(v, ast.Call) and isinstance(v.func, ast.Attribute) else (
                v.func.id if isinstance(v, ast.Call) and isinstance(v.func, ast.Name) else None)
            if called in escapers or called == "join":
                continue
            if isinstance(v, (ast.Name, ast.Subscript, ast.BoolOp, ast.IfExp, ast.Constant, ast.Attribute)):
                # a variable built earlier (escaped pieces joined): the module must escape somewhere, and the
                # browser tests (tests/e2e/test_hardening.py) check what such pages really show
                continue
            bad.append(ast.unparse(v))
    return bad


def test_every_raw_html_sink_escapes_what_it_interpolates():
    files = sorted((ROOT / "pages").glob("*.py")) + sorted((ROOT / "components").glob("*.py"))
    sinks = 0
    for path in files:
        src = path.read_text(encoding="utf-8")
        tree = ast.parse(src)
        calls = _sinks(tree)
        if not calls:
            continue
        sinks += len(calls)
        assert "html.escape(" in src, f"{path.name} sends raw HTML but never calls html.escape"
        for call in calls:
            bad = _interpolations_escaped(call, tree)
            assert not bad, f"{path.name}:{call.lineno} puts {bad} into raw HTML without html.escape"
    assert sinks >= 1  # the tokenizer chips at least: the check must be looking at something


def test_no_eval_or_exec_anywhere_in_the_app():
    """User formulas go through core.expr's interpreter; nothing in the app calls eval / exec / compile."""
    for folder in ("core", "pages", "components"):
        for path in (ROOT / folder).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
                    assert node.func.id not in {"eval", "exec", "compile", "__import__"}, \
                        f"{path.relative_to(ROOT)}:{node.lineno} calls {node.func.id}"


def test_the_sink_check_catches_an_unescaped_interpolation():
    """The checker itself: a call interpolated raw is flagged, the same call escaped is not."""
    src = ("import html\nimport streamlit as st\n"
           "st.html(f'<b>{text.strip()}</b>')\n"
           "st.markdown(f'<i>{html.escape(text)}</i>', unsafe_allow_html=True)\n")
    tree = ast.parse(src)
    calls = _sinks(tree)
    assert [c.lineno for c in calls] == [3, 4]
    assert _interpolations_escaped(calls[0], tree) == ["text.strip()"]
    assert _interpolations_escaped(calls[1], tree) == []
