"""Start a run from a launch form: one click queues exactly one run, and what Start said stays said.

Both launch pages (Fine-tuning, Build a network) use it. The action runs in the button's on_click, before
the rerun the click causes, reading the widgets' current values (arguments bound at the last draw could lag
behind them). Its message is kept, not popped: a rerun right after the click (a run that finished at once,
the runs panel following a new run) must not swallow it. A success stays; a refusal shows only while the
form still holds what was refused.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import streamlit as st

from core.training import ConfigError, TrainingConfig

# the form read from session state: the config it describes, and a problem found before the config's own
# checks (an impossible layer list), or None
ReadForm = Callable[[Any], tuple[TrainingConfig, ConfigError | None]]
SELECTED_KEY = "ft_selected"  # the run the Runs panels open


def _form_key(config: TrainingConfig, problem: ConfigError | None) -> str:
    return config.to_json() + (f"|{problem.field}: {problem.message}" if problem else "")


def _start(jobs: Any, read_form: ReadForm, flash_key: str, success: str) -> None:
    config, problem = read_form(st.session_state)
    try:
        if problem:
            raise problem
        run_id = jobs.submit(config)
        st.session_state[SELECTED_KEY] = run_id
        st.session_state[flash_key] = ("success", success.format(run_id=run_id), None)
    except ConfigError as e:
        st.session_state[flash_key] = ("error", f"**{e.field}**: {e.message}", _form_key(config, problem))


def start_button(jobs: Any, read_form: ReadForm, *, key: str, flash_key: str, success: str,
                 container: Any = None, disabled: bool = False) -> None:
    """The Start button (in `container`, default the page) and, below it in the page, what Start last said.

    `success` is formatted with the new run's `run_id`."""
    (container or st).button("Start training", type="primary", key=key, on_click=_start,
                             args=(jobs, read_form, flash_key, success), disabled=disabled)
    flash = st.session_state.get(flash_key)
    if flash and flash[0] == "success":
        st.success(flash[1])
    elif flash and flash[2] == _form_key(*read_form(st.session_state)):
        st.error(flash[1])
