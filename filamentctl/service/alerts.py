"""Delivery alerts: at most one per failure episode and kind, logged, published, and handed to the
user's ``retry.alert_command``.

An episode starts with a failed delivery attempt and ends with the next success. Within it an
alert fires when the consecutive failures reach ``retry.alert_threshold`` (0: never), and an
authentication failure fires one at once — also after a generic alert, because it needs a
different fix (credentials, not the network). An alert is logged at ERROR, passed to the event
callback as ``("alert", details)``, shown in ``status`` until the episode ends and, when a command
is set, run through the shell with the details in ``FILAMENTCTL_ALERT_*`` variables; the command
inherits only what a shell needs from the service's environment, never its secrets.
"""

from __future__ import annotations

import logging
import os
import subprocess
import threading
import time
from collections.abc import Callable, Mapping

from filamentctl.core.reading import iso_utc

# The delivery engine's logger: its alerts are part of what ``--debug`` shows for delivery.
log = logging.getLogger("filamentctl.delivery")

ALERT_COMMAND_TIMEOUT_S = 60.0  # an alert command still running after this is killed

# What the user's alert command inherits from the service's environment: enough to run a shell
# command, and never the service's secrets (config key, Vault tokens, FILAMENTCTL_* overrides).
ALERT_ENV_KEEP = ("PATH", "HOME", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "USER", "LOGNAME", "SHELL")

#: How an alert command is started: it receives the FILAMENTCTL_ALERT_* variables.
AlertRunner = Callable[[dict[str, str]], None]
#: Where events go: ``(name, details)``; must not block.
Emit = Callable[[str, dict[str, object]], None]


class Alerter:
    """Tracks the alert episode of one backend and raises its alerts.

    ``backlog()`` counts the readings kept (for the alert's details; -1 when it fails);
    ``run_command`` replaces how ``command`` is started (tests). Thread-safe: the episode state has
    its own lock, which is never held while logging, publishing or starting the command.
    """

    def __init__(
        self,
        backend: str,
        threshold: int,
        command: str,
        *,
        backlog: Callable[[], int],
        emit: Emit,
        wall_clock_ns: Callable[[], int] = time.time_ns,
        run_command: AlertRunner | None = None,
    ) -> None:
        self._backend = backend
        self._threshold = threshold
        self._command = command.strip()
        self._backlog = backlog
        self._emit = emit
        self._wall_ns = wall_clock_ns
        self._run: AlertRunner = run_command or self._spawn
        self._lock = threading.Lock()
        self._kinds: set[str] = set()  # the kinds already raised in this episode
        self._alert: dict[str, object] | None = None  # what status shows

    def failed(self, message: str, failures: int, *, auth: bool) -> str | None:
        """Count a failed attempt (the ``failures``-th in a row) into the episode.

        Returns the kind of alert it calls for (``"auth"`` or ``"delivery"``), already shown by
        :meth:`current`; pass it to :meth:`fire` outside any lock. None: no new alert.
        """
        with self._lock:
            kind: str | None = None
            if auth and "auth" not in self._kinds:
                kind = "auth"
            elif 0 < self._threshold <= failures and not self._kinds:
                kind = "delivery"
            if kind is not None:
                self._kinds.add(kind)
                self._alert = {"kind": kind, "message": message, "since": iso_utc(self._wall_ns())}
            return kind

    def succeeded(self) -> bool:
        """The episode ended (the backend answered); whether an alert was up."""
        with self._lock:
            had_alert = self._alert is not None
            self._alert = None
            self._kinds.clear()
            return had_alert

    def current(self) -> dict[str, object] | None:
        """The alert of this episode for ``status`` (a copy), None when none is up."""
        with self._lock:
            return dict(self._alert) if self._alert else None

    def fire(self, kind: str, message: str, failures: int) -> None:
        """Log, publish and (if configured) run the command for an alert :meth:`failed` returned.

        Never raises for the command: one that cannot be started is logged.
        """
        try:
            backlog = self._backlog()
        except Exception:  # e.g. the history is busy or closing: the alert matters more
            backlog = -1
        if kind == "auth":
            text = f"{self._backend} refused our credentials ({message}); check the token/password"
        else:
            text = f"{failures} consecutive delivery failures to {self._backend} ({message})"
        log.error("alert: %s; %d readings kept", text, backlog)
        self._emit(
            "alert",
            {
                "kind": kind,
                "message": text,
                "failures": failures,
                "backend": self._backend,
                "backlog": backlog,
            },
        )
        if not self._command:
            return
        env = {
            "FILAMENTCTL_ALERT_KIND": kind,
            "FILAMENTCTL_ALERT_MESSAGE": text,
            "FILAMENTCTL_ALERT_FAILURES": str(failures),
            "FILAMENTCTL_ALERT_BACKEND": self._backend,
            "FILAMENTCTL_ALERT_BACKLOG": str(backlog),
        }
        try:
            self._run(env)
        except Exception as exc:
            log.error("retry.alert_command could not be started: %s", exc)

    def _spawn(self, details: dict[str, str]) -> None:
        """Start the command via the shell; a helper thread, "alert-command", reaps it.

        Delivery never waits for the command; one still running after
        ``ALERT_COMMAND_TIMEOUT_S`` is killed. Raises OSError when it cannot be started.
        """
        proc = subprocess.Popen(
            self._command,
            shell=True,
            env=alert_environment(details),
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        threading.Thread(target=_reap, args=(proc,), name="alert-command", daemon=True).start()


def _reap(proc: subprocess.Popen[bytes]) -> None:
    try:
        code = proc.wait(ALERT_COMMAND_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        log.warning(
            "retry.alert_command still running after %.0f s; killed", ALERT_COMMAND_TIMEOUT_S
        )
        return
    if code != 0:
        log.warning("retry.alert_command exited with status %d", code)


def alert_environment(details: Mapping[str, str]) -> dict[str, str]:
    """The alert command's environment: ``details`` over the few variables a shell needs."""
    env = {k: v for k, v in os.environ.items() if k in ALERT_ENV_KEEP}
    env.setdefault("PATH", "/usr/local/bin:/usr/bin:/bin")
    return {**env, **details}
