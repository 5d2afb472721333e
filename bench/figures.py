"""What ``python -m bench`` runs and which figures of each result it reports, with their goals.

A :class:`Figure` reads one number out of a benchmark module's result (and, optionally, a
baseline measured in the same run) and knows its goal as a predicate: every "met?" in
docs/performance.md is computed by it, from the figures of that run.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

Result = dict[str, float]


@dataclass(frozen=True)
class Figure:
    """One row: how to read the figure out of a module's result and what it is held to."""

    label: str
    unit: str
    value: Callable[[Result], float]
    baseline: Callable[[Result], float] | None = None
    baseline_label: str = ""
    goal: str = ""
    met: Callable[[float, float | None], bool] | None = None


@dataclass(frozen=True)
class Bench:
    name: str
    module: str
    argv: list[str]
    quick_argv: list[str]
    command: str
    figures: list[Figure]


def key(name: str) -> Callable[[Result], float]:
    return lambda r: r[name]


def at_most(limit: float) -> Callable[[float, float | None], bool]:
    return lambda v, b: v <= limit


def ratio_at_most(limit: float) -> Callable[[float, float | None], bool]:
    return lambda v, b: b is not None and b > 0 and v <= limit * b


def _cli_figures() -> list[Figure]:
    from bench.cli_status import COMMANDS, RSS_GOAL_MB, WALL_GOAL

    typer = key("python -c 'import typer' ms")
    out = [
        Figure("python -c pass", "ms", key("python -c pass ms"), typer, "Typer floor", "(floor)"),
        Figure(
            "python -c pass CPU",
            "ms",
            key("python -c pass cpu ms"),
            key("python -c 'import typer' cpu ms"),
            "Typer floor's CPU",
            "(floor)",
        ),
    ]
    for name in COMMANDS:
        goal = WALL_GOAL[name]
        out += [
            Figure(
                f"`{name}` wall",
                "ms",
                key(f"{name} ms"),
                typer,
                "Typer floor",
                f"≤ {goal}× Typer",
                ratio_at_most(goal),
            ),
            Figure(
                f"`{name}` CPU",
                "ms",
                key(f"{name} cpu ms"),
                key("python -c 'import typer' cpu ms"),
                "Typer floor's CPU",
                "(reported)",
            ),
            Figure(
                f"`{name}` peak RSS",
                "MB",
                key(f"{name} MB"),
                key("python -c pass MB"),
                "python -c pass",
                f"≤ {RSS_GOAL_MB:g} MB",
                at_most(RSS_GOAL_MB),
            ),
        ]
    return out


def _footprint_figures() -> list[Figure]:
    out = []
    for rate in ("1", "10"):
        out += [
            Figure(
                f"service peak RSS at {rate} Hz",
                "MB",
                key(f"{rate} Hz peak_rss_mb"),
                goal="≤ 40 MB",
                met=at_most(40),
            ),
            Figure(
                f"service CPU per reading at {rate} Hz",
                "ms",
                key(f"{rate} Hz cpu_ms_per_reading"),
                goal="(reported)",
            ),
        ]
    out.append(
        Figure(
            "service peak RSS at 1 Hz, notifications on (Apprise loaded)",
            "MB",
            key("1 Hz notify peak_rss_mb"),
            key("1 Hz peak_rss_mb"),
            "notifications off",
            "(reported; off: ≤ 40 MB)",
        )
    )
    out.append(
        Figure(
            "disk writes at 1 Hz",
            "MB/h",
            key("1 Hz disk_mb_per_h"),
            goal="≤ 2 MB/h",
            met=at_most(2),
        )
    )
    from bench.service_footprint import DELIVERY_VARIANTS

    for variant in DELIVERY_VARIANTS:
        out.append(
            Figure(
                f"disk writes, {variant}",
                "MB/h",
                key(f"{variant} disk_mb_per_h"),
                key("1 Hz disk_mb_per_h"),
                "1 Hz, defaults",
                "(reported)",
            )
        )
    return out


def _drain_figures() -> list[Figure]:
    per_reading_us = 1e6

    def cpu_us(name: str) -> Callable[[Result], float]:
        return lambda r: r[name] / r["readings"] * per_reading_us

    return [
        Figure(
            "drain of the backlog (filamentctl)",
            "s",
            key("shared ours_s"),
            key("shared curl_s"),
            "curl, same batches",
            "≥ 0.8× curl speed",
            lambda v, b: b is not None and b / v >= 0.8,
        ),
        Figure(
            "drain speed as a fraction of curl's",
            "×",
            key("shared ratio"),
            goal="≥ 0.8",
            met=lambda v, b: v >= 0.8,
        ),
        Figure(
            "the same, server pinned to its own core (taskset)",
            "×",
            key("pinned ratio"),
            goal="≥ 0.8 (second figure)",
            met=lambda v, b: v >= 0.8,
        ),
        Figure(
            "the same with the Python encoder (no C compiler at install)",
            "×",
            key("python ratio"),
            goal="(reported)",
        ),
        Figure(
            "drain CPU per reading, filamentctl",
            "µs",
            cpu_us("shared ours own_cpu_s"),
            cpu_us("shared ours server_cpu_s"),
            "the server's, same drain",
            "(reported)",
        ),
        Figure(
            "server CPU per reading, curl's drain",
            "µs",
            cpu_us("shared curl server_cpu_s"),
            goal="(reported)",
        ),
        Figure(
            "drain CPU per reading, Python encoder",
            "µs",
            cpu_us("python ours own_cpu_s"),
            goal="(reported)",
        ),
    ]


def _history_figures() -> list[Figure]:
    return [
        Figure(
            "newest reading's age, 16 clients looping over history",
            "s",
            key("load max_age_s"),
            key("idle max_age_s"),
            "idle service",
            "≤ read interval + 1 s",
            at_most(2.0),  # the bench reads every 1 s
        ),
        Figure(
            "`status` p95 under that load",
            "ms",
            key("load status_p95_ms"),
            key("idle status_p95_ms"),
            "idle service",
            "(reported)",
        ),
        Figure(
            "service peak RSS under that load",
            "MB",
            key("peak_rss_mb"),
            key("idle max_rss_mb"),
            "idle service",
            "< 80 MB",
            lambda v, b: v < 80,
        ),
        Figure(
            "history replies (100,000 readings each)",
            "1/s",
            key("load replies_per_s"),
            goal="(reported)",
        ),
    ]


def _tui_figures() -> list[Figure]:
    from bench.tui_launch import CPU_GOAL_PERCENT

    return [
        Figure(
            "dashboard launch → first frame with data",
            "ms",
            key("filamentctl tui launch ms"),
            key("empty Textual app launch ms"),
            "empty Textual app",
            "≤ 1000 ms",
            at_most(1000),
        ),
        Figure(
            "dashboard CPU at 1 update/s",
            "% of a core",
            key("filamentctl tui cpu %"),
            key("empty Textual app cpu %"),
            "idle empty Textual app",
            f"≤ {CPU_GOAL_PERCENT:g} %",
            at_most(CPU_GOAL_PERCENT),
        ),
    ]


def _web_figures() -> list[Figure]:
    kb = 1000.0
    return [
        Figure(
            "web gateway peak RSS (4 event streams)",
            "MB",
            key("gateway peak_rss_mb"),
            key("bare aiohttp rss_mb"),
            "bare aiohttp server",
            "≤ 40 MB",
            at_most(40),
        ),
        Figure(
            "web page weight, everything it loads",
            "KB",
            lambda r: r["page total_bytes"] / kb,
            goal="≤ 150 KB",
            met=at_most(150),
        ),
        Figure(
            "web page static files (HTML, CSS, JS, icon)",
            "KB",
            lambda r: r["page static_bytes"] / kb,
            goal="(reported)",
        ),
        Figure(
            "web 24 h chart answer", "KB", lambda r: r["history 24h_bytes"] / kb, goal="(reported)"
        ),
    ]


def benches() -> list[Bench]:
    """Every benchmark, in the order ``python -m bench`` runs them."""
    return [
        Bench(
            "cli",
            "bench.cli_status",
            [],
            ["--quick"],
            "python -m bench.cli_status --runs 30",
            _cli_figures(),
        ),
        Bench(
            "footprint",
            "bench.service_footprint",
            [],
            ["--quick"],
            "python -m bench.service_footprint --seconds 60",
            _footprint_figures(),
        ),
        Bench(
            "drain",
            "bench.drain",
            [],
            ["--readings", "100000"],
            "python -m bench.drain --readings 1000000",
            _drain_figures(),
        ),
        Bench(
            "control",
            "bench.control_latency",
            [],
            ["--quick"],
            "python -m bench.control_latency",
            [
                Figure(
                    "reading → relay switch (median)",
                    "ms",
                    lambda r: r.get("median_ms", r.get("p50_ms", float("nan"))),
                    goal="< 50 ms",
                    met=lambda v, b: v < 50,
                )
            ],
        ),
        Bench(
            "mqtt",
            "bench.mqtt_gateway",
            [],
            ["--quick"],
            "python -m bench.mqtt_gateway --seconds 60",
            [
                Figure(
                    "MQTT gateway peak RSS",
                    "MB",
                    key("peak_rss_mb"),
                    key("baseline_mb"),
                    "python + paho import",
                    "≤ 30 MB",
                    at_most(30),
                ),
                Figure(
                    "MQTT gateway CPU per reading",
                    "ms",
                    key("cpu_ms_per_reading"),
                    goal="(reported)",
                ),
            ],
        ),
        Bench(
            "history",
            "bench.history_load",
            [],
            ["--quick"],
            "python -m bench.history_load --readings 500000 --clients 16 --seconds 20",
            _history_figures(),
        ),
        Bench(
            "tui",
            "bench.tui_launch",
            [],
            ["--runs", "2", "--seconds", "5"],
            "python -m bench.tui_launch --runs 5 --seconds 20",
            _tui_figures(),
        ),
        Bench(
            "web",
            "bench.web_gateway",
            [],
            ["--quick"],
            "python -m bench.web_gateway --seconds 30",
            _web_figures(),
        ),
    ]
