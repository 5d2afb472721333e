"""The web gateway: a dashboard page and an HTTP API for the box (``filamentctl web``).

A separate process and a client of the service's socket like the terminal dashboard: it gets its
``web.*`` settings from the service (``gateway.settings``), holds a live ``subscribe`` stream
(:class:`filamentctl.link.ServiceLink`) and relays every command as the same socket operation the
CLI uses, so every safety rule applies.

Modules: ``options`` (settings, listen address, request validation; pure), ``auth`` (token
comparison, browser sessions, failed-login throttle; pure, time passed in), ``hub`` (fan-out of
events to the browsers' event streams), ``server`` (the aiohttp application; aiohttp is imported
only here), ``main`` (start-up checks and the process around the server), ``static/`` (the page:
plain HTML, CSS and JavaScript, no build step).
"""
