"""``filamentctl service install|uninstall|status``: the systemd unit for ``filamentctl run``.

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


def _unit_path(root: Path) -> Path:
    return root / _unit.UNIT_DIR.relative_to("/") / _unit.UNIT_NAME


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


def _configure_hint(user: str) -> str:
    return (
        f"sudo -u {user} env CONFIGURATION_DIRECTORY={_unit.CONFIG_DIR} "
        f"STATE_DIRECTORY={_unit.STATE_DIR} filamentctl config init"
    )


def _build_options(user: str, simulate: bool) -> _unit.UnitOptions:
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
    root: Path = typer.Option(
        Path("/"), "--root", hidden=True, help="Write below this directory; run nothing."
    ),
) -> None:
    """Write, enable and start the hardened systemd unit for `filamentctl run`."""
    if not _USER_NAME.fullmatch(user):
        raise UsageError(f"invalid --user {user!r}: use a lowercase system user name")
    root = root.absolute()
    opts = _build_options(user, simulate)
    text = _unit.render_unit(opts)
    if dry_run:
        sys.stdout.write(text)
        _note(f"dry run: would write {_unit_path(root)}; nothing was changed")
        return
    _require_root(root, "service install")
    if root == Path("/"):
        _ensure_user(user, opts.group_name)
    _prepare_dir(_under(root, _unit.CONFIG_DIR), user)
    _prepare_dir(_under(root, _unit.STATE_DIR), user)
    path = _unit_path(root)
    changed = _write_atomically(path, text)
    _note(f"{'wrote' if changed else 'unchanged:'} {path}")
    steps = [
        ["systemctl", "daemon-reload"],
        ["systemctl", "enable", _unit.UNIT_NAME],
        ["systemctl", "restart", _unit.UNIT_NAME],
    ]
    if _systemd_running(root):
        for cmd in steps:
            _run(cmd)
        _note(f"{_unit.UNIT_NAME} is enabled and (re)started")
    else:
        _note("systemd is not running here; to start the service run:")
        for cmd in steps:
            _note("  " + " ".join(cmd))
    _note(f"configure it as the service user:  {_configure_hint(user)}")
    _note(
        f"reach it over SSH without sudo: sudo usermod -aG {opts.group_name} YOUR_USER "
        "(then log in again)"
    )


@app.command(
    short_help="Stop, disable and remove the unit (configuration and history stay).",
    epilog=examples("sudo filamentctl service uninstall"),
)
def uninstall(
    root: Path = typer.Option(
        Path("/"), "--root", hidden=True, help="Remove below this directory; run nothing."
    ),
) -> None:
    """Stop and disable the service and remove its unit (configuration and history stay)."""
    root = root.absolute()
    _require_root(root, "service uninstall")
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
