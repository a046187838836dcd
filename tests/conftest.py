"""Shared test set-up: an isolated workspace, offline hub, few threads."""
import os
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "test-artifacts"

# one workspace for the whole test session (caches converted tokenizers between tests);
# tests that need isolation build their own Settings(workspace=tmp_path)
os.environ.setdefault("TORCHLAB_WORKSPACE", str(ARTIFACTS / "workspace"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRACKIO_DIR", str(ARTIFACTS / "trackio"))  # never the home folder's HF cache
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
