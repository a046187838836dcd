"""Data: files -> validated, memory-mapped `datasets.Dataset`, a versioned store, statistics, operations.

`types` (errors, the load report, limits) is imported by every other part and imports none of them;
`loading` and `formats` parse files under the caps of `limits`, `paths` confines server paths to
allowed folders, `store` keeps versions, `stats` browses, `ops` transforms, `exporting` writes files.
"""
from core.data.exporting import (
    CSV_NOTE,
    EXPORT_FORMATS,
    FORMULA_START,
    check_export,
    export,
    neutralise,
)
from core.data.formats import (
    load_jsonl,
    load_parquet,
    type_columns,
)
from core.data.hub import load_hub
from core.data.limits import BATCH_CELLS, Limits
from core.data.loading import (
    STAGING_MAX_AGE_S,
    import_file,
    import_server_file,
    load_file,
    load_file_report,
    save_upload,
)
from core.data.ops import (
    CAST_TYPES,
    KINDS,
    PRESETS,
    Op,
    apply,
    code,
    history_code,
)
from core.data.paths import allowed_dirs, server_path
from core.data.stats import (
    LABEL_NAMES,
    MAX_DISTINCT,
    PAGE_ROWS,
    SCAN_BATCH,
    ColumnStats,
    column_stats,
    guess_label_column,
    label_counts,
    load_tokenizer,
    page,
    row,
    search,
    text_columns,
    token_lengths,
    tokenizer_names,
)
from core.data.store import (
    SAMPLE_NAME,
    DatasetRef,
    DatasetStore,
    ref_dict,
    safe_name,
)
from core.data.types import (
    BATCH_ROWS,
    DELIMITERS,
    FORMATS,
    MAX_REPORTED_LINES,
    SNIFF_BYTES,
    DataError,
    LoadReport,
)

__all__ = [
    "BATCH_CELLS",
    "BATCH_ROWS",
    "CSV_NOTE",
    "EXPORT_FORMATS",
    "FORMULA_START",
    "Limits",
    "CAST_TYPES",
    "ColumnStats",
    "DELIMITERS",
    "DataError",
    "DatasetRef",
    "DatasetStore",
    "FORMATS",
    "KINDS",
    "LABEL_NAMES",
    "LoadReport",
    "MAX_DISTINCT",
    "MAX_REPORTED_LINES",
    "Op",
    "PAGE_ROWS",
    "PRESETS",
    "SAMPLE_NAME",
    "SCAN_BATCH",
    "SNIFF_BYTES",
    "STAGING_MAX_AGE_S",
    "allowed_dirs",
    "apply",
    "check_export",
    "code",
    "column_stats",
    "export",
    "guess_label_column",
    "history_code",
    "import_file",
    "import_server_file",
    "label_counts",
    "load_file",
    "load_file_report",
    "load_hub",
    "load_jsonl",
    "load_parquet",
    "load_tokenizer",
    "neutralise",
    "page",
    "ref_dict",
    "row",
    "safe_name",
    "save_upload",
    "search",
    "server_path",
    "text_columns",
    "token_lengths",
    "tokenizer_names",
    "type_columns",
]
