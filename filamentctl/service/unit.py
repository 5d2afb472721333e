"""The systemd unit for ``filamentctl run``: built from parameters, as text.

Nothing here touches the system except :func:`existing_groups` (reads the group database) and
:func:`current_command` (looks at how this process was started); :func:`render_unit` is pure.

Choices worth knowing (docs/operations.md has the long form):

* ``PrivateDevices=`` cannot be used (it hides ``/dev/gpiochip*`` and ``/dev/i2c-*``), so device
  access is closed with ``DevicePolicy=closed`` plus ``DeviceAllow=char-gpiochip`` and
  ``char-i2c``: systemd accepts globs only on device *group* names from ``/proc/devices``, not
  on paths, and a group name also covers chips that appear later (a HAT, an I2C mux).
* ``PrivateUsers=`` is not used: it maps every group except the unit's own to ``nobody``, so
  the ``gpio``/``i2c`` group permissions on the device nodes would no longer be ours.
* ``SupplementaryGroups=`` lists only groups that exist when the unit is written: systemd
  refuses to start a unit naming a missing group (status 216/GROUP).
* The configuration key is read from ``$STATE_DIRECTORY/secrets/config.key`` (what
  :mod:`filamentctl.paths` uses under systemd when no ``LoadCredential=`` is given), so the
  service user owns it with mode 0600 and nothing else is needed.
* No ``ProcSubset=pid``: Blinka's board detection and gpiozero's board info read
  ``/proc/cpuinfo`` and ``/proc/device-tree``, which it would hide.
* No ``IPAddressDeny=``/``PrivateNetwork=``: the service must reach the user's database.
"""

from __future__ import annotations

import grp
import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from filamentctl.paths import SYSTEM_CONFIG_DIR, SYSTEM_RUNTIME_ROOT, SYSTEM_STATE_DIR

UNIT_NAME = "filamentctl.service"
#: The template for named boxes: ``filamentctl@NAME.service`` runs the box NAME.
TEMPLATE_NAME = "filamentctl@.service"
UNIT_DIR = Path("/etc/systemd/system")
DEFAULT_USER = "filamentctl"
# Debian/Raspberry Pi OS give /dev/gpiochip* to group gpio and /dev/i2c-* to group i2c (udev).
HARDWARE_GROUPS = ("gpio", "i2c")
WATCHDOG_SEC = 30
CONFIG_DIR = SYSTEM_CONFIG_DIR
STATE_DIR = SYSTEM_STATE_DIR
RUNTIME_DIR = SYSTEM_RUNTIME_ROOT

# Directories the service's home would be in; ProtectHome=yes hides them from the service.
_HOME_ROOTS = (Path("/home"), Path("/root"), Path("/run/user"))


@dataclass(frozen=True, slots=True)
class UnitOptions:
    """Everything that varies between installs. ``command`` is ExecStart without ``run``."""

    command: Sequence[str]
    user: str = DEFAULT_USER
    group: str | None = None  # None: same name as the user
    supplementary_groups: Sequence[str] = field(default_factory=tuple)
    simulate: bool = False
    watchdog_sec: int = WATCHDOG_SEC
    box: str = "default"  # another name: the filamentctl@.service template (instance = box)

    @property
    def template(self) -> bool:
        return self.box != "default"

    @property
    def file_name(self) -> str:
        """The unit file to write: ``filamentctl.service`` or the template."""
        return TEMPLATE_NAME if self.template else UNIT_NAME

    @property
    def instance_name(self) -> str:
        """The unit to enable: ``filamentctl.service`` or ``filamentctl@BOX.service``."""
        return f"filamentctl@{self.box}.service" if self.template else UNIT_NAME

    @property
    def group_name(self) -> str:
        return self.group or self.user

    @property
    def under_home(self) -> bool:
        """True when the executable lives under /home, /root or /run/user."""
        return any(_is_under(Path(part), _HOME_ROOTS) for part in self.command[:1])


def _is_under(path: Path, roots: Iterable[Path]) -> bool:
    return any(path == root or root in path.parents for root in roots)


def quote_exec_arg(arg: str) -> str:
    """Quote one ExecStart word for systemd: escape ``%`` and ``$``; quote when needed."""
    text = arg.replace("\\", "\\\\").replace("%", "%%").replace("$", "$$")
    if not text or any(c.isspace() or c in "\"';" for c in text):
        return '"' + text.replace('"', '\\"') + '"'
    return text


def _sandbox(protect_home: str) -> list[str]:
    """The service unit's device access and sandbox: GPIO and I2C only, nothing else."""
    return [
        "# Hardware: only GPIO character devices and I2C buses (by device group, so chips",
        "# that appear later are covered too).",
        "DevicePolicy=closed",
        "DeviceAllow=char-gpiochip rw",
        "DeviceAllow=char-i2c rw",
        "",
        "# Sandbox",
        "NoNewPrivileges=yes",
        "CapabilityBoundingSet=",
        "AmbientCapabilities=",
        "ProtectSystem=strict",
        f"ProtectHome={protect_home}",
        "PrivateTmp=yes",
        "PrivateMounts=yes",
        "ProtectKernelTunables=yes",
        "ProtectKernelModules=yes",
        "ProtectKernelLogs=yes",
        "ProtectControlGroups=yes",
        "ProtectClock=yes",
        "ProtectHostname=yes",
        "ProtectProc=invisible",
        "PrivateIPC=yes",
        "RemoveIPC=yes",
        "KeyringMode=private",
        "RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6",
        "RestrictNamespaces=yes",
        "RestrictRealtime=yes",
        "RestrictSUIDSGID=yes",
        "LockPersonality=yes",
        "MemoryDenyWriteExecute=yes",
        "SystemCallArchitectures=native",
        "SystemCallFilter=@system-service",
        "SystemCallFilter=~@privileged @resources",
        # A refused call fails with EPERM instead of killing the process mid-write.
        "SystemCallErrorNumber=EPERM",
    ]


def render_unit(opts: UnitOptions) -> str:
    """The unit file text. Raises ValueError when the command is not an absolute path."""
    if not opts.command or not Path(opts.command[0]).is_absolute():
        raise ValueError(f"ExecStart needs an absolute path, not {list(opts.command)!r}")
    exec_args = [*opts.command, "run"] + (["--simulate"] if opts.simulate else [])
    exec_start = " ".join(quote_exec_arg(a) for a in exec_args)
    exec_stop_post = " ".join(quote_exec_arg(a) for a in [*opts.command, "relays-off"])
    # An executable under /home needs the home directories visible (read-only still).
    protect_home = "read-only" if opts.under_home else "yes"
    supplementary = " ".join(opts.supplementary_groups)
    # A named box is an instance of the template: %i is its name, and each instance gets its
    # own directories (the runtime one beside, not below, the default box's: systemd removes a
    # unit's runtime directory with its contents when the unit stops).
    sub = "/%i" if opts.template else ""
    runtime = "filamentctl-%i" if opts.template else "filamentctl"
    what = "box %i" if opts.template else "keeps 3D-printer filament dry"
    lines = [
        "# Written by `filamentctl service install`; rerun it after moving the executable.",
        f"# Local changes belong in a drop-in: systemctl edit {opts.instance_name}",
        "[Unit]",
        f"Description=filamentctl {what} (sensor, history, heater, fan)",
        "Documentation=man:filamentctl(1) man:filamentctl-service(1)",
        # DeviceAllow=char-i2c only resolves when i2c-dev is loaded at start; load it first.
        "Wants=modprobe@i2c_dev.service",
        "After=modprobe@i2c_dev.service",
        # Readings carry wall-clock timestamps: a Pi has no RTC, so start after the clock is
        # synchronised where the system orders that (systemd-time-wait-sync).
        "After=time-sync.target",
        "",
        "[Service]",
        "Type=notify",
        f"ExecStart={exec_start}",
        f"WatchdogSec={opts.watchdog_sec}s",
        # A stalled service gets the same stop path as `systemctl stop` (relays OFF first), not
        # the default SIGABRT's core dump; still stuck after TimeoutStopSec, SIGKILL follows.
        "WatchdogSignal=SIGTERM",
        "Restart=on-failure",
        "RestartSec=5s",
        # The service turns both relays off on every catchable signal before anything else.
        "TimeoutStopSec=20s",
        # After any end, even one it could not handle (SIGKILL, the OOM killer, a hang), drive
        # the relay pins to OFF directly, without the service.
        f"ExecStopPost={exec_stop_post}",
        f"User={opts.user}",
        f"Group={opts.group_name}",
    ]
    if supplementary:
        lines.append(f"SupplementaryGroups={supplementary}")
    lines += [
        f"ConfigurationDirectory=filamentctl{sub}",
        "ConfigurationDirectoryMode=0750",
        f"StateDirectory=filamentctl{sub}",
        "StateDirectoryMode=0750",
        f"RuntimeDirectory={runtime}",
        # Group members reach the socket (0660) through this directory: SSH users, no flags.
        "RuntimeDirectoryMode=0750",
        "UMask=0027",
        # / is read-only here; gpiozero's lgpio backend creates notification FIFOs in $LG_WD
        # (default: the working directory), so give it the runtime directory.
        f"WorkingDirectory=-{STATE_DIR}{sub}",
        f"Environment=LG_WD=/run/{runtime}",
        *(["Environment=FILAMENTCTL_BOX=%i"] if opts.template else []),
        "",
        *_sandbox(protect_home),
        "",
        "[Install]",
        "WantedBy=multi-user.target",
        "",
    ]
    return "\n".join(lines)


#: Gateways with a companion unit, by name: ``filamentctl-NAME.service`` runs ``filamentctl NAME``
#: and is installed when the setting ``NAME.enabled`` is true.
GATEWAY_UNITS = {
    "web": "filamentctl web gateway: the dashboard and HTTP API",
    "mqtt": "filamentctl MQTT gateway: the box in Home Assistant",
}


def gateway_unit_name(name: str) -> str:
    """``filamentctl-mqtt.service`` for the gateway ``mqtt``."""
    return f"filamentctl-{name}.service"


def render_gateway_unit(name: str, opts: UnitOptions, description: str | None = None) -> str:
    """The companion unit running ``filamentctl NAME`` (a gateway), as text.

    A gateway is a client of the service's socket: the same user and group (the socket is
    0660 in a 0750 directory), the network, and no devices at all. ``PartOf=`` makes
    ``systemctl stop/restart filamentctl`` take it along, and ``WantedBy=`` the main unit
    starts it with the service; but when the service fails and systemd restarts it, the
    gateway stays up (``BindsTo=`` would stop it) and reconnects by itself, telling Home
    Assistant meanwhile that the box is unavailable. Exit 2 (invalid or disabled settings) and
    4 (not allowed to read them) are not retried: a restart would not change them.
    Raises ValueError when the command is not an absolute path.
    """
    if not opts.command or not Path(opts.command[0]).is_absolute():
        raise ValueError(f"ExecStart needs an absolute path, not {list(opts.command)!r}")
    exec_start = " ".join(quote_exec_arg(a) for a in [*opts.command, name])
    protect_home = "read-only" if opts.under_home else "yes"
    lines = [
        f"# Written by `filamentctl service install` ({name}.enabled is true); rerun it after",
        "# moving the executable. Local changes belong in a drop-in: "
        f"systemctl edit filamentctl-{name}",
        "[Unit]",
        f"Description={description or GATEWAY_UNITS.get(name, f'filamentctl {name} gateway')}",
        "Documentation=man:filamentctl(1)",
        f"After={UNIT_NAME} network-online.target",
        "Wants=network-online.target",
        f"PartOf={UNIT_NAME}",
        "",
        "[Service]",
        "Type=exec",
        f"ExecStart={exec_start}",
        "ExecReload=/bin/kill -HUP $MAINPID",
        "Restart=on-failure",
        "RestartSec=5s",
        "RestartPreventExitStatus=2 4",
        f"User={opts.user}",
        f"Group={opts.group_name}",
        # The service's socket; the gateway needs no directory of its own.
        f"Environment=FILAMENTCTL_SOCKET={RUNTIME_DIR}/filamentctl.sock",
        "UMask=0077",
        "",
        "# No devices: a gateway drives nothing, it asks the service.",
        "PrivateDevices=yes",
        "DevicePolicy=closed",
        "",
        "# Sandbox",
        "NoNewPrivileges=yes",
        "CapabilityBoundingSet=",
        "AmbientCapabilities=",
        "ProtectSystem=strict",
        f"ProtectHome={protect_home}",
        "PrivateTmp=yes",
        "PrivateMounts=yes",
        "PrivateUsers=yes",
        "ProtectKernelTunables=yes",
        "ProtectKernelModules=yes",
        "ProtectKernelLogs=yes",
        "ProtectControlGroups=yes",
        "ProtectClock=yes",
        "ProtectHostname=yes",
        "ProtectProc=invisible",
        "ProcSubset=pid",
        "PrivateIPC=yes",
        "RemoveIPC=yes",
        "KeyringMode=private",
        "RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6",
        "RestrictNamespaces=yes",
        "RestrictRealtime=yes",
        "RestrictSUIDSGID=yes",
        "LockPersonality=yes",
        "MemoryDenyWriteExecute=yes",
        "SystemCallArchitectures=native",
        "SystemCallFilter=@system-service",
        "SystemCallFilter=~@privileged @resources",
        "SystemCallErrorNumber=EPERM",
        "",
        "[Install]",
        f"WantedBy={UNIT_NAME}",
        "",
    ]
    return "\n".join(lines)


def existing_groups(
    candidates: Iterable[str] = HARDWARE_GROUPS,
    lookup: Callable[[str], object] = grp.getgrnam,
) -> tuple[list[str], list[str]]:
    """Split ``candidates`` into (groups that exist, groups that do not)."""
    present: list[str] = []
    missing: list[str] = []
    for name in candidates:
        try:
            lookup(name)
        except KeyError:
            missing.append(name)
        else:
            present.append(name)
    return present, missing


def current_command(argv0: str | None = None, executable: str | None = None) -> list[str]:
    """The absolute command that started this filamentctl, for ExecStart.

    The ``filamentctl`` script when that is what ran (kept as the absolute, unresolved path, so
    a venv's script keeps its venv), else the script next to the interpreter, else
    ``<python> -m filamentctl``.
    """
    argv0 = sys.argv[0] if argv0 is None else argv0
    executable = sys.executable if executable is None else executable
    script = Path(argv0)
    if script.name == "filamentctl" and script.is_file():
        return [str(script.absolute())]
    sibling = Path(executable).absolute().parent / "filamentctl"
    if sibling.is_file():
        return [str(sibling)]
    return [str(Path(executable).absolute()), "-m", "filamentctl"]
