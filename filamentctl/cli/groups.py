"""The command groups of ``filamentctl`` and the modules that define them.

Shared by the entry point (:mod:`filamentctl.cli.main`, which builds only the group a command line
names) and the Typer root (:mod:`filamentctl.cli.root`, which builds them); a module of its own so
neither imports the other.
"""

from __future__ import annotations

# Command group -> (module under filamentctl.cli, how it joins the root app), in --help order.
# "register" modules add their commands with register(app); the others are Typer sub-apps.
GROUPS: dict[str, tuple[str, str]] = {
    "run": ("service_cmds", "register"),
    "demo": ("service_cmds", "register"),
    "status": ("data", "register"),
    "read": ("data", "register"),
    "flush": ("data", "register"),
    "history": ("data", "register"),
    "heater": ("control", "register"),
    "fan": ("control", "register"),
    "dry": ("dry", "app"),
    "tui": ("tui", "register"),
    "web": ("web", "register"),
    "mqtt": ("mqtt", "register"),
    "sim": ("sim", "app"),
    "config": ("config", "app"),
    "notify": ("notify", "app"),
    "service": ("service_unit", "app"),
    "relays-off": ("relays", "register"),
    "boxes": ("boxes", "register"),
}
