"""Which text columns are codes, not numbers: the rule type inference keeps ("08123" stays text)."""
from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pyarrow as pa


def leading_zero(vals: pa.Array) -> bool:
    """Whether a value starts with a zero and another digit after an optional sign (`^[+-]?0\\d`: "08123"
    is a code, not a number). Read from the first three bytes of each value through the string array's own
    offsets with numpy: Arrow has no kernel for "the byte at position k", and its regex over every value
    costs ~10x; a first version took the least value and prefix tests, 11 % of a 61 MB load's time."""
    import numpy as np
    import pyarrow as pa

    if not (pa.types.is_string(vals.type) or pa.types.is_large_string(vals.type)):
        vals = vals.cast(pa.large_string())  # a string view, say: offsets and one data buffer from here on
    if vals.null_count:
        vals = vals.drop_null()
    n = len(vals)
    _, offsets, data = vals.buffers()[:3]
    if not n or data is None or not data.size:
        return False
    wide = pa.types.is_large_string(vals.type)
    ends = np.frombuffer(offsets, np.int64 if wide else np.int32)[vals.offset:vals.offset + n + 1]
    starts, lens = ends[:-1], np.diff(ends)
    b = np.frombuffer(data, np.uint8)

    def digit_at(at: np.ndarray) -> bool:
        d = b[at]
        return bool(((d >= 48) & (d <= 57)).any())

    two = lens >= 2  # "0" + a digit needs two bytes, a sign three
    s, n2 = starts[two], lens[two]
    first = b[s]
    if digit_at(s[first == 48] + 1):
        return True
    signed = ((first == 43) | (first == 45)) & (n2 >= 3)
    if not signed.any():
        return False
    s = s[signed]
    return digit_at(s[b[s + 1] == 48] + 2)
