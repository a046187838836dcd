"""Which server files "Path on the server" may read: only those inside allow-listed folders.

The folders are `<workspace>/imports` and those of `TORCHLAB_DATA_DIRS` (separated by os.pathsep).
A typed path is resolved first (symlinks followed, `..` collapsed) and checked after, so a link
inside an allowed folder that points out of it is refused like the target itself. A refused path
is never opened or statted past resolving it, and the message is the same whether it exists or
not: nothing about a file outside the folders — not its content, not its existence — reaches a user.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from core.data.types import DataError

if TYPE_CHECKING:
    from core.settings import Settings


def allowed_dirs(settings: Settings | None = None) -> list[Path]:
    """The folders server paths may point into, resolved: `<workspace>/imports` first, then TORCHLAB_DATA_DIRS."""
    from core.settings import get_settings

    s = settings or get_settings()
    raw = [s.workspace / "imports", *(Path(p) for p in s.data_dirs.split(os.pathsep) if p.strip())]
    out: list[Path] = []
    for p in raw:
        real = Path(os.path.realpath(p.expanduser()))
        if real not in out:
            out.append(real)
    return out


def resolve_inside(text: str, roots: list[Path]) -> tuple[Path, Path | None]:
    """(the real path `text` names, the allowed folder it lies in or None). A relative path is looked up in each
    folder in turn (a link counts: where it leads is what is checked); links are resolved before the check."""
    typed = Path(text)
    if typed.is_absolute():
        candidate = typed
    else:  # the first allowed folder that holds the name
        candidate = next((r / typed for r in roots if os.path.lexists(r / typed)), roots[0] / typed)
    real = Path(os.path.realpath(candidate))  # symlinks resolved before the check, never after
    return real, next((r for r in roots if real == r or real.is_relative_to(r)), None)


def server_path(raw: str, settings: Settings | None = None) -> Path:
    """The real path of a regular file inside an allowed folder, or DataError.

    A relative path is looked up in each allowed folder in turn.
    """
    text = (raw or "").strip()
    if not text:
        raise DataError("type the path of a file on the server")
    if "\x00" in text or len(text) > 4096:
        raise DataError("that is not a usable file path")
    roots = allowed_dirs(settings)
    real, root = resolve_inside(text, roots)
    if root is None:
        raise DataError(f"{text!r} is outside the folders the server may read ({_show(roots)}); copy the file "
                        "into one of them, or have the server's admin add its folder to TORCHLAB_DATA_DIRS")
    if real.is_file():
        return real
    what = "is a folder, not a file" if real.is_dir() else "is not a regular file" if real.exists() else \
        "does not exist"
    where = root if Path(text).is_absolute() else _show(roots)
    raise DataError(f"{text!r} {what} in {where}")


def _show(roots: list[Path]) -> str:
    return ", ".join(str(r) for r in roots)
