"""``filamentctl service install|uninstall|status``: the systemd unit for ``filamentctl run``.

``install`` also writes a companion unit per enabled gateway (``mqtt.enabled`` true:
``filamentctl-mqtt.service`` running ``filamentctl mqtt``) and removes one that is no longer
enabled; ``uninstall`` removes them all.

``install`` needs root (it creates the service user, writes under /etc and runs systemctl);
``--dry-run`` only prints the unit. ``--root DIR`` (hidden, like ``systemctl --root``) writes the
files below DIR instead of / and runs nothing: for tests and image builders.
"""

from __future__ import annotations

import json
import os
import pwd
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import typer

from filamentctl.cli.common import examples
from filamentctl.errors import EXIT_NOT_RUNNING, PermissionDenied, UsageError, UserError
from filamentctl.service import unit as _unit

app = typer.Typer(
    help="Install, remove and inspect the systemd service (runs `filamentctl run`).",
    short_help="Install, remove or inspect the systemd service.",
    epilog=examples(
        "sudo filamentctl service install --dry-run",
        "sudo filamentctl service install",
        "filamentctl service status",
    ),
    no_args_is_help=True,
)

_USER_NAME = re.compile(r"[a-z_][a-z0-9_-]{0,30}")
_SHOW_PROPERTIES = (
    "LoadState",
    "ActiveState",
    "SubState",
    "UnitFileState",
    "MainPID",
    "ExecMainStartTimestamp",
    "NRestarts",
    "Result",
)


def _note(text: str) -> None:
    sys.stderr.write(text + "\n")


def _systemd_running(root: Path) -> bool:
    # The documented test (sd_booted): this directory exists only when systemd is PID 1.
    return root == Path("/") and Path("/run/systemd/system").is_dir()


def _unit_path(root: Path, name: str = _unit.UNIT_NAME) -> Path:
    return root / _unit.UNIT_DIR.relative_to("/") / name


GATEWAY_UNITS = _unit.GATEWAY_UNITS


def _gateway_unit_path(root: Path, name: str) -> Path:
    return root / _unit.UNIT_DIR.relative_to("/") / _unit.gateway_unit_name(name)


def _gateways_enabled(root: Path) -> dict[str, bool] | None:
    """{gateway: enabled} as the installed service will read it (its configuration under
    ``root``, plus ``FILAMENTCTL_<KEY>`` overrides); None when that cannot be read."""
    from filamentctl import paths as _paths
    from filamentctl.store.settings import load_settings

    own = ("FILAMENTCTL_HOME", "FILAMENTCTL_BOX", "RUNTIME_DIRECTORY", "CREDENTIALS_DIRECTORY")
    env = {k: v for k, v in os.environ.items() if k not in own}
    env["CONFIGURATION_DIRECTORY"] = str(_under(root, _unit.CONFIG_DIR))
    env["STATE_DIRECTORY"] = str(_under(root, _unit.STATE_DIR))
    try:
        settings = load_settings(_paths.resolve(env), env, check_rules=False)
    except UserError as exc:
        _note(f"note: cannot read the configuration ({exc}); gateway units left as they are")
        return None
    return {name: bool(settings[f"{name}.enabled"]) for name in GATEWAY_UNITS}


def _under(root: Path, path: Path) -> Path:
    return root / path.relative_to("/")


def _require_root(root: Path, what: str) -> None:
    if root == Path("/") and os.geteuid() != 0:
        raise PermissionDenied(f"{what} needs root: run it with sudo (or try --dry-run first)")


def _run(cmd: list[str]) -> None:
    """Run a system command; its failure is a UserError naming the command."""
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    except FileNotFoundError:
        raise UserError(f"{cmd[0]} not found; run this on a systemd system") from None
    if proc.returncode != 0:
        detail = (proc.stderr or proc.stdout).strip().splitlines()
        raise UserError(
            f"`{' '.join(cmd)}` failed (exit {proc.returncode})"
            + (f": {detail[-1]}" if detail else "")
        )


def _ensure_user(user: str, group: str) -> None:
    """Create the dedicated system user (and its group) unless it exists."""
    try:
        pwd.getpwnam(user)
        return
    except KeyError:
        pass
    if shutil.which("useradd") is None:
        raise UserError(f"useradd not found; create the system user {user!r} yourself")
    cmd = ["useradd", "--system", "--home-dir", str(_unit.STATE_DIR), "--no-create-home"]
    cmd += ["--shell", "/usr/sbin/nologin"]
    cmd += ["--user-group"] if group == user else ["--gid", group]
    _run([*cmd, user])
    _note(f"created system user {user}")


def _prepare_dir(path: Path, user: str) -> None:
    """Create ``path`` owned by the service user, mode 0750 (config commands run as that user)."""
    path.mkdir(mode=0o750, parents=True, exist_ok=True)
    path.chmod(0o750)
    try:
        entry = pwd.getpwnam(user)
    except KeyError:
        return  # only under --root, where the user is not ours to create
    if os.geteuid() == 0:
        os.chown(path, entry.pw_uid, entry.pw_gid)


def _write_atomically(path: Path, text: str) -> bool:
    """Write ``text`` (mode 0644); False when the file already had exactly this content."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        if path.read_text(encoding="utf-8") == text:
            return False
    except FileNotFoundError:
        pass
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.chmod(0o644)
    os.replace(tmp, path)
    return True


def _box_dirs(box: str) -> tuple[Path, Path]:
    """The configuration and state directories of the system service for ``box``."""
    if box == "default":
        return _unit.CONFIG_DIR, _unit.STATE_DIR
    return _unit.CONFIG_DIR / box, _unit.STATE_DIR / box


def _configure_hint(user: str, box: str = "default") -> str:
    config, state = _box_dirs(box)
    return (
        f"sudo -u {user} env CONFIGURATION_DIRECTORY={config} "
        f"STATE_DIRECTORY={state} filamentctl config init"
    )


def _box_option(box: str | None) -> str:
    """``--box`` of the command, else the global one (FILAMENTCTL_BOX), else ``default``."""
    from filamentctl import paths as _paths

    if box is None:
        return _paths.box_name()
    try:
        return _paths.check_box_name(box)
    except ValueError as exc:
        raise UsageError(f"--box: {exc}") from None


_BOX_HELP = (
    "Install the box NAME as the instance filamentctl@NAME of the filamentctl@.service "
    "template (its own configuration, history and socket); default: the global --box."
)


def _build_options(user: str, simulate: bool, box: str = "default") -> _unit.UnitOptions:
    present, missing = _unit.existing_groups()
    if missing:
        _note(
            "note: group(s) " + ", ".join(missing) + " do not exist, so the unit does not ask "
            "for them (systemd refuses missing groups); after enabling GPIO/I2C "
            "(raspi-config), run `filamentctl service install` again"
        )
    opts = _unit.UnitOptions(
        command=_unit.current_command(),
        user=user,
        supplementary_groups=tuple(present),
        simulate=simulate,
        box=box,
    )
    if opts.under_home:
        _note(
            f"warning: {opts.command[0]} is under a home directory; the unit uses "
            "ProtectHome=read-only and the service user must be able to read it. "
            "Installing into /opt (see docs/operations.md) keeps ProtectHome=yes."
        )
    return opts


@app.command(
    short_help="Write, enable and start the hardened systemd unit.",
    epilog=examples(
        "sudo filamentctl service install --dry-run     # look at the unit first",
        "sudo filamentctl service install",
        "sudo filamentctl service install --simulate    # a box without hardware",
    ),
)
def install(
    dry_run: bool = typer.Option(
        False, "--dry-run", help="Print the unit on stdout and change nothing."
    ),
    user: str = typer.Option(
        _unit.DEFAULT_USER,
        "--user",
        metavar="NAME",
        help="The service's system user and group (created).",
    ),
    simulate: bool = typer.Option(
        False, "--simulate", help="The unit runs `filamentctl run --simulate` (no hardware)."
    ),
    box: str | None = typer.Option(None, "--box", metavar="NAME", help=_BOX_HELP),
    root: Path = typer.Option(
        Path("/"), "--root", hidden=True, help="Write below this directory; run nothing."
    ),
) -> None:
    """Write, enable and start the hardened systemd unit for `filamentctl run`.

    With --box NAME it writes the filamentctl@.service template and enables the instance
    filamentctl@NAME.service instead: several boxes on one machine, each its own service.

    For each gateway whose NAME.enabled is true (web, mqtt) it also installs its companion unit
    filamentctl-NAME.service (`filamentctl NAME`, same user, network, no devices); when
    NAME.enabled is false again, it removes that unit.
    """
    if not _USER_NAME.fullmatch(user):
        raise UsageError(f"invalid --user {user!r}: use a lowercase system user name")
    root = root.absolute()
    box_name = _box_option(box)
    opts = _build_options(user, simulate, box_name)
    text = _unit.render_unit(opts)
    # Gateways have units for the default box only (see docs/operations.md).
    enabled = (_gateways_enabled(root) if not opts.template else {}) or {}
    gateways = {
        name: _unit.render_gateway_unit(name, opts, GATEWAY_UNITS[name])
        for name, on in enabled.items()
        if on
    }
    path = _unit_path(root, opts.file_name)
    if dry_run:
        _show_dry_run(root, opts, path, text, gateways)
        return
    _require_root(root, "service install")
    if root == Path("/"):
        _ensure_user(user, opts.group_name)
    for directory in (_unit.CONFIG_DIR, _unit.STATE_DIR, *_box_dirs(box_name)):
        _prepare_dir(_under(root, directory), user)
    steps = _write_units(root, opts, path, text, gateways)
    for name, on in enabled.items():
        if not on:
            _remove_gateway_unit(root, name, f"{name}.enabled is false")
    _start(root, opts, steps)
    _note(f"configure it as the service user:  {_configure_hint(user, box_name)}")
    _note(
        f"reach it over SSH without sudo: sudo usermod -aG {opts.group_name} YOUR_USER "
        "(then log in again)"
    )


def _show_dry_run(
    root: Path, opts: _unit.UnitOptions, path: Path, text: str, gateways: dict[str, str]
) -> None:
    """``install --dry-run``: every unit on stdout, what would happen on stderr."""
    sys.stdout.write(text)
    for name, gateway_text in gateways.items():
        sys.stdout.write(f"\n# ---- {_gateway_unit_path(root, name)} ----\n{gateway_text}")
    paths = [path, *(_gateway_unit_path(root, name) for name in gateways)]
    _note(
        f"dry run: would write {', '.join(map(str, paths))} and enable "
        f"{opts.instance_name}; nothing was changed"
    )


def _write_units(
    root: Path, opts: _unit.UnitOptions, path: Path, text: str, gateways: dict[str, str]
) -> list[list[str]]:
    """Write the service's unit and each enabled gateway's; the systemctl commands that
    enable and (re)start them."""
    changed = _write_atomically(path, text)
    _note(f"{'wrote' if changed else 'unchanged:'} {path}")
    steps = [
        ["systemctl", "daemon-reload"],
        ["systemctl", "enable", opts.instance_name],
        ["systemctl", "restart", opts.instance_name],
    ]
    for name, gateway_text in gateways.items():
        gateway_path = _gateway_unit_path(root, name)
        changed = _write_atomically(gateway_path, gateway_text)
        _note(f"{'wrote' if changed else 'unchanged:'} {gateway_path}")
        unit_name = _unit.gateway_unit_name(name)
        steps += [["systemctl", "enable", unit_name], ["systemctl", "restart", unit_name]]
    return steps


def _start(root: Path, opts: _unit.UnitOptions, steps: list[list[str]]) -> None:
    """Run ``steps`` when systemd runs here; otherwise say what to run."""
    if _systemd_running(root):
        for cmd in steps:
            _run(cmd)
        _note(f"{opts.instance_name} is enabled and (re)started")
    else:
        _note("systemd is not running here; to start the service run:")
        for cmd in steps:
            _note("  " + " ".join(cmd))


def _remove_gateway_unit(root: Path, name: str, why: str) -> None:
    """Stop, disable and delete a gateway's unit if it is there."""
    path = _gateway_unit_path(root, name)
    if not path.exists():
        return
    if _systemd_running(root):
        _run(["systemctl", "disable", "--now", _unit.gateway_unit_name(name)])
    path.unlink()
    _note(f"removed {path} ({why})")
    if name == "mqtt":
        _note(
            "Home Assistant keeps the box (shown unavailable); `filamentctl mqtt "
            "--remove-discovery` removes it while the service runs"
        )


@app.command(
    short_help="Stop, disable and remove the unit (configuration and history stay).",
    epilog=examples("sudo filamentctl service uninstall"),
)
def uninstall(
    box: str | None = typer.Option(
        None, "--box", metavar="NAME", help="Remove this box's instance."
    ),
    root: Path = typer.Option(
        Path("/"), "--root", hidden=True, help="Remove below this directory; run nothing."
    ),
) -> None:
    """Stop and disable the service and remove its unit (configuration and history stay).

    With --box NAME it stops and disables the instance filamentctl@NAME.service; the template
    stays for the other boxes.
    """
    root = root.absolute()
    _require_root(root, "service uninstall")
    box_name = _box_option(box)
    if box_name != "default":
        instance = f"filamentctl@{box_name}.service"
        if _systemd_running(root):
            _run(["systemctl", "disable", "--now", instance])
            _note(f"stopped and disabled {instance}")
        else:
            _note(
                f"systemd is not running here; to remove it run: systemctl disable --now {instance}"
            )
        config, state = _box_dirs(box_name)
        _note(f"kept {config} and {state}; remove them by hand if you no longer need them")
        return
    for name in GATEWAY_UNITS:
        _remove_gateway_unit(root, name, "uninstall")
    path = _unit_path(root)
    if _systemd_running(root) and path.exists():
        _run(["systemctl", "disable", "--now", _unit.UNIT_NAME])
    try:
        path.unlink()
    except FileNotFoundError:
        _note(f"{path} does not exist; nothing to remove")
        return
    if _systemd_running(root):
        _run(["systemctl", "daemon-reload"])
    _note(f"removed {path}")
    _note(
        f"kept {_unit.CONFIG_DIR}, {_unit.STATE_DIR} and the service user; remove them by hand "
        "if you no longer need the configuration and history"
    )


def _systemctl_show() -> dict[str, str]:
    proc = subprocess.run(
        ["systemctl", "show", _unit.UNIT_NAME, "--property=" + ",".join(_SHOW_PROPERTIES)],
        capture_output=True,
        text=True,
        check=False,
    )
    out: dict[str, str] = {}
    for line in proc.stdout.splitlines():
        key, sep, value = line.partition("=")
        if sep:
            out[key] = value
    return out


def _exec_start(path: Path) -> str | None:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError:
        return None
    for line in text.splitlines():
        if line.startswith("ExecStart="):
            return line.removeprefix("ExecStart=")
    return None


def collect_status(root: Path = Path("/")) -> dict[str, Any]:
    """What ``service status`` shows: unit file, systemd's view, the socket."""
    path = _unit_path(root)
    socket = _under(root, _unit.RUNTIME_DIR) / "filamentctl.sock"
    info: dict[str, Any] = {
        "unit": _unit.UNIT_NAME,
        "unit_file": str(path),
        "installed": path.exists(),
        "exec_start": _exec_start(path),
        "systemd_running": _systemd_running(root),
        "socket": str(socket),
        "socket_exists": socket.exists(),
        "socket_accessible": socket.exists() and os.access(socket, os.R_OK | os.W_OK),
    }
    if info["systemd_running"]:
        show = _systemctl_show()
        info.update(
            {
                "load_state": show.get("LoadState"),
                "active_state": show.get("ActiveState"),
                "sub_state": show.get("SubState"),
                "enabled": show.get("UnitFileState"),
                "main_pid": int(show.get("MainPID", "0") or 0) or None,
                "since": show.get("ExecMainStartTimestamp") or None,
                "restarts": int(show.get("NRestarts", "0") or 0),
                "result": show.get("Result"),
            }
        )
    info["active"] = info.get("active_state") == "active"
    return info


@app.command(
    short_help="Show whether the unit is installed, enabled and running.",
    epilog=examples(
        "filamentctl service status",
        "filamentctl service status --json | jq .active",
    ),
)
def status(
    json_: bool = typer.Option(False, "--json", help="One JSON document on stdout."),
    root: Path = typer.Option(Path("/"), "--root", hidden=True, help="Look below this directory."),
) -> None:
    """Show whether the unit is installed, enabled and running (exit 3 when it is not running)."""
    info = collect_status(root.absolute())
    if json_:
        sys.stdout.write(json.dumps(info, indent=2) + "\n")
    else:
        mark = "●" if info["active"] else "○"
        lines = [f"{mark} {info['unit']} - filamentctl service"]
        installed = info["unit_file"] if info["installed"] else "not installed"
        lines.append(f"     Loaded: {installed}" + _enabled_suffix(info))
        if info["systemd_running"]:
            active = f"{info.get('active_state')} ({info.get('sub_state')})"
            if info.get("since") and info["active"]:
                active += f" since {info['since']}"
            lines.append(f"     Active: {active}")
            if info.get("main_pid"):
                lines.append(f"   Main PID: {info['main_pid']}")
            lines.append(f"   Restarts: {info.get('restarts', 0)}")
        else:
            lines.append("     Active: unknown (systemd is not running here)")
        if info["exec_start"]:
            lines.append(f"    Command: {info['exec_start']}")
        sock = "present" if info["socket_exists"] else "absent"
        if info["socket_exists"] and not info["socket_accessible"]:
            sock += " (no access: join the service's group)"
        lines.append(f"     Socket: {info['socket']} ({sock})")
        lines.append("       Logs: journalctl -u filamentctl -e")
        sys.stdout.write("\n".join(lines) + "\n")
    if not info["active"]:
        raise typer.Exit(EXIT_NOT_RUNNING)


def _enabled_suffix(info: dict[str, Any]) -> str:
    enabled = info.get("enabled")
    return f"; {enabled}" if enabled else ""
