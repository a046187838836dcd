"""`import core` stays light: no streamlit, no torch, and fast."""
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

PROBE = """
import json, sys, time, importlib, pkgutil
t = time.perf_counter()
import core
elapsed = time.perf_counter() - t
mods = {"streamlit_after_core": "streamlit" in sys.modules, "torch_after_core": "torch" in sys.modules,
        "elapsed": elapsed}
# importing every core submodule must not pull streamlit either
import core as pkg
for m in pkgutil.walk_packages(pkg.__path__, "core."):
    if m.name.endswith("__main__"):
        continue
    importlib.import_module(m.name)
mods["streamlit_after_all"] = "streamlit" in sys.modules
print(json.dumps(mods))
"""


def test_core_never_imports_streamlit_and_is_fast():
    out = subprocess.run([sys.executable, "-c", PROBE], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    r = json.loads(out.stdout.strip().splitlines()[-1])
    assert r["streamlit_after_core"] is False
    assert r["torch_after_core"] is False
    assert r["streamlit_after_all"] is False
    assert r["elapsed"] < 2.0
