"""Text of user values with a size bound: `str()` in the language, and values quoted in messages.

Python's own `str([[0] * 10**7] * 10**7)` builds the whole text before anyone can check its length, and
`str(2 ** 99999)` raises ValueError (more than 4,300 digits); both are replaced here by a walk that stops
at a character budget and at the deadline.
"""
from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from typing import Any


class TooLong(Exception):
    """The text passed its character budget."""


def _pieces(value: Any, top: bool, tick: Callable[[], None], short: bool = False) -> Iterator[str]:
    kind = type(value)
    if kind is list or kind is tuple:
        tick()
        yield "[" if kind is list else "("
        for i, item in enumerate(value):
            if i:
                yield ", "
            yield from _pieces(item, False, tick, short)
        yield "," if kind is tuple and len(value) == 1 else ""
        yield "]" if kind is list else ")"
    elif kind is str:
        yield value if top else repr(value)
    elif kind is int and value.bit_length() > 160 and not top and short:
        yield f"<int of {value.bit_length():,} bits>"
    elif short and _is_tensor(value):
        yield f"<tensor of shape {tuple(value.shape)}>"
    else:
        yield str(value) if top else repr(value)  # past 4,300 digits Python raises ValueError: so does str()


def bounded_str(value: Any, limit: int, tick: Callable[[], None] = lambda: None) -> str:
    """`str(value)` as Python writes it, or TooLong once it passes `limit` characters; `tick` checks the time."""
    chunks, pieces, size = [], [], 0
    for piece in _pieces(value, True, tick):
        size += len(piece)
        if size > limit:
            raise TooLong(f"str() of more than {limit:,} characters")
        pieces.append(piece)
        if len(pieces) >= 1024:  # join as we go: 10**5 tiny strings would weigh 20x the text they make
            chunks.append("".join(pieces))
            pieces.clear()
    return "".join(chunks) + "".join(pieces)


def short_repr(value: Any, limit: int = 40) -> str:
    """A few characters naming a value for a message or a page; never raises, never walks far."""
    if type(value) is int and value.bit_length() > 160:
        return f"an integer of {value.bit_length():,} bits"
    if type(value) is str:
        return repr(value[: limit + 1])[: limit] + ("…" if len(value) > limit - 2 else "")
    if _is_tensor(value):
        return f"tensor of shape {tuple(value.shape)}"
    count = [0]

    def tick() -> None:
        count[0] += 1
        if count[0] > limit:
            raise TooLong

    out, size = [], 0
    try:
        for piece in _pieces(value, True, tick, short=True):
            out.append(piece)
            size += len(piece)
            if size > limit:
                break
    except TooLong:
        pass
    except Exception:  # a caller's object with a broken __repr__: name its type only
        return f"a {type(value).__name__}"
    text = "".join(out)
    return text if size <= limit and count[0] <= limit else text[:limit] + "…"


def _is_tensor(value: Any) -> bool:
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(value, torch.Tensor)
