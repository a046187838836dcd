"""Shaping a saved dataset with `datasets` operations, each recorded as the code that does the same.

An operation is plain data (`Op(kind, args)`) so the page can keep a list of them in session state
and the history can be saved with the new version. `apply` runs one on every split of a
DatasetDict; `code` gives the equivalent `datasets` call. Results are written to files in the
workspace's scratch folder, never into a saved version's folder. Exporting is `core.data.exporting`.
"""
from __future__ import annotations

import ast
import html
import re
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core.data.types import DataError

if TYPE_CHECKING:
    import datasets

PRESETS = ("lowercase", "strip_html", "collapse_whitespace", "truncate")
CAST_TYPES = ("string", "int64", "float64", "bool")
KINDS = ("select_columns", "select_rows", "filter", "map", "shuffle", "split", "concat", "rename", "cast",
         "class_label", "drop_duplicates", "drop_empty")
_TAG = re.compile(r"<[^>]+>")


@dataclass
class Op:
    """One shaping step: its kind (one of KINDS) and arguments."""

    kind: str
    args: dict[str, Any] = field(default_factory=dict)


def _preset(name: str, n: int) -> tuple[Callable[[str], str], str]:
    """(function on one string, the same as a Python expression over `s`)."""
    if name == "lowercase":
        return str.lower, "s.lower()"
    if name == "strip_html":
        return (lambda s: html.unescape(_TAG.sub(" ", s))), 'html.unescape(re.sub(r"<[^>]+>", " ", s))'
    if name == "collapse_whitespace":
        return (lambda s: " ".join(s.split())), '" ".join(s.split())'
    if name == "truncate":
        return (lambda s: s[:n]), f"s[:{n}]"
    raise DataError(f"unknown text preset {name!r}; presets: {', '.join(PRESETS)}")


def python_formula(formula: str) -> str:
    """A filter formula as plain Python over a row dict `r` (`len(text) > 5` -> `len(r['text']) > 5`).

    The safe language is a subset of Python expressions (no lambdas, comprehensions or walrus): every
    name that is not a builtin it admits, `torch` or a constant is a column of the row.
    """
    from core.expr import BUILTINS

    class Columns(ast.NodeTransformer):
        def visit_Name(self, node: ast.Name) -> ast.AST:
            if node.id in BUILTINS or node.id == "torch":
                return node
            return ast.copy_location(ast.Subscript(ast.Name("r", ast.Load()), ast.Constant(node.id), ast.Load()),
                                     node)

    try:
        tree = ast.parse(formula.strip(), mode="eval")
    except SyntaxError as e:
        raise DataError(f"filter formula: {e.msg}") from None
    return ast.unparse(ast.fix_missing_locations(Columns().visit(tree)))


def _data_path(store: Any, name: str, version: int | None) -> str:
    if store is None:
        return f"{name}/v{version}/data"  # relative to the dataset store's folder
    return str((store.ref(name, version).path / "data").resolve())


def code(op: Op, store: Any = None) -> str:
    """Plain `datasets` code that does what `apply(…, op)` does (on a DatasetDict `ds`); it needs nothing
    of Torch Lab (`store` turns a concatenated dataset's name into its folder)."""
    a = op.args
    if op.kind == "select_columns":
        return f"ds = ds.select_columns({a['columns']!r})"
    if op.kind == "select_rows":
        return (f"ds = DatasetDict({{k: d.select(range(min({a['start']}, len(d)), min({a['stop']}, len(d)))) "
                "for k, d in ds.items()})")
    if op.kind == "filter":
        return f"ds = ds.filter(lambda r: bool({python_formula(a['formula'])}))  # {' '.join(a['formula'].split())}"
    if op.kind == "map":
        _, expr = _preset(a["preset"], int(a.get("n", 0)))
        cols = a["columns"]
        body = ", ".join(f"{c!r}: [None if s is None else {expr} for s in b[{c!r}]]" for c in cols)
        return f"ds = ds.map(lambda b: {{{body}}}, batched=True)"
    if op.kind == "shuffle":
        return f"ds = ds.shuffle(seed={a['seed']})"
    if op.kind == "split":
        strat = f", stratify_by_column={a['stratify']!r}" if a.get("stratify") else ""
        src, new, size = a["split"], a.get("test_name", "test"), float(a["test_size"])
        return (f"parts = ds[{src!r}].train_test_split(test_size={int(size) if size >= 1 else size}, "
                f"seed={a['seed']}{strat})\n"
                f"order = [k for k in ds if k != {new!r}]\norder.insert(order.index({src!r}) + 1, {new!r})"
                f"  # the new split right after its source\n"
                f"ds[{src!r}], ds[{new!r}] = parts['train'], parts['test']\n"
                "ds = DatasetDict({k: ds[k] for k in order})")
    if op.kind == "concat":
        return (f"other = load_from_disk({_data_path(store, a['name'], a.get('version'))!r})"
                f"  # {a['name']} v{a.get('version')}\n"
                "ds = DatasetDict({k: concatenate_datasets([d, other[k]]) if k in other else d for k, d in ds.items()})")
    if op.kind == "rename":
        return f"ds = ds.rename_column({a['old']!r}, {a['new']!r})"
    if op.kind == "cast":
        return f"ds = ds.cast_column({a['column']!r}, Value({a['dtype']!r}))"
    if op.kind == "class_label":
        c = a["column"]  # one set of names over all splits, so the ids agree between them
        return (f"names = sorted({{str(v) for d in ds.values() for v in d.unique({c!r}) if v is not None}})\n"
                f"ds = ds.cast_column({c!r}, Value('string')).cast_column({c!r}, ClassLabel(names=names))")
    if op.kind == "drop_duplicates":
        return ("def first_seen():  # one memory per split\n"
                "    seen = set()\n"
                "    return lambda r: (k := repr(tuple(r.values()))) not in seen and not seen.add(k)\n"
                "ds = DatasetDict({k: d.filter(first_seen()) for k, d in ds.items()})")
    if op.kind == "drop_empty":
        return ("ds = ds.filter(lambda r: any(v is not None and (not isinstance(v, str) or v.strip()) "
                "for v in r.values()))")
    raise DataError(f"unknown operation {op.kind!r}; operations: {', '.join(KINDS)}")


def apply(dd: datasets.DatasetDict, op: Op, scratch: Path | None = None, store: Any = None
          ) -> datasets.DatasetDict:
    """Run `op` on every split of `dd` and return the new DatasetDict; bad arguments raise DataError."""
    import datasets

    code(op)  # refuses unknown kinds and presets before any work
    scratch = scratch or _scratch()
    a = op.args
    first = next(iter(dd.values()))
    cols = first.column_names

    def need(*names: str) -> None:
        for n in names:
            if n not in cols:
                raise DataError(f"no column {n!r}; columns: {', '.join(cols)}")

    def each(fn: Callable[[datasets.Dataset], datasets.Dataset]) -> datasets.DatasetDict:
        return datasets.DatasetDict({k: fn(d) for k, d in dd.items()})

    def cache() -> str:
        return str(scratch / f"op-{uuid.uuid4().hex}.arrow")

    try:
        if op.kind == "select_columns":
            if not a["columns"]:
                raise DataError("select at least one column")
            need(*a["columns"])
            return dd.select_columns(list(a["columns"]))
        if op.kind == "select_rows":
            start, stop = int(a["start"]), int(a["stop"])
            if start < 0 or stop <= start:
                raise DataError(f"row range {start}–{stop} is empty: start must be ≥ 0 and below stop")
            return each(lambda d: d.select(range(min(start, len(d)), min(stop, len(d))),
                                           indices_cache_file_name=cache()))
        if op.kind == "filter":
            return _filter(dd, a["formula"], cache)
        if op.kind == "map":
            need(*a["columns"])
            fn, _ = _preset(a["preset"], int(a.get("n", 0)))
            if a["preset"] == "truncate" and int(a.get("n", 0)) <= 0:
                raise DataError("truncate needs a positive number of characters")
            for c in a["columns"]:
                if first.features[c] != datasets.Value("string"):
                    raise DataError(f"column {c!r} is {first.features[c]}, not text: text presets need strings")

            def batch_fn(b: dict) -> dict:
                return {c: [None if s is None else fn(s) for s in b[c]] for c in a["columns"]}

            return each(lambda d: d.map(batch_fn, batched=True, cache_file_name=cache()))
        if op.kind == "shuffle":
            return each(lambda d: d.shuffle(seed=int(a["seed"]), indices_cache_file_name=cache()))
        if op.kind == "split":
            return _split(dd, a, cache)
        if op.kind == "concat":
            return _concat(dd, store.load(a["name"], a.get("version")))
        if op.kind == "rename":
            need(a["old"])
            new = str(a["new"]).strip()
            if not new or new in cols:
                raise DataError(f"new name {new!r} is empty or already a column")
            return dd.rename_column(a["old"], new)
        if op.kind == "cast":
            need(a["column"])
            if a["dtype"] not in CAST_TYPES:
                raise DataError(f"cast to one of {', '.join(CAST_TYPES)}, not {a['dtype']!r}")
            return each(lambda d: _cast(d, a["column"], datasets.Value(a["dtype"]), cache()))
        if op.kind == "class_label":
            need(a["column"])
            return _class_label(dd, a["column"], cache)
        if op.kind == "drop_duplicates":
            return each(lambda d: d.filter(_first_seen(), batched=True, cache_file_name=cache()))
        if op.kind == "drop_empty":
            return each(lambda d: d.filter(_not_empty, batched=True, cache_file_name=cache()))
    except DataError:
        raise
    except Exception as e:  # the boundary: a cast that does not fit, a nested column Arrow can't compare, …
        raise DataError(f"{op.kind} failed: {type(e).__name__}: {str(e)[:300]}") from None
    raise DataError(f"unknown operation {op.kind!r}")


def _cast(d: datasets.Dataset, column: str, feature: Any, cache_file: str) -> datasets.Dataset:
    features = d.features.copy()
    features[column] = feature
    return d.cast(features, cache_file_name=cache_file)


def _filter(dd: datasets.DatasetDict, formula: str, cache: Callable[[], str]) -> datasets.DatasetDict:
    """Keep rows where the safe-expression `formula` is true (core.expr: never Python eval)."""
    import datasets

    from core.expr import ExpressionError, compile_expression

    try:
        f = compile_expression(formula)
    except ExpressionError as e:
        raise DataError(f"filter formula: {e}") from None
    offset = [0]

    def keep(b: dict) -> list[bool]:
        keys = list(b)
        out = []
        for i, values in enumerate(zip(*b.values(), strict=True)):
            try:
                out.append(bool(f(dict(zip(keys, values, strict=True)))))
            except (ExpressionError, TypeError, ValueError, ArithmeticError) as e:
                raise DataError(f"filter formula failed on row {offset[0] + i}: {e}") from None
        offset[0] += len(out)
        return out

    result = {}
    for k, d in dd.items():
        offset[0] = 0
        result[k] = d.filter(keep, batched=True, cache_file_name=cache())
    return datasets.DatasetDict(result)


def _split(dd: datasets.DatasetDict, a: dict, cache: Callable[[], str]) -> datasets.DatasetDict:
    import datasets

    src, test_name = a.get("split", "train"), a.get("test_name", "test")
    if src not in dd:
        raise DataError(f"no split {src!r} to divide; splits: {', '.join(dd)}")
    if test_name in dd and test_name != src:
        raise DataError(f"there is already a {test_name!r} split: name the new one 'validation'")
    size = float(a["test_size"])
    strat = a.get("stratify") or None
    if strat and not isinstance(dd[src].features.get(strat), datasets.ClassLabel):
        raise DataError(f"stratifying needs {strat!r} to be a ClassLabel: encode it as class labels first")
    parts = dd[src].train_test_split(test_size=int(size) if size >= 1 else size, seed=int(a["seed"]),
                                     stratify_by_column=strat, train_indices_cache_file_name=cache(),
                                     test_indices_cache_file_name=cache())
    out = {}
    for k, d in dd.items():  # keep the split order, the new split right after its source
        if k == src:
            out[src], out[test_name] = parts["train"], parts["test"]
        else:
            out[k] = d
    return datasets.DatasetDict(out)


def _concat(dd: datasets.DatasetDict, other: datasets.DatasetDict) -> datasets.DatasetDict:
    """Append `other` split by split; the columns must be the same (types are cast where they differ)."""
    import datasets

    mine, theirs = next(iter(dd.values())).column_names, next(iter(other.values())).column_names
    if sorted(mine) != sorted(theirs):
        raise DataError(f"the columns differ: only here {sorted(set(mine) - set(theirs))}, "
                        f"only there {sorted(set(theirs) - set(mine))}")
    out = {}
    for k, d in dd.items():
        if k not in other:
            out[k] = d
            continue
        o = other[k].select_columns(mine)
        if o.features != d.features:
            o = o.cast(d.features)
        out[k] = datasets.concatenate_datasets([d, o])
    return datasets.DatasetDict(out)


def _class_label(dd: datasets.DatasetDict, column: str, cache: Callable[[], str]) -> datasets.DatasetDict:
    """Like `class_encode_column`, with one set of names over all splits (so ids agree between them)."""
    import datasets

    names: set[str] = set()
    for d in dd.values():
        names.update(str(v) for v in d.unique(column) if v is not None)
    label = datasets.ClassLabel(names=sorted(names))
    out = {}
    for k, d in dd.items():
        if d.features[column] != datasets.Value("string"):
            d = _cast(d, column, datasets.Value("string"), cache())
        out[k] = _cast(d, column, label, cache())
    return datasets.DatasetDict(out)


def _first_seen() -> Callable[[dict], list[bool]]:
    seen: set[str] = set()

    def keep(b: dict) -> list[bool]:
        out = []
        for row in zip(*b.values(), strict=True):
            key = repr(row)
            out.append(key not in seen)
            seen.add(key)
        return out

    return keep


def _not_empty(b: dict) -> list[bool]:
    return [any(v is not None and (not isinstance(v, str) or v.strip()) for v in row) for row in zip(*b.values(), strict=True)]


def history_code(path: str | Path, ops: list[Op], store: Any = None, title: str = "") -> str:
    """A script for a plain Python with only `datasets` installed: load the saved version at `path`
    (its `data` folder), then every operation's code; `ds` is the result."""
    body = [code(op, store) for op in ops]
    lines = (["import html", "import re", ""] if any("html." in b for b in body) else []) + [
        "from datasets import (ClassLabel, DatasetDict, Value, concatenate_datasets, disable_caching,",
        "                      load_from_disk)", "",
        "disable_caching()  # results go to a temporary folder, never into the saved version",
        f"ds = load_from_disk({str(path)!r})" + (f"  # {title}" if title else "")]
    if any("torch." in b for b in body):
        lines.insert(0, "import torch")
    return "\n".join(lines + body)


def _scratch() -> Path:
    """The workspace folder for operation results; files a day old are swept."""
    from core.settings import get_settings

    folder = get_settings().workspace / "cache" / "ops"
    folder.mkdir(parents=True, exist_ok=True)
    now = time.time()
    for p in folder.glob("op-*.arrow"):
        try:
            if now - p.stat().st_mtime > 24 * 3600:
                p.unlink()
        except OSError:
            pass
    return folder
