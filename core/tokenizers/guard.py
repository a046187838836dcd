"""The boundary with the Rust `tokenizers` library: names, crashes, values and time.

What the library does not protect against, handled once here for every caller:
- names: `trained:NAME` resolves, symlinks included, to a folder directly inside the tokenizers folder,
  and every file in it resolves inside that folder too (`trained_folder`);
- crashes: a Rust panic reaches Python as `pyo3_runtime.PanicException`, a `BaseException` that
  `except Exception` misses; `rust_errors` turns it, and the library's plain `Exception`s, into the
  caller's own error type with the library's message;
- values: `whole` checks a count is a real int (not a bool, not 2000.5, not 10**30) inside its range;
- time: `bounded` runs a call in a worker thread (the batch encoder releases the GIL) and refuses it
  at its budget. A Rust call can't be stopped, so the tokenizer that ran past its budget is refused
  from then on instead of being handed more text.
"""
from __future__ import annotations

import re
import threading
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

R = TypeVar("R")
# a trained tokenizer's folder name: no separators, no '..', no leading dot (dot-folders are half-written)
TRAINED_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$")
ENCODE_BUDGET_S = 10.0  # one compare / batch / vocabulary action
CORPUS_BUDGET_S = 60.0  # one tokenizer over a dataset column (at most 20,000 rows on the page)
MAX_FOLDER_ENTRIES = 200  # files looked at when checking a trained folder for links out of it
_SLOW: weakref.WeakSet = weakref.WeakSet()  # tokenizers whose call is still running past its budget


class TextError(ValueError):
    """Text the tokenizer views can't take; the message says what was wrong."""


def is_panic(e: BaseException) -> bool:
    """Whether `e` is pyo3's PanicException (its class lives in a module that can't be imported)."""
    return type(e).__name__ == "PanicException"


def first_line(e: BaseException, limit: int = 300) -> str:
    text = str(e).strip().splitlines()
    msg = text[0] if text else type(e).__name__
    return msg if len(msg) <= limit else msg[:limit] + "…"


@contextmanager
def rust_errors(error: type[Exception], what: str) -> Iterator[None]:
    """Re-raise whatever the library raises (panics included) as `error("what: reason")`.

    Streamlit's own control flow (rerun, stop) and KeyboardInterrupt pass through untouched.
    """
    try:
        yield
    except error:
        raise
    except Exception as e:  # tokenizers raises plain Exception for a bad file, a bad regex, a refused trainer
        raise error(f"{what}: {first_line(e)}") from None
    except BaseException as e:
        if is_panic(e):
            raise error(f"{what}: the Rust tokenizers library crashed ({first_line(e)})") from None
        raise


def refuse_if_slow(owner: object, error: type[Exception]) -> None:
    if owner is not None and owner in _SLOW:
        raise error("this tokenizer ran past its time budget earlier and may still be busy: it is refused "
                    "until the server restarts (its pre-tokenizer regex is probably catastrophic)")


def bounded(fn: Callable[[], R], *, error: type[Exception], what: str, budget_s: float,
            owner: object = None) -> R:
    """fn() within `budget_s` seconds, with library errors and panics as `error`.

    `owner` (the tokenizer) is remembered when the budget runs out, and refused from then on.
    """
    refuse_if_slow(owner, error)
    box: dict[str, object] = {}

    def run() -> None:
        try:
            box["value"] = fn()
        except BaseException as e:  # handed to the caller's thread below
            box["error"] = e

    worker = threading.Thread(target=run, name="tokenizer-call", daemon=True)
    worker.start()
    worker.join(budget_s)
    if worker.is_alive():
        if owner is not None:
            _SLOW.add(owner)
        raise error(f"{what}: the call ran past its {budget_s:g} s budget and was refused (a pre-tokenizer "
                    "regex that backtracks on this text, or simply too much text)")
    if "error" in box:
        with rust_errors(error, what):
            raise box["error"]  # type: ignore[misc]
    return box["value"]  # type: ignore[return-value]


def whole(value: object, label: str, low: int, high: int, error: type[Exception]) -> int:
    """`value` if it is an int (not a bool) in [low, high], else `error` naming `label` and the range."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise error(f"{label} must be a whole number from {low:,} to {high:,}, got {value!r} "
                    f"({type(value).__name__})")
    if not low <= value <= high:
        shown = f"{value:,}" if abs(value) < 10**15 else f"{value:.3g}"
        raise error(f"{label} must be from {low:,} to {high:,}, got {shown}")
    return value


def trained_folder(name: str, root: Path, error: type[Exception]) -> Path:
    """The folder of trained tokenizer `name`: directly inside `root`, after resolving every symlink.

    Refuses names with separators or '..', absolute paths, and folders (or files in them) that are
    links to somewhere outside `root`.
    """
    if not isinstance(name, str) or not TRAINED_NAME.fullmatch(name):
        raise error(f"trained tokenizer name {name!r}: names are 1-64 letters, digits, '_', '.' or '-', "
                    "starting with a letter or digit (no folders, no paths)")
    try:
        base = root.resolve()
        folder = (root / name).resolve()
        if folder.parent != base:
            raise error(f"trained tokenizer {name!r} points outside {root} (a link): refused")
        if folder.is_dir():
            for i, p in enumerate(folder.rglob("*")):  # rglob lists a linked folder but never walks into it
                if i >= MAX_FOLDER_ENTRIES:
                    raise error(f"trained tokenizer {name!r} has over {MAX_FOLDER_ENTRIES} files: "
                                "not a tokenizer folder")
                if not p.resolve().is_relative_to(folder):
                    raise error(f"trained tokenizer {name!r} has {p.name!r} linking outside {root}: refused")
    except (OSError, RuntimeError) as e:  # a link loop, a folder we may not read
        raise error(f"trained tokenizer {name!r} can't be read safely: {first_line(e)}") from None
    return folder
