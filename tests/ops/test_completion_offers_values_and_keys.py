"""The shipped completions complete values, not just commands: the choices of an option, the
configuration keys (``config get heater.<TAB>``) and, in ``config set KEY VALUE``, the values
a key allows. Each shell drives the real script by its own means: bash through COMP_WORDS and
the completion function, fish through ``complete -C``, zsh interactively in a terminal (tmux).
"""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import Iterator

import pytest

from filamentctl.cli.data import HistoryFormat
from filamentctl.cli.sim import Fault
from filamentctl.core import schema
from tests.helpers import wait_until
from tests.ops.test_generated_docs import REPO, bash_complete, need

HEATER_KEYS = sorted(n for n in schema.SCHEMA if n.startswith("heater."))


# -- bash ---------------------------------------------------------------------------------------


def test_bash_completes_config_keys_by_prefix() -> None:
    assert sorted(bash_complete("config", "get", "heater.")) == HEATER_KEYS
    assert "heater.min_temp_c" in bash_complete("config", "unset", "heater.min")
    assert bash_complete("config", "set", "sensor.ty") == ["sensor.type"]


def test_bash_completes_option_choices() -> None:
    assert bash_complete("history", "--format", "") == [f.value for f in HistoryFormat]
    assert bash_complete("history", "-f", "c") == ["csv"]
    assert bash_complete("sim", "set", "--fault", "") == [f.value for f in Fault]
    assert bash_complete("flush", "--dead-letter", "") == ["list", "replay", "purge"]
    assert bash_complete("run", "--log-format", "j") == ["json"]


def test_bash_completes_values_then_keys_in_config_set_pairs() -> None:
    assert bash_complete("config", "set", "sensor.type", "") == list(
        schema.SCHEMA["sensor.type"].choices
    )
    assert bash_complete("config", "set", "heater.enabled", "") == ["true", "false"]
    # After a pair (a negative value included), the next word is a key again.
    assert "heater.max_temp_c" in bash_complete(
        "config", "set", "sensor.temperature_offset", "-1.5", "heater.max"
    )
    assert bash_complete("config", "set", "heater.min_temp_c", "") == []  # a number: no guess


def test_bash_completes_file_names_for_path_options_and_arguments() -> None:
    assert "completions" in bash_complete("config", "import", "complet")
    assert "completions" in bash_complete("config", "export", "-o", "complet")


# -- fish ---------------------------------------------------------------------------------------


def fish_complete(line: str) -> list[str]:
    """What fish offers for ``line`` (the part before each tab: the candidate itself)."""
    fish = need("fish")
    script = f"source {REPO / 'completions' / 'filamentctl.fish'}; complete -C {_fish_str(line)}"
    proc = subprocess.run(
        [fish, "--no-config", "-c", script], capture_output=True, text=True, check=True, cwd=REPO
    )
    return [row.split("\t", 1)[0] for row in proc.stdout.splitlines() if row]


def _fish_str(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def test_fish_completes_keys_choices_and_pair_values() -> None:
    assert sorted(fish_complete("filamentctl config get heater.")) == HEATER_KEYS
    assert sorted(fish_complete("filamentctl history --format ")) == ["csv", "json", "table"]
    assert sorted(fish_complete("filamentctl sim set --fault ")) == sorted(f.value for f in Fault)
    assert sorted(fish_complete("filamentctl config set heater.enabled ")) == ["false", "true"]
    assert "heater.min_temp_c" in fish_complete(
        "filamentctl config set sensor.temperature_offset -1.5 heater.min"
    )


def test_fish_offers_files_only_where_a_file_goes() -> None:
    assert "completions/" in fish_complete("filamentctl config import complet")
    assert fish_complete("filamentctl history --since complet") == []


# -- zsh ----------------------------------------------------------------------------------------


class ZshTerminal:
    """An interactive ``zsh -f`` in a private tmux server, with the shipped completion loaded."""

    def __init__(self) -> None:
        tmux = need("tmux")
        need("zsh")
        self.base = [tmux, "-L", f"fc-zsh-{uuid.uuid4().hex[:8]}", "-f", "/dev/null"]
        subprocess.run(
            [*self.base, "new-session", "-d", "-s", "z", "-x", "150", "-y", "40"]
            + ["env", "-u", "COLUMNS", "-u", "LINES", "PS1=%% ", "zsh", "-f"],
            check=True,
            cwd=REPO,
        )
        self.type(
            f"fpath=({REPO / 'completions'} $fpath); autoload -U compinit; compinit -u -D; "
            "PS1='zsh> '",
            "Enter",
        )
        wait_until(lambda: self.screen().rstrip().endswith("zsh>"), what="the zsh prompt")

    def type(self, *keys: str) -> None:
        subprocess.run([*self.base, "send-keys", "-t", "z", *keys], check=True)

    def screen(self) -> str:
        out = subprocess.run(
            [*self.base, "capture-pane", "-p", "-t", "z"], capture_output=True, text=True
        )
        return out.stdout

    def complete(self, line: str, expected: str) -> str:
        """Type ``line``, press TAB, and return the screen once ``expected`` is on it."""
        # Empty the line and clear the screen with zle's own keys (no interrupt, no command
        # that could race with typing).
        self.type("C-u", "C-l")
        wait_until(lambda: self.screen().strip() == "zsh>", what="a clear prompt")
        self.type(line, "Tab")
        wait_until(lambda: expected in self.screen(), what=f"{expected!r} after {line!r}<TAB>")
        return self.screen()

    def close(self) -> None:
        subprocess.run([*self.base, "kill-server"], capture_output=True, check=False)


@pytest.fixture
def zsh() -> Iterator[ZshTerminal]:
    term = ZshTerminal()
    try:
        yield term
    except BaseException:
        print("--- last zsh screen ---\n" + term.screen())
        raise
    finally:
        term.close()


def test_zsh_completes_a_key_prefix_and_lists_the_heater_keys(zsh: ZshTerminal) -> None:
    # A unique prefix completes in place; an ambiguous one lists the keys with their help.
    zsh.complete("filamentctl config get heater.min_t", "config get heater.min_temp_c")
    screen = zsh.complete("filamentctl config get heater.", "heater.min_temp_c")
    assert "heater.max_temp_c" in screen and "Heater turns on below this temperature" in screen


def test_zsh_completes_choices_and_pair_values(zsh: ZshTerminal) -> None:
    screen = zsh.complete("filamentctl history --format ", "table")
    assert "csv" in screen and "json" in screen and "README.md" not in screen
    line = "filamentctl config set sensor.temperature_offset -1.5 sensor.type "
    screen = zsh.complete(line, "simulated")
    assert "bme280" in screen and "dht22" in screen
    zsh.complete("filamentctl sim set --fault sta", "--fault stale")
