"""Storage health: backend, connection, backlog, oldest unsent, errors and counters."""

from __future__ import annotations

from typing import Any

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.reactive import reactive
from textual.widgets import Static

from filamentctl import display as fmt
from filamentctl.tui.widgets.text import set_text


class StoragePanel(Vertical):
    """Shows the ``status`` storage section (attribute ``state``)."""

    DEFAULT_CSS = """
    StoragePanel { height: auto; }
    StoragePanel > .line { height: 1; }
    """

    state: reactive[dict[str, Any] | None] = reactive(None, always_update=True)

    def compose(self) -> ComposeResult:
        yield Static(id="link", classes="line", markup=False)
        yield Static(id="backlog", classes="line", markup=False)
        yield Static(id="counts", classes="line", markup=False)
        yield Static(id="error", classes="line", markup=False)

    def on_mount(self) -> None:
        self.border_title = "Storage"
        self._show()

    def watch_state(self) -> None:
        self._show()

    def _show(self) -> None:
        if not self.is_mounted:
            return
        st = self.state or {}
        backend = str(st.get("backend") or fmt.DASH)
        if backend == "none":
            link = "none (history kept locally only)"
        else:
            link = f"{backend}: {'connected' if st.get('connected') else 'NOT connected'}"
        self.set_class(backend != "none" and st.get("connected") is False, "-failing")
        backlog = f"backlog {st.get('backlog', fmt.DASH)}"
        if st.get("oldest_unsent_age_s") is not None:
            backlog += f", oldest {fmt.age(st['oldest_unsent_age_s'])}"
        if st.get("next_retry_s") is not None:
            backlog += f", retry in {fmt.age(st['next_retry_s'])}"
        counts = (
            f"written {st.get('written', fmt.DASH)}  dropped {st.get('dropped', fmt.DASH)}"
            f"  rejected {st.get('rejected', fmt.DASH)}"
        )
        error = f"last error: {st['last_error']}" if st.get("last_error") else "no errors"
        set_text(self.query_one("#link", Static), link)
        set_text(self.query_one("#backlog", Static), backlog)
        set_text(self.query_one("#counts", Static), counts)
        set_text(self.query_one("#error", Static), error)
