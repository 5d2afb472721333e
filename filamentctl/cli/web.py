"""``filamentctl web``: the web dashboard and HTTP API. aiohttp is imported only when it runs."""

from __future__ import annotations

import typer

from filamentctl.cli.common import ctx_of, examples


def register(app: typer.Typer) -> None:
    app.command(
        short_help="Serve the web dashboard and HTTP API (a gateway of the service).",
        epilog=examples(
            "filamentctl web                              # http://127.0.0.1:8780/ on this machine",
            "filamentctl web --listen 0.0.0.0:8780        # the whole network (needs web.token)",
        ),
    )(web)


def web(
    ctx: typer.Context,
    listen: str | None = typer.Option(
        None,
        "--listen",
        metavar="ADDRESS",
        help="Address to serve on (default: the web.listen setting, 127.0.0.1:8780).",
    ),
) -> None:
    """Serve the web dashboard and HTTP API for the running service, in the foreground.

    A gateway: a client of the service's socket like the terminal dashboard. It reads its
    web.* settings from the service (so run it as the service's user; its systemd unit,
    installed by `service install` when web.enabled is true, does). Reading needs the token
    unless it listens on loopback; switching always needs it. A non-loopback address
    without web.token is refused (exit 2). docs/web.md has the API and the security model;
    `ssh -L 8780:127.0.0.1:8780 pi@drybox` reaches a loopback gateway from a laptop.
    """
    from filamentctl.gateways.web.main import run
    from filamentctl.service import logs

    c = ctx_of(ctx)
    logs.setup("info", "text", c.debug)
    raise typer.Exit(run(listen, c.socket, c.debug))
