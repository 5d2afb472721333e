"""User-facing errors: one line (what failed, why, what to do) and the exit code to use."""

from __future__ import annotations

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_NOT_RUNNING = 3
EXIT_PERMISSION = 4


class UserError(Exception):
    """An error the CLI prints as one line on stderr and turns into ``exit_code``."""

    exit_code = EXIT_FAILED

    def __init__(self, message: str, exit_code: int | None = None) -> None:
        super().__init__(message)
        if exit_code is not None:
            self.exit_code = exit_code


class UsageError(UserError):
    exit_code = EXIT_USAGE


class ConfigError(UserError):
    """Invalid configuration value, unknown key, or cross-field rule broken."""

    exit_code = EXIT_USAGE


class ConfigDecryptError(UserError):
    """The configuration exists but cannot be decrypted with the key found."""

    exit_code = EXIT_FAILED


class ServiceNotRunning(UserError):
    exit_code = EXIT_NOT_RUNNING


class PermissionDenied(UserError):
    exit_code = EXIT_PERMISSION
