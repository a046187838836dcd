"""Hub datasets: `datasets.load_dataset` for hub ids only, never for a path or a packaged builder.

`datasets.load_dataset("/etc")` would read a local folder before asking the hub, and `"csv"` names a
builder that reads local files: both would bypass the allow-list of `core.data.paths`.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING

from core.data.types import DataError

if TYPE_CHECKING:
    import datasets

_HUB_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,95}(/[A-Za-z0-9][A-Za-z0-9._-]{0,95})?$")
_BUILDERS = {"csv", "json", "text", "parquet", "arrow", "pandas", "sql", "xml", "generator", "imagefolder",
             "audiofolder", "videofolder", "webdataset", "cache", "spark", "folder_based_builder"}


def load_hub(spec: str) -> datasets.DatasetDict:
    """A hub dataset id through `datasets.load_dataset`; offline, a DataError saying so."""
    from core.assets import offline_message
    from core.settings import get_settings

    spec = (spec or "").strip()
    if not spec:
        raise DataError("no hub dataset id given (e.g. 'imdb' or 'owner/name')")
    # `datasets.load_dataset` reads a local path or a packaged builder before the hub: only hub ids pass
    if not _HUB_ID.match(spec) or spec.lower() in _BUILDERS or Path(spec).exists():
        raise DataError(f"{spec!r} is not a hub dataset id (like 'imdb' or 'owner/name'); "
                        "files on the server are loaded with 'Path on the server'")
    if get_settings().offline:
        raise DataError(offline_message(spec, "dataset").replace("a local dataset folder", "a file on the server"))
    import datasets

    try:
        data = datasets.load_dataset(spec)
    except Exception as e:  # the hub raises many types (network, auth, missing); all end as one message
        raise DataError(f"could not load {spec!r} from the hub: {type(e).__name__}: {e}") from None
    return data if isinstance(data, datasets.DatasetDict) else datasets.DatasetDict({"train": data})
