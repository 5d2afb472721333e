"""Large live readings with their age; marked stale when old or when the service is gone."""

from __future__ import annotations

from typing import Any

from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.reactive import reactive
from textual.widgets import Digits, Static

from filamentctl import display as fmt
from filamentctl.tui.widgets.text import set_text


class ReadingsPanel(Vertical):
    """Temperature and humidity in big digits, derived values below, then the age.

    Attributes set by the app: ``reading`` (the protocol's reading object or None), ``age_s``
    and ``stale``. Stale values stay visible but dimmed and labelled, so the last known state is
    still readable without colour.
    """

    DEFAULT_CSS = """
    ReadingsPanel { height: auto; }
    ReadingsPanel > .big { height: 3; }
    ReadingsPanel Digits { width: auto; }
    ReadingsPanel .unit { width: auto; padding: 1 2 0 0; }
    ReadingsPanel .line { height: 1; }
    """

    reading: reactive[dict[str, Any] | None] = reactive(None, always_update=True)
    age_s: reactive[float | None] = reactive(None)
    stale: reactive[bool] = reactive(False)

    def compose(self) -> ComposeResult:
        with Horizontal(classes="big"):
            yield Digits(fmt.DASH, id="temperature")
            yield Static("°C", classes="unit", markup=False)
            yield Digits(fmt.DASH, id="humidity")
            yield Static("%RH", classes="unit", markup=False)
        yield Static(id="secondary", classes="line", markup=False)
        yield Static(id="derived", classes="line", markup=False)
        yield Static(id="age", classes="line", markup=False)

    def on_mount(self) -> None:
        self.border_title = "Box"
        self._show()

    def watch_reading(self) -> None:
        self._show()

    def watch_age_s(self) -> None:
        self._show_age()

    def watch_stale(self, stale: bool) -> None:
        self.set_class(stale, "-stale")
        self._show_age()

    def _show(self) -> None:
        if not self.is_mounted:
            return
        r = self.reading or {}
        set_text(self.query_one("#temperature", Digits), fmt.num(r.get("temperature_c")))
        set_text(self.query_one("#humidity", Digits), fmt.num(r.get("humidity")))
        set_text(
            self.query_one("#secondary", Static),
            f"{fmt.num(r.get('temperature_f'), 1, ' °F')}   "
            f"dew point {fmt.num(r.get('dew_point_c'), 1, ' °C')}",
        )
        derived = f"absolute {fmt.num(r.get('absolute_humidity_g_m3'), 1, ' g/m³')}"
        if r.get("pressure_hpa") is not None:
            derived += f"   {fmt.num(r.get('pressure_hpa'), 1, ' hPa')}"
        set_text(self.query_one("#derived", Static), derived)
        self._show_age()

    def _show_age(self) -> None:
        if not self.is_mounted:
            return
        if self.reading is None:
            text = "no reading yet"
        else:
            text = f"read {fmt.age(self.age_s)} ago"
        if self.stale:
            text += "  — STALE"
        set_text(self.query_one("#age", Static), text)
