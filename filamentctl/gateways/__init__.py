"""Gateways: separate processes that bring the box to another ecosystem (web, MQTT).

A gateway is a client of the service's socket like the dashboard: it holds no GPIO, no
configuration key and no history of its own, and every command it relays goes through the same
socket operation and safety rules as the CLI. Each gateway is a subpackage importing only
``client``/``link``/``protocol``/``core`` and the like (an import-linter contract checks it).
"""
