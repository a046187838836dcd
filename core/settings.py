"""Settings read once from environment variables, with defaults that run offline on CPU."""
from __future__ import annotations

import os
from dataclasses import dataclass, field, fields
from functools import lru_cache
from pathlib import Path

_PREFIX = "TORCHLAB_"


def _env_bool(value: str) -> bool:
    v = value.strip().lower()
    if v in {"1", "true", "yes", "on"}:
        return True
    if v in {"0", "false", "no", "off", ""}:
        return False
    raise ValueError(f"expected a boolean (1/0, true/false), got {value!r}")


@dataclass(frozen=True)
class Settings:
    """Every knob of Torch Lab; each field `x` is read from env var `TORCHLAB_X`."""

    # folder holding the run store, saved datasets, trained tokenizers and checkpoints
    workspace: Path = field(default_factory=lambda: Path("workspace"))
    # "auto" picks cuda when available, else cpu; or force "cpu", "cuda", "cuda:1", "mps"
    device: str = "auto"
    # never reach the Hugging Face hub; a hub id gets a clear message instead of a download
    offline: bool = True
    # largest file the browser may upload, in MB (Streamlit's server.maxUploadSize)
    max_upload_mb: int = 200
    # largest single cell accepted when loading a dataset, in bytes
    max_cell_bytes: int = 1_000_000
    # folders "Path on the server" may read, separated by os.pathsep; "" = only <workspace>/imports
    data_dirs: str = ""
    # most columns a loaded file may have (each nested field counts as one)
    max_columns: int = 4_096
    # most rows a loaded file may have (in a text file: lines, blank ones included)
    max_rows: int = 10_000_000
    # largest row (a CSV record, a JSON line, a Parquet row) when loading, in bytes
    max_row_bytes: int = 8_000_000
    # deepest nesting of JSON Lines / Parquet values
    max_nesting: int = 32
    # largest dataset after decompression (the Arrow data written to disk), in MB
    max_dataset_mb: int = 2_048
    # wall-clock budget for loading one file, in seconds (a 1 GB CSV takes about 130 s on 2 cores)
    load_timeout_s: float = 600.0
    # SQL console (DuckDB): time limit for one query, its memory limit in MB (spills to disk past it), threads
    sql_timeout_s: float = 30.0
    sql_memory_mb: int = 1_024
    sql_threads: int = 2
    # largest tensor the expression language may create, in elements
    max_tensor_elements: int = 10_000_000
    # largest total bytes a program may hold at once: tensor storages (each once, including what autograd
    # saves and what the step history keeps), tensor objects, and the Python values it makes
    max_total_bytes: int = 512 * 1024 * 1024
    # most items a program's lists and tuples may hold, counting a shared sublist each time it appears
    max_container_items: int = 1_000_000
    # largest formula / program, in characters
    max_expr_chars: int = 5_000
    # deepest nesting of a formula's syntax tree
    max_expr_depth: int = 40
    # most statements in one program
    max_statements: int = 100
    # wall-clock budget for one program, in seconds
    expr_timeout_s: float = 5.0
    # largest text pasted into the tokenizer / NLP pages, in characters
    max_text_chars: int = 200_000
    # training jobs that may run at once on CPU (on a GPU: one per device)
    cpu_concurrency: int = 1
    # how often the live training view redraws, in seconds
    poll_interval_s: float = 1.0

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> Settings:
        """Build settings from `environ` (default os.environ); bad values name the variable."""
        env = os.environ if environ is None else environ
        values = {}
        for f in fields(cls):
            key = _PREFIX + f.name.upper()
            if key not in env:
                continue
            raw = env[key]
            kind = f.type if isinstance(f.type, str) else f.type.__name__
            try:
                if kind == "Path":
                    values[f.name] = Path(raw).expanduser()
                elif kind == "bool":
                    values[f.name] = _env_bool(raw)
                elif kind == "int":
                    values[f.name] = int(raw.replace("_", ""))
                elif kind == "float":
                    values[f.name] = float(raw)
                else:
                    values[f.name] = raw
            except ValueError as e:
                raise ValueError(f"{key}={raw!r}: {e}") from None
        # the hub's own switch also counts as offline
        if _PREFIX + "OFFLINE" not in env and env.get("HF_HUB_OFFLINE", "") == "1":
            values["offline"] = True
        s = cls(**values)
        s.validate()
        return s

    def validate(self) -> None:
        """Refuse impossible values, naming the variable."""
        for f in fields(self):
            v = getattr(self, f.name)
            if isinstance(v, (int, float)) and not isinstance(v, bool) and v <= 0:
                raise ValueError(f"{_PREFIX}{f.name.upper()} must be positive, got {v}")
        if self.device != "auto" and self.device.split(":")[0] not in {"cpu", "cuda", "mps"}:
            raise ValueError(f"{_PREFIX}DEVICE must be auto, cpu, cuda[:N] or mps, got {self.device!r}")

    def env_name(self, field_name: str) -> str:
        """The environment variable that sets `field_name` (for 'how to raise this cap' messages)."""
        return _PREFIX + field_name.upper()

    # --- folders inside the workspace ---
    @property
    def runs_db(self) -> Path:
        return self.workspace / "runs.sqlite"

    @property
    def datasets_dir(self) -> Path:
        return self.workspace / "datasets"

    @property
    def tokenizers_dir(self) -> Path:
        return self.workspace / "tokenizers"

    @property
    def checkpoints_dir(self) -> Path:
        return self.workspace / "runs"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings (read once)."""
    return Settings.from_env()


def resolve_device(setting: str = "auto") -> str:
    """Turn the device setting into a concrete torch device string."""
    import torch

    if setting == "auto":
        if torch.cuda.is_available():
            return "cuda"
        return "cpu"
    if setting.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"{_PREFIX}DEVICE={setting!r} but CUDA is not available on this machine")
    return setting
