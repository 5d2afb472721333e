"""The Home Assistant gateway: the box's readings, relays and commands over MQTT discovery.

A separate process (``filamentctl mqtt``, unit ``filamentctl-mqtt``) that is a client of the
service's socket like the dashboard: it gets its ``mqtt.*`` settings from the service
(``gateway.settings``), follows the service's events through :class:`~filamentctl.link.ServiceLink`
and turns Home Assistant's commands into the same socket requests as ``filamentctl heater``, so
every safety rule applies. ``settings`` parses the settings, ``discovery`` builds every message
(pure), ``gateway`` runs the MQTT client (paho-mqtt, imported only there).
"""
