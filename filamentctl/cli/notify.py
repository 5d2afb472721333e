"""``filamentctl notify test``: check that notifications reach you.

Through the running service when there is one (the ``notify.test`` socket op: the service's own
settings, Vault access and network, so what works here works for a real alarm), else directly
from this process with the stored configuration. Apprise loads only in whichever sends.
"""

from __future__ import annotations

import sys
from typing import Any

import typer

from filamentctl.cli.common import call, examples, print_json
from filamentctl.errors import EXIT_FAILED, ConfigError, ServiceNotRunning

app = typer.Typer(
    help="Notifications to your phone through Apprise (ntfy, Telegram, Pushover, e-mail, "
    "Home Assistant, ...).",
    short_help="Notifications to your phone (Apprise): test them.",
    epilog=examples("filamentctl notify test"),
    no_args_is_help=True,
)

# A test message takes at most Apprise's timeouts (4 s connect + 4 s read) per URL.
TEST_TIMEOUT_S = 200.0


@app.command(
    short_help="Send a test message to every notify URL and report each result.",
    epilog=examples(
        "filamentctl notify test",
        "filamentctl notify test --json | jq '.results[] | select(.ok | not)'",
    ),
)
def test(
    ctx: typer.Context,
    json_: bool = typer.Option(False, "--json", help="Print one JSON document (for scripts)."),
) -> None:
    """Send a test message to every URL in notify.urls and report each result.

    Goes through the running service when there is one (its settings, Vault access and
    network), else sends directly. Exit 1 if any URL failed, 2 if notify.urls is empty.
    """
    try:
        result: dict[str, Any] = call(ctx, "notify.test", timeout=TEST_TIMEOUT_S)
    except ServiceNotRunning:
        result = _send_directly()
    if not result.get("configured", True):
        raise ConfigError(
            "no notification URLs: notify.urls is empty; set them with "
            "`filamentctl config set notify.urls -` (see docs/notifications.md)"
        )
    results = list(result.get("results") or [])
    ok = all(r.get("ok") for r in results)
    if json_:
        print_json({**result, "ok": ok})
    else:
        via = "through the running service" if result.get("via") == "service" else "directly"
        sys.stdout.write(f"test notification from box '{result.get('box')}', sent {via}:\n")
        for r in results:
            line = "delivered" if r.get("ok") else f"FAILED: {r.get('error')}"
            sys.stdout.write(f"  target {r.get('name')}: {line}\n")
    if not ok:
        failed = sum(1 for r in results if not r.get("ok"))
        if not json_:
            sys.stderr.write(
                f"filamentctl: {failed} of {len(results)} notification target(s) failed; check "
                "each URL (`filamentctl config set notify.urls -`) and the network\n"
            )
        raise typer.Exit(EXIT_FAILED)


def _send_directly() -> dict[str, Any]:
    """No service runs: send from here, with the stored configuration (Vault resolved)."""
    from filamentctl import paths as _paths
    from filamentctl.service.notify import send_test
    from filamentctl.store.settings import load_settings

    settings = load_settings(check_rules=False)
    box = _paths.box_name()
    if not str(settings["notify.urls"] or "").strip():
        return {"box": box, "via": "direct", "configured": False, "results": []}
    results = send_test(settings, box, "directly by `filamentctl notify test`")
    return {"box": box, "via": "direct", "configured": True, "results": results}
