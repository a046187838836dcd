"""Auto-refreshing fragments that survive a full rerun racing their own timer."""
from __future__ import annotations

from collections.abc import Callable

import streamlit as st


def live_fragment(fn: Callable[[], None], run_every: float | None) -> None:
    """Draw `fn` as a fragment that reruns every `run_every` seconds, alone in its own container.

    Seen with Streamlit 1.67 on a busy server: when a widget's full rerun lands while the fragment's
    timer requests are queued, the full run can finish without drawing the fragment, which then
    draws right after. The browser has by then dropped the fragment's slot as stale, so the late
    delta points past the end of its parent ("Bad delta path index 3 (should be between [0, 2])")
    and the whole page goes blank. Alone in a container that every full run redraws, the fragment's
    slot is index 0 of that container, which is always valid.
    """
    with st.container():
        st.fragment(fn, run_every=run_every)()
