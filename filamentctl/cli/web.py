"""``filamentctl web``: the web dashboard and HTTP API. aiohttp is imported only when it runs."""

from __future__ import annotations

import typer

from filamentctl.cli.common import ctx_of


def register(app: typer.Typer) -> None:
    app.command()(web)


def web(
    ctx: typer.Context,
    listen: str | None = typer.Option(
        None,
        "--listen",
        metavar="ADDR:PORT",
        help="Address to serve on (default: the web.listen setting, 127.0.0.1:8780).",
    ),
) -> None:
    """Serve the web dashboard and HTTP API for the running service, in the foreground.

    A gateway: a client of the service's socket like the terminal dashboard. It reads its
    web.* settings from the service (so run it as the service's user; its systemd unit,
    installed by `service install` when web.enabled is true, does). Reading needs the token
    unless it listens on loopback; switching always needs it. A non-loopback address
    without web.token is refused (exit 2). docs/web.md has the API and the security model.

    Examples: `filamentctl web` serves http://127.0.0.1:8780/ on this machine;
    `filamentctl config set web.token` sets the token (it prompts), which switching needs;
    `filamentctl web --listen 0.0.0.0:8780` then serves the whole network; and
    `ssh -L 8780:127.0.0.1:8780 pi@drybox` reaches a loopback gateway from your laptop.
    """
    from filamentctl.gateways.web.main import run
    from filamentctl.service import logs

    c = ctx_of(ctx)
    logs.setup("info", "text", c.debug)
    raise typer.Exit(run(listen, c.socket, c.debug))
