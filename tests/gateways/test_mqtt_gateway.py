"""The Home Assistant gateway end to end: a real Mosquitto broker, a real simulated service
(``filamentctl run --simulate``), the real gateway process (``filamentctl mqtt``) and a real
paho subscriber standing in for Home Assistant.

Each test keeps to its own base topic (hence its own discovery node id) on the shared broker;
the broker-restart test gets a broker of its own.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest

from tests.conftest import MQTT_PASSWORD, MQTT_USER
from tests.gateways.mqtt_helpers import (
    GatewayProcess,
    MqttProbe,
    box,
    mqtt_env,
    node_id,
    status,
)
from tests.helpers import ServiceProcess, wait_until
from tests.servers import MosquittoServer, OpenBaoServer


class Box:
    """A service + gateway pair with its topics; stopped and removed by the fixture."""

    def __init__(self, base: str, service: ServiceProcess, gateway: GatewayProcess) -> None:
        self.base = base
        self.node = node_id(base)
        self.service = service
        self.gateway = gateway
        self.availability = f"{base}/availability"
        self.state = f"{base}/state"
        self.control = f"{base}/control"
        self.heater_mode = f"{base}/heater/mode/set"

    def config_filter(self, prefix: str = "homeassistant") -> str:
        return f"{prefix}/+/{self.node}/+/config"


@pytest.fixture
def boxes() -> Iterator[list[Box]]:
    made: list[Box] = []
    yield made
    for b in made:
        b.gateway.stop()
        b.service.cleanup()


def start_box(boxes: list[Box], url: str, name: str, *gateway_args: str, **env: str) -> Box:
    """A service and its gateway with the base topic fc/NAME and the client id NAME."""
    base = f"fc/{name}"
    env.setdefault("FILAMENTCTL_MQTT__CLIENT_ID", name)
    service = box(mqtt_env(url, base, **env))
    gateway = GatewayProcess(service, *gateway_args)
    made = Box(base, service, gateway)
    boxes.append(made)
    gateway.start()
    return made


def online(m: Any) -> bool:
    return bool(m.payload == "online")


def offline(m: Any) -> bool:
    return bool(m.payload == "offline")


def test_discovery_configs_and_the_simulated_reading_reach_home_assistant(
    mosquitto_server: MosquittoServer, boxes: list[Box], unique_name: str
) -> None:
    b = start_box(boxes, mosquitto_server.url, unique_name)
    with MqttProbe(mosquitto_server.port, b.availability, b.state) as first:
        first.wait_for(b.availability, online)
        first.wait_for(b.state)  # a first reading: it tells the gateway the sensor has pressure
    out = b.service.cli("sim", "set", "--temperature", "20", "--humidity", "33.3")
    assert out.returncode == 0, out.stderr

    # A subscriber that arrives later (Home Assistant restarting) still gets everything: the
    # discovery configs and the state are retained.
    with MqttProbe(mosquitto_server.port, "homeassistant/#", f"{b.base}/#") as ha:
        reading = ha.wait_for(
            b.state, lambda m: m.json()["temperature_c"] == 20.0 and m.json()["humidity"] == 33.3
        ).json()
        ha.sync(f"{b.base}/sync")
        configs = {
            m.topic: m.json()
            for m in ha.messages
            if m.topic.startswith("homeassistant/") and re.search(f"/{b.node}/", m.topic)
        }
        retained = {m.topic for m in ha.messages if m.retain}

    assert reading["dew_point_c"] is not None and reading["absolute_humidity_g_m3"] is not None
    assert reading["backlog"] == 0 and reading["reading_age_s"] >= 0
    expected = {
        f"homeassistant/{component}/{b.node}/{obj}/config"
        for component, obj in [
            ("sensor", "temperature"),
            ("sensor", "humidity"),
            ("sensor", "dew_point"),
            ("sensor", "absolute_humidity"),
            ("sensor", "pressure"),  # the simulated sensor is a BME280-like one
            ("sensor", "reading_age"),
            ("sensor", "backlog"),
            ("binary_sensor", "heater"),
            ("binary_sensor", "fan"),
            ("binary_sensor", "fault"),
            ("select", "heater_mode"),
            ("select", "fan_mode"),
            ("button", "heater_reset"),
        ]
    }
    assert set(configs) == expected
    assert expected <= retained and b.state in retained and b.availability in retained

    temperature = configs[f"homeassistant/sensor/{b.node}/temperature/config"]
    humidity = configs[f"homeassistant/sensor/{b.node}/humidity/config"]
    assert (temperature["device_class"], temperature["unit_of_measurement"]) == (
        "temperature",
        "°C",
    )
    assert (humidity["device_class"], humidity["unit_of_measurement"]) == ("humidity", "%")
    assert temperature["state_class"] == humidity["state_class"] == "measurement"
    assert temperature["state_topic"] == b.state
    heater_mode = configs[f"homeassistant/select/{b.node}/heater_mode/config"]
    assert heater_mode["command_topic"] == b.heater_mode
    assert heater_mode["options"] == ["auto", "on", "off"]
    assert configs[f"homeassistant/binary_sensor/{b.node}/fault/config"]["device_class"] == (
        "problem"
    )

    unique_ids = [c["unique_id"] for c in configs.values()]
    assert len(set(unique_ids)) == len(unique_ids)
    for config in configs.values():
        assert config["availability_topic"] == b.availability
        assert config["device"]["identifiers"] == [b.node]
        assert config["device"]["sw_version"] and config["device"]["name"]
        # Every template picks a field that the message it reads really has.
        for field in re.findall(r"value_json\.(\w+)", config.get("value_template", "")):
            source = reading if config["state_topic"] == b.state else None
            if source is not None:
                assert field in source, (config["name"], field)

    # Nothing but the three command topics is listened to.
    subscribed = re.findall(
        rf"^\d+: {re.escape(unique_name)} \d+ (\S+)$", mosquitto_server.log(), re.MULTILINE
    )
    assert sorted(set(subscribed)) == sorted(
        [b.heater_mode, f"{b.base}/fan/mode/set", f"{b.base}/heater/reset"]
    )


HEATER_ENV = {
    "FILAMENTCTL_HEATER__ENABLED": "true",
    "FILAMENTCTL_HEATER__MIN_CYCLE_S": "0",
    # The simulator jumps straight to a pinned temperature: let the filter accept that jump.
    "FILAMENTCTL_SENSOR__MAX_JUMP_C": "100",
}


def test_heater_on_from_home_assistant_switches_the_service_heater_to_manual_on(
    mosquitto_server: MosquittoServer, boxes: list[Box], unique_name: str
) -> None:
    b = start_box(boxes, mosquitto_server.url, unique_name, **HEATER_ENV)
    with MqttProbe(mosquitto_server.port, f"{b.base}/#") as ha:
        ha.wait_for(b.availability, online)
        ha.wait_for(b.state)  # a first reading: before it, the service refuses a manual ON
        ha.wait_for(b.control, lambda m: m.json()["heater"]["mode"] == "auto")
        ha.publish(b.heater_mode, "on")
        ha.wait_for(
            b.control, lambda m: m.json()["heater"]["on"] and m.json()["heater"]["mode"] == "on"
        )
    heater = status(b.service)["heater"]
    assert (heater["on"], heater["mode"], heater["override"]) == (True, "manual", "on")
    assert "Home Assistant: heater on" in b.gateway.log()


def test_heater_on_during_a_latched_fault_is_refused_and_the_state_stays_off(
    mosquitto_server: MosquittoServer, boxes: list[Box], unique_name: str
) -> None:
    b = start_box(boxes, mosquitto_server.url, unique_name, **HEATER_ENV)
    out = b.service.cli("sim", "set", "--temperature", "65")  # above the 60 °C cutoff
    assert out.returncode == 0, out.stderr
    wait_until(lambda: status(b.service)["heater"]["latched"], what="a latched heater fault")
    with MqttProbe(mosquitto_server.port, f"{b.base}/#") as ha:
        latched = ha.wait_for(b.control, lambda m: m.json()["fault"])
        seen = len(ha.on(b.control))
        ha.publish(b.heater_mode, "on")
        # The refusal makes the gateway publish the real state again: the select goes back.
        after = ha.wait_for(b.control, after=seen)
    assert latched.json()["heater"]["state"] == "fault"
    assert after.json()["heater"]["on"] is False
    assert after.json()["heater"]["mode"] == "auto"
    assert after.json()["fault"] is True
    assert all(not m.json()["heater"]["on"] for m in ha.on(b.control))
    assert status(b.service)["heater"]["on"] is False
    log = b.gateway.log()
    assert "Home Assistant asked for heater on; the service refused: heater is latched" in log


def test_killing_the_gateway_publishes_offline_through_the_last_will(
    mosquitto_server: MosquittoServer, boxes: list[Box], unique_name: str
) -> None:
    b = start_box(boxes, mosquitto_server.url, unique_name)
    with MqttProbe(mosquitto_server.port, b.availability) as ha:
        ha.wait_for(b.availability, online)
        seen = len(ha.on(b.availability))
        b.gateway.kill9()
        ha.wait_for(b.availability, offline, after=seen)
    # Retained: Home Assistant starting later still sees the box as unavailable.
    with MqttProbe(mosquitto_server.port, b.availability) as late:
        assert late.wait_for(b.availability).retain
        assert late.last(b.availability).payload == "offline"  # type: ignore[union-attr]


def test_availability_follows_the_service_going_away_and_coming_back(
    mosquitto_server: MosquittoServer, boxes: list[Box], unique_name: str
) -> None:
    b = start_box(boxes, mosquitto_server.url, unique_name)
    with MqttProbe(mosquitto_server.port, b.availability) as ha:
        ha.wait_for(b.availability, online)
        seen = len(ha.on(b.availability))
        b.service.stop()
        ha.wait_for(b.availability, offline, after=seen)
        assert b.gateway.alive  # the gateway stays up and waits for the service
        seen = len(ha.on(b.availability))
        b.service.start()
        ha.wait_for(b.availability, online, after=seen, timeout=40)
    assert "lost the service" in b.gateway.log()


def test_a_broker_restart_is_survived(boxes: list[Box], unique_name: str) -> None:
    with MosquittoServer() as broker:
        b = start_box(boxes, broker.url, unique_name)
        with MqttProbe(broker.port, b.availability) as ha:
            ha.wait_for(b.availability, online)
        broker.stop()  # no persistence: every retained message is gone
        wait_until(lambda: "lost the MQTT broker" in b.gateway.log(), what="the loss logged")
        broker.start()
        with MqttProbe(broker.port, "homeassistant/#", b.availability) as ha:
            ha.wait_for(b.availability, online, timeout=40)
            ha.wait_for(f"homeassistant/sensor/{b.node}/temperature/config")
        assert b.gateway.alive
        assert "connected to the MQTT broker" in b.gateway.log().split("lost the MQTT broker")[1]


def test_a_wrong_password_is_one_clear_log_line_and_retries_with_backoff(
    mosquitto_secure: MosquittoServer, boxes: list[Box], unique_name: str
) -> None:
    wrong = "not-the-password-7f3a"
    refusal = "disconnected, not authorised"  # the broker names no client it refused
    before = mosquitto_secure.log().count(refusal)
    b = start_box(
        boxes,
        mosquitto_secure.url,
        unique_name,
        FILAMENTCTL_MQTT__USERNAME=MQTT_USER,
        FILAMENTCTL_MQTT__PASSWORD=wrong,
    )

    def attempts() -> int:
        return mosquitto_secure.log().count(refusal) - before

    # Backoff 1 s, 2 s, 4 s ...: three attempts arrive within a few seconds, not hundreds.
    wait_until(lambda: attempts() >= 3, timeout=30, what="three connection attempts")
    assert b.gateway.alive, b.gateway.log()
    log = b.gateway.log()
    refused = [line for line in log.splitlines() if "refused the connection" in line]
    assert len(refused) == 1, log
    assert "Not authorized (check mqtt.username and mqtt.password)" in refused[0]
    assert "retrying with backoff" in refused[0]
    assert wrong not in log
    assert attempts() < 10  # backing off, not hammering the broker


def test_password_and_tls_work_and_no_secret_reaches_the_log(
    mosquitto_secure: MosquittoServer, boxes: list[Box], unique_name: str
) -> None:
    assert mosquitto_secure.tls_url is not None and mosquitto_secure.tls_port is not None
    b = start_box(
        boxes,
        mosquitto_secure.tls_url,
        unique_name,
        "--debug",
        FILAMENTCTL_MQTT__USERNAME=MQTT_USER,
        FILAMENTCTL_MQTT__PASSWORD=MQTT_PASSWORD,
        FILAMENTCTL_MQTT__TLS_CA_FILE=str(mosquitto_secure.tls.ca_file),
    )
    with MqttProbe(
        mosquitto_secure.tls_port,
        f"{b.base}/#",
        username=MQTT_USER,
        password=MQTT_PASSWORD,
        ca_file=mosquitto_secure.tls.ca_file,
    ) as ha:
        ha.wait_for(b.availability, online)
        ha.wait_for(b.state, lambda m: m.json()["temperature_c"] is not None)
    log = b.gateway.log()
    assert f"connected to the MQTT broker at {mosquitto_secure.tls_url}" in log
    assert MQTT_PASSWORD not in log
    assert MQTT_PASSWORD not in b.service.log()


def test_a_vault_reference_as_password_is_resolved_by_the_service(
    mosquitto_secure: MosquittoServer,
    openbao_server: OpenBaoServer,
    boxes: list[Box],
    unique_name: str,
) -> None:
    """mqtt.password = vault:MOUNT/PATH#FIELD: the service reads Vault, the gateway gets the
    password over the socket and never sees Vault (its environment has no VAULT_*)."""
    openbao_server.api("POST", f"secret/data/{unique_name}", {"data": {"pw": MQTT_PASSWORD}})
    b = start_box(
        boxes,
        mosquitto_secure.url,
        unique_name,
        FILAMENTCTL_MQTT__USERNAME=MQTT_USER,
        FILAMENTCTL_MQTT__PASSWORD=f"vault:secret/{unique_name}#pw",
        VAULT_ADDR=openbao_server.url,
        VAULT_TOKEN=openbao_server.token,
    )
    wait_until(lambda: "connected to the MQTT broker" in b.gateway.log(), timeout=30)
    assert MQTT_PASSWORD not in b.gateway.log() + b.service.log()


def test_an_untrusted_broker_certificate_is_named_in_the_log(
    mosquitto_secure: MosquittoServer, boxes: list[Box], unique_name: str
) -> None:
    assert mosquitto_secure.tls_url is not None
    b = start_box(
        boxes,
        mosquitto_secure.tls_url,
        unique_name,
        FILAMENTCTL_MQTT__USERNAME=MQTT_USER,
        FILAMENTCTL_MQTT__PASSWORD=MQTT_PASSWORD,
    )  # no mqtt.tls_ca_file: the system CAs do not know the test CA
    wait_until(lambda: "cannot connect to the MQTT broker" in b.gateway.log(), timeout=30)
    line = next(x for x in b.gateway.log().splitlines() if "cannot connect" in x)
    assert ": TLS: " in line and "check mqtt.tls_ca_file" in line, line
    assert b.gateway.alive


def test_remove_discovery_clears_the_retained_messages(
    mosquitto_server: MosquittoServer, boxes: list[Box], unique_name: str
) -> None:
    b = start_box(boxes, mosquitto_server.url, unique_name)
    with MqttProbe(mosquitto_server.port, b.config_filter(), b.availability) as ha:
        ha.wait_for(f"homeassistant/sensor/{b.node}/temperature/config")
        ha.wait_for(b.availability, online)
        seen = len(ha.on(b.availability))
        assert b.gateway.stop() == 0
        # A clean stop is not a death: the gateway says offline itself.
        ha.wait_for(b.availability, offline, after=seen)

    out = b.service.cli("mqtt", "--remove-discovery")
    assert out.returncode == 0, out.stderr
    assert "cleared" in out.stdout

    with MqttProbe(mosquitto_server.port, b.config_filter(), f"{b.base}/#") as late:
        late.sync(f"{b.base}/sync")
        leftovers = [m.topic for m in late.messages if m.retain]
    assert leftovers == []


def test_remove_discovery_without_a_service_exits_3(tmp_path: Any) -> None:
    service = ServiceProcess(home=tmp_path)
    out = service.cli("mqtt", "--remove-discovery")
    assert out.returncode == 3
    assert out.stderr.startswith("filamentctl: no filamentctl service is running")
    assert len(out.stderr.strip().splitlines()) == 1


def test_a_disabled_gateway_exits_2_with_one_line(
    mosquitto_server: MosquittoServer, boxes: list[Box], unique_name: str
) -> None:
    b = start_box(boxes, mosquitto_server.url, unique_name, FILAMENTCTL_MQTT__ENABLED="false")
    assert b.gateway.proc is not None
    assert b.gateway.proc.wait(timeout=30) == 2
    last = b.gateway.log().strip().splitlines()[-1]
    assert last.startswith("filamentctl: the MQTT gateway is disabled (mqtt.enabled is false)")


def test_sighup_makes_the_gateway_take_changed_settings_from_the_service(
    mosquitto_server: MosquittoServer, boxes: list[Box], unique_name: str
) -> None:
    """`config set mqtt.base_topic` + `systemctl reload filamentctl-mqtt` (SIGHUP): the gateway
    asks the service again and moves to the new topics; the old ones say offline."""
    import signal

    service = ServiceProcess(env={"FILAMENTCTL_SENSOR__READ_INTERVAL": "0.2"})
    old, new = f"fc/{unique_name}-a", f"fc/{unique_name}-b"
    for args in (
        ("init",),
        ("set", "mqtt.enabled", "true"),
        ("set", "mqtt.url", mosquitto_server.url),
        ("set", "mqtt.client_id", unique_name),
        ("set", "mqtt.base_topic", old),
    ):
        out = service.cli("config", *args)
        assert out.returncode == 0, out.stderr
    service.start()
    gateway = GatewayProcess(service)
    boxes.append(Box(old, service, gateway))
    gateway.start()
    with MqttProbe(mosquitto_server.port, f"{old}/availability", f"{new}/availability") as ha:
        ha.wait_for(f"{old}/availability", online)
        out = service.cli("config", "set", "mqtt.base_topic", new)  # the service reloads it
        assert out.returncode == 0, out.stderr
        assert gateway.proc is not None
        gateway.proc.send_signal(signal.SIGHUP)
        ha.wait_for(f"{new}/availability", online)
        ha.wait_for(f"{old}/availability", offline)
    assert "the MQTT settings changed: reconnecting to the broker" in gateway.log()


def test_a_user_other_than_the_services_gets_exit_4_and_one_line(tmp_path: Any) -> None:
    """The gateway needs its settings (with the password) from the service, which hands them
    only to root and its own user: anyone else in the socket's group is refused."""
    import os
    import subprocess
    import sys

    from tests.helpers import REPO, in_process_service, need_another_user, settings

    need_another_user()
    with in_process_service(settings(sensor__read_interval=0.1)) as service:
        sock = service.paths.socket
        for d in (sock.parent, sock.parent.parent):  # as a member of the service's group
            os.chmod(d, 0o755)
        os.chmod(sock, 0o666)
        env = {**os.environ}
        env.update(FILAMENTCTL_SOCKET=str(sock), HOME=str(tmp_path))
        os.chmod(tmp_path, 0o777)
        out = subprocess.run(
            ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
            + [sys.executable, "-m", "filamentctl", "mqtt"],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            cwd=REPO,
        )
    assert out.returncode == 4, out.stderr
    assert out.stderr.strip().splitlines() == [
        "filamentctl: cannot run the MQTT gateway: only root or the service's own user may read "
        "a gateway's settings; run the gateway as the service user (its systemd unit does)"
    ]
