"""The recent hours as two sparklines (temperature, humidity) from the service's history."""

from __future__ import annotations

from typing import Any

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.reactive import reactive
from textual.widgets import Sparkline, Static

from filamentctl import display as fmt
from filamentctl.tui.widgets.text import set_text

#: Points kept per series: wider than any terminal, so the sparkline still buckets by column.
MAX_POINTS = 400


def _mean(values: Any) -> float:
    return float(sum(values) / len(values)) if values else 0.0


class HistoryChart(Vertical):
    """Attributes set by the app: ``readings`` (oldest first) and ``range_s``.

    Block characters only (no colour needed to read the shape); min/max of each series are
    printed so the scale is readable too.
    """

    DEFAULT_CSS = """
    HistoryChart { height: auto; }
    HistoryChart > .label { height: 1; }
    HistoryChart > Sparkline { height: 2; }
    """

    readings: reactive[list[dict[str, Any]]] = reactive(list, always_update=True)
    range_s: reactive[float] = reactive(3600.0)

    def compose(self) -> ComposeResult:
        yield Static(id="temperature-label", classes="label", markup=False)
        yield Sparkline([], summary_function=_mean, id="temperature-chart")
        yield Static(id="humidity-label", classes="label", markup=False)
        yield Sparkline([], summary_function=_mean, id="humidity-chart")

    def on_mount(self) -> None:
        self._show()

    def watch_readings(self) -> None:
        self._show()

    def watch_range_s(self) -> None:
        self._show()

    def _show(self) -> None:
        if not self.is_mounted:
            return
        self.border_title = f"Last {fmt.range_label(self.range_s)}"
        self.border_subtitle = "c: range"
        for key, unit, name, label in (
            ("temperature_c", " °C", "temperature", "Temperature"),
            ("humidity", " %", "humidity", "Humidity"),
        ):
            values = [
                float(r[key])
                for r in self.readings
                if isinstance(r.get(key), (int, float)) and not isinstance(r.get(key), bool)
            ]
            if values:
                text = f"{label}  {fmt.num(min(values), 1)} – {fmt.num(max(values), 1, unit)}"
            else:
                text = f"{label}  no history yet"
            set_text(self.query_one(f"#{name}-label", Static), text)
            self.query_one(f"#{name}-chart", Sparkline).data = fmt.downsample(values, MAX_POINTS)
