"""Issue 18: the column typer's shortcuts (casts of untrimmed text, a probe of the first cells, prefix tests for
leading zeros) give the very types and values the plain rules give: trim, drop empties, regex, cast."""
from __future__ import annotations

import random

import pyarrow as pa
import pyarrow.compute as pc
import pytest

from core.data.formats import ColumnTyper, _leading_zero, _typed_column

TOKENS = ["1", "22", "-3", "+4", "0", "-0", "+0", "05", "-07", "+08", "0.5", "00.5", "-0.25", "1e3", "1E-2", "nan",
          "inf", "-inf", "true", "False", "TRUE", "x", "0x10", "1_000", "", " ", "  7", "8 ", "\t9\t", " 010 ",
          "\u00a011", "٣", "０", "1.5", "3.", ".5", "0e0", "0:", "0/", "+", "-", "--1", "1,5", "12a"]


def _reference(batches: list[pa.RecordBatch], names: list[str], first_only: bool) -> tuple[dict, dict, set]:
    """The typer's rules without shortcuts (as before issue 18's second round): candidates, seen, blank."""
    cands = {n: [pa.int64(), pa.float64(), pa.bool_()] for n in names}
    seen, blank = dict.fromkeys(names, False), set()
    for batch in batches:
        for name, arr in zip(names, batch.columns, strict=True):
            if not cands[name]:
                continue
            s = pc.utf8_trim_whitespace(arr)
            vals = pc.if_else(pc.equal(s, ""), None, s).drop_null()
            if not len(vals):
                continue
            seen[name] = True
            if pc.any(pc.match_substring_regex(vals, r"^[+-]?0\d")).as_py():
                cands[name] = []
                continue
            ok, todo = [], cands[name]
            for i, typ in enumerate(todo):
                try:
                    pc.cast(vals, typ)
                except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
                    continue
                ok.append(typ)
                if first_only:
                    ok += todo[i + 1:]
                    break
            cands[name] = ok
    return cands, seen, blank


def _column(rng: random.Random, kind: str, n: int) -> list[str]:
    if kind == "ints":
        return [str(rng.randrange(-10**6, 10**6)) for _ in range(n)]
    if kind == "floats":
        return [f"{rng.uniform(-5, 5):.3f}" for _ in range(n)]
    if kind == "small":  # values below 1: all start with "0." or "-0."
        return [f"{rng.random():.4f}" for _ in range(n)]
    return [rng.choice(TOKENS) for _ in range(n)]


@pytest.mark.parametrize("first_only", [True, False])
def test_typer_equals_the_plain_rules_on_random_columns(first_only):
    rng = random.Random(7)
    for trial in range(60):
        names = [f"c{i}" for i in range(5)]
        kinds = [rng.choice(["ints", "floats", "small", "mixed"]) for _ in names]
        batches = []
        for _ in range(rng.randint(1, 4)):
            n = rng.choice([1, 3, 70, 300])
            cols = [_column(rng, k, n) for k in kinds]
            for col in cols:  # now and then one odd cell deep in a clean column
                if rng.random() < 0.3:
                    col[rng.randrange(n)] = rng.choice(TOKENS)
            batches.append(pa.record_batch([pa.array(c, pa.string()) for c in cols], names=names))
        typer = ColumnTyper(names, True, first_only=first_only)
        for b in batches:
            typer.see(b)
        cands, seen, _ = _reference(batches, names, first_only)
        assert typer.candidates == cands, (trial, kinds)
        assert typer.seen == seen
        types = typer.types()
        # the typed columns equal the cast of the trimmed text, empties as nulls (with first_only a type that
        # changes between batches sends the reader back to read all as text: only the last batch's type holds)
        for b in batches if not first_only else ():
            for name, arr in zip(names, b.columns, strict=True):
                if name in types:
                    s = pc.utf8_trim_whitespace(arr)
                    want = pc.cast(pc.if_else(pc.equal(s, ""), None, s), types[name])
                    for spaced in (True, False):
                        got = _typed_column(arr, types[name], spaced)  # (reprs: NaN equals NaN)
                        assert got.type == want.type and list(map(repr, got.to_pylist())) == \
                            list(map(repr, want.to_pylist()))


def test_the_last_batch_typed_in_one_pass_equals_the_trimmed_cast():
    names = ["n", "f", "t"]
    typer = ColumnTyper(names, True, first_only=True)
    b = pa.record_batch([pa.array([str(i) for i in range(500)]), pa.array([f"{i / 7:.3f}" for i in range(500)]),
                         pa.array(["x"] * 500)], names=names)
    typer.see(b)
    assert typer.types() == {"n": pa.int64(), "f": pa.float64()}
    assert typer.last["n"].equals(pa.array(range(500), pa.int64())) and "t" not in typer.last
    spaced = pa.record_batch([pa.array([" 1", "", "3"]), pa.array(["1.5", "2", " "]), pa.array(["a", "b", "c"])],
                             names=names)
    typer.see(spaced)
    assert typer.types() == {"n": pa.int64(), "f": pa.float64()} and {"n", "f"} <= typer.spaced
    assert typer.typed(spaced, pa.schema([("n", pa.int64()), ("f", pa.float64())])).to_pydict() == \
        {"n": [1, None, 3], "f": [1.5, 2.0, None]}


@pytest.mark.parametrize("vals, zero", [
    (["1", "2"], False), (["05"], True), (["0"], False), (["0.5", "0e1", "0x1"], False), (["-07"], True),
    (["+00"], True), (["-0", "+0.5"], False), (["0٣"], False), (["١", "09"], True), (["a", " 08"], False),
])
def test_leading_zero_is_the_regex(vals, zero):
    arr = pa.array(vals)
    assert _leading_zero(arr) is zero
    assert zero is bool(pc.any(pc.match_substring_regex(arr, r"^[+-]?0\d")).as_py())


def test_leading_zero_equals_the_regex_on_random_text():
    rng = random.Random(3)
    alphabet = "0123456789+-.eE x\t٣:/"
    for _ in range(3000):
        arr = pa.array(["".join(rng.choice(alphabet) for _ in range(rng.randint(0, 4)))
                        for _ in range(rng.randint(1, 5))])
        assert _leading_zero(arr) == bool(pc.any(pc.match_substring_regex(arr, r"^[+-]?0\d")).as_py())


def test_leading_zero_reads_slices_nulls_and_large_strings_as_the_regex():
    """The byte test reads the array's offsets: a slice (non-zero offset), nulls, large and view strings."""
    rng = random.Random(5)
    alphabet = "0123456789+-.e x٣"
    for _ in range(500):
        vals = [None if rng.random() < 0.2 else "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 4)))
                for _ in range(rng.randint(1, 9))]
        start = rng.randint(0, len(vals) - 1)
        for typ in (pa.string(), pa.large_string(), pa.string_view()):
            arr = pa.array(vals, typ).slice(start)
            want = bool(pc.any(pc.match_substring_regex(arr.cast(pa.string()), r"^[+-]?0\d")).as_py() or False)
            assert _leading_zero(arr) is want, (vals[start:], typ)
