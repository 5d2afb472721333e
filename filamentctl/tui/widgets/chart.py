"""The recent hours as two bar charts (temperature, humidity) from the service's history.

Each chart has a minimum vertical span (1 °C, 5 %RH): a box holding 22.0 °C with ±0.05 °C of
sensor noise draws as a flat line half-way up, not as full-height swings, because autoscaling
to the data's own min–max would blow the noise up to the whole height. The scale is printed on
the left edge (top and bottom values), so the height of a bar means something.
"""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.app import ComposeResult, RenderResult
from textual.containers import Vertical
from textual.reactive import reactive
from textual.widget import Widget
from textual.widgets import Static

from filamentctl import display as fmt
from filamentctl.tui.widgets.text import set_text

#: Points kept per series: wider than any terminal, so the chart still buckets by column.
MAX_POINTS = 400
#: Eighth blocks, from one eighth to a full cell.
BLOCKS = "▁▂▃▄▅▆▇█"
#: The smallest vertical span each chart shows (°C, %RH).
MIN_SPAN = {"temperature": 1.0, "humidity": 5.0}


def scale(values: list[float], min_span: float) -> tuple[float, float]:
    """The (bottom, top) of the vertical axis: the data's range, widened to ``min_span`` about
    its middle when narrower. Empty data gives (0, min_span)."""
    if not values:
        return 0.0, min_span
    low, high = min(values), max(values)
    if high - low < min_span:
        middle = (low + high) / 2
        low, high = middle - min_span / 2, middle + min_span / 2
    return low, high


def bar_rows(values: list[float], width: int, height: int, low: float, high: float) -> list[str]:
    """``height`` text rows (top first) of ``width`` columns: one bar per column, its height in
    eighths of a row proportional to the value between ``low`` and ``high``.

    Values are averaged into ``width`` columns when there are more, and stretched across them
    when there are fewer; a value at the bottom still shows one eighth, so a column with data
    never looks empty. Pure, for tests.
    """
    if width <= 0 or height <= 0:
        return []
    columns = resample(values, width)
    span = high - low or 1.0
    eighths = []
    for value in columns:
        fraction = min(1.0, max(0.0, (value - low) / span))
        eighths.append(max(1, round(fraction * height * 8)))
    rows = []
    for row in range(height):  # row 0 is the top
        floor = (height - 1 - row) * 8  # eighths below this row
        cells = []
        for level in eighths:
            fill = level - floor
            cells.append(" " if fill <= 0 else BLOCKS[min(fill, 8) - 1])
        rows.append("".join(cells).ljust(width))
    return rows


def resample(values: list[float], width: int) -> list[float]:
    """Exactly ``width`` columns (none for no values): means of equal runs, or repeats."""
    n = len(values)
    if n == 0 or width <= 0:
        return []
    out = []
    for i in range(width):
        chunk = values[i * n // width : (i + 1) * n // width] or [values[i * n // width]]
        out.append(sum(chunk) / len(chunk))
    return out


def axis_label(value: float) -> str:
    return f"{value:.1f}"


class BarChart(Widget):
    """One series as bars with its scale on the left. Attributes: ``values`` and ``min_span``."""

    DEFAULT_CSS = """
    BarChart { height: 1fr; min-height: 1; color: $primary; }
    """

    values: reactive[list[float]] = reactive(list, always_update=True)

    def __init__(self, min_span: float, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.min_span = min_span

    def render(self) -> RenderResult:
        width, height = self.size
        low, high = scale(self.values, self.min_span)
        top, bottom = axis_label(high), axis_label(low)
        label_width = max(len(top), len(bottom))
        rows = bar_rows(self.values, max(0, width - label_width - 1), height, low, high)
        lines = []
        for i, row in enumerate(rows):
            label = top if i == 0 else bottom if i == height - 1 else ""
            tick = "┤" if label else "│"
            lines.append(f"{label:>{label_width}}{tick}{row}")
        return Text("\n".join(lines), no_wrap=True, overflow="crop")


class HistoryChart(Vertical):
    """Attributes set by the app: ``readings`` (oldest first) and ``range_s``.

    Block characters only (no colour needed to read the shape); the latest value and the
    min–max of each series are printed above its chart, and its scale beside it.
    """

    DEFAULT_CSS = """
    HistoryChart { height: auto; }
    HistoryChart > .label { height: 1; }
    HistoryChart > BarChart { height: 2; }
    """

    readings: reactive[list[dict[str, Any]]] = reactive(list, always_update=True)
    range_s: reactive[float] = reactive(3600.0)

    def compose(self) -> ComposeResult:
        yield Static(id="temperature-label", classes="label", markup=False)
        yield BarChart(MIN_SPAN["temperature"], id="temperature-chart")
        yield Static(id="humidity-label", classes="label", markup=False)
        yield BarChart(MIN_SPAN["humidity"], id="humidity-chart")

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
            self.query_one(f"#{name}-chart", BarChart).values = fmt.downsample(values, MAX_POINTS)
