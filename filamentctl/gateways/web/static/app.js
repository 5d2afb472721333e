// filamentctl web dashboard: plain JavaScript, no build step, no inline script (CSP).
// Data: /api/session (who am I), /api/events (server-sent events: status, reading, relay, ...),
// /api/status (refreshed on relay/sensor/storage events), /api/history (the chart).
"use strict";

(() => {
  const $ = (id) => document.getElementById(id);
  const SVG = "http://www.w3.org/2000/svg";
  const RELAYS = ["heater", "fan"];
  const CHART_POINTS = 360; // per range: more than a phone is wide, a fraction of a full history
  const REFRESH_MS = 15000; // status (backlog, uptime) between events

  const state = {
    session: null,
    status: null,
    reading: null,
    readingAge: null, // s, when received
    readingAt: 0, // performance.now() when received
    lastSeq: -1,
    range: 3600,
    step: 10,
    points: [], // {t: ms since epoch (box clock), temperature_c, humidity, n}
    gatewayUp: null,
    locked: false, // reading needs a login
    service: { connected: null, reason: null, retry_in_s: null },
    stream: null,
    retryMs: 1000,
    retryTimer: null,
    refreshTimer: null,
    chartTimer: null,
  };

  // -- formatting ---------------------------------------------------------------------------
  const num = (v, digits = 1) => (typeof v === "number" && Number.isFinite(v) ? v.toFixed(digits) : "—");
  const withUnit = (v, unit, digits = 1) => (num(v, digits) === "—" ? "—" : `${num(v, digits)} ${unit}`);

  function duration(s) {
    if (typeof s !== "number" || !Number.isFinite(s)) return "—";
    s = Math.max(0, s);
    if (s < 10) return `${s.toFixed(1)} s`;
    if (s < 90) return `${Math.round(s)} s`;
    if (s < 5400) return `${Math.round(s / 60)} min`;
    if (s < 172800) return `${(s / 3600).toFixed(1)} h`;
    return `${(s / 86400).toFixed(1)} d`;
  }

  function clock(ms) {
    return new Date(ms).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
  }

  function setText(id, text) {
    const el = $(id);
    if (el && el.textContent !== text) el.textContent = text;
  }

  function announce(text) {
    setText("announce", text);
  }

  // -- API ----------------------------------------------------------------------------------
  async function api(path, options = {}) {
    const headers = { Accept: "application/json" };
    const init = { method: options.method || "GET", headers, credentials: "same-origin", cache: "no-store" };
    if (options.body !== undefined) {
      headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(options.body);
    }
    if (init.method !== "GET" && state.session && state.session.csrf_token) {
      headers["X-CSRF-Token"] = state.session.csrf_token;
    }
    const res = await fetch(path, init);
    let data = null;
    try {
      data = await res.json();
    } catch (_) {
      data = null;
    }
    if (!res.ok) {
      const err = new Error(data && data.error ? data.error.message : `${res.status} ${res.statusText}`);
      err.status = res.status;
      err.code = data && data.error ? data.error.code : null;
      throw err;
    }
    return data;
  }

  // -- connection state ---------------------------------------------------------------------
  function renderConnection() {
    // gatewayUp / service.connected: null = not known yet (no banner while connecting).
    let text = "live";
    let dot = "live";
    let banner = "";
    if (state.locked) {
      text = "log in to see the box";
      dot = "connecting";
    } else if (state.gatewayUp === null || (state.gatewayUp && state.service.connected === null)) {
      text = "connecting…";
      dot = "connecting";
    } else if (!state.gatewayUp) {
      text = "disconnected";
      dot = "down";
      banner = "Disconnected from the web gateway. Reconnecting…";
    } else if (!state.service.connected) {
      text = "disconnected";
      dot = "down";
      const why = state.service.reason ? ` — ${state.service.reason}` : "";
      banner = `Disconnected: the filamentctl service is not reachable${why}. Reconnecting automatically.`;
    }
    $("conn").dataset.state = dot;
    setText("conn-text", text);
    setText("banner", banner);
    $("banner").hidden = !banner;
    $("dashboard").hidden = state.locked;
    document.body.classList.toggle("disconnected", dot !== "live");
    renderControls();
  }

  function onLink(link) {
    const wasDown = state.service.connected === false;
    state.service = link;
    if (link.connected && wasDown) loadHistory(); // what was missed while away
    renderConnection();
  }

  // -- the event stream ---------------------------------------------------------------------
  function openStream() {
    closeStream();
    const es = new EventSource("/api/events");
    state.stream = es;
    es.addEventListener("open", () => {
      state.gatewayUp = true;
      state.retryMs = 1000;
      renderConnection();
    });
    es.addEventListener("status", (ev) => {
      state.service = { connected: true, reason: null, retry_in_s: null };
      onStatus(JSON.parse(ev.data));
      renderConnection();
    });
    es.addEventListener("reading", (ev) => onReading(JSON.parse(ev.data), 0));
    es.addEventListener("link", (ev) => onLink(JSON.parse(ev.data)));
    for (const name of ["relay", "sensor", "storage.rejected", "storage.dropped", "storage.recovered", "alert"]) {
      es.addEventListener(name, (ev) => {
        if (name === "relay") {
          const d = JSON.parse(ev.data);
          announce(`${d.relay} ${d.on ? "on" : "off"}: ${d.reason}`);
        }
        refreshStatusSoon();
      });
    }
    es.addEventListener("error", () => {
      // Closed by the gateway, a 401/503, or the network: reconnect ourselves, with backoff.
      closeStream();
      state.gatewayUp = false;
      renderConnection();
      scheduleReconnect();
    });
  }

  function closeStream() {
    if (state.stream) {
      state.stream.close();
      state.stream = null;
    }
  }

  function scheduleReconnect() {
    clearTimeout(state.retryTimer);
    state.retryTimer = setTimeout(connect, state.retryMs);
    state.retryMs = Math.min(state.retryMs * 2, 30000);
  }

  async function connect() {
    try {
      state.session = await api("/api/session");
    } catch (_) {
      state.gatewayUp = false;
      renderConnection();
      scheduleReconnect();
      return;
    }
    state.gatewayUp = true;
    state.locked = state.session.read_requires_login;
    renderSession();
    renderConnection();
    if (state.locked) {
      closeStream();
      showLogin("Log in to see this box.");
      return;
    }
    openStream();
    loadHistory();
  }

  // -- status and readings ------------------------------------------------------------------
  function onStatus(status) {
    state.status = status;
    if (status.reading) {
      state.lastSeq = -1;
      onReading(status.reading, status.reading.age_s || 0);
    }
    renderSensor(status.sensor);
    for (const relay of RELAYS) renderRelay(relay, status[relay]);
    renderDrying(status.drying);
    renderStorage(status.storage);
    setText(
      "footer-text",
      `filamentctl ${status.version || ""} · ${status.simulated ? "simulated box · " : ""}up ${duration(status.uptime_s)}`
    );
  }

  function onReading(r, ageS) {
    if (typeof r.seq === "number" && r.seq <= state.lastSeq) return; // older than what we show
    if (typeof r.seq === "number") state.lastSeq = r.seq;
    state.reading = r;
    state.readingAge = ageS;
    state.readingAt = performance.now();
    setText("temp", num(r.temperature_c));
    setText("hum", num(r.humidity));
    setText("temp-f", withUnit(r.temperature_f, "°F"));
    setText("dew", withUnit(r.dew_point_c, "°C"));
    setText("abs", withUnit(r.absolute_humidity_g_m3, "g/m³"));
    setText("press", withUnit(r.pressure_hpa, "hPa"));
    renderAge();
    addPoint(r);
  }

  function staleAfter() {
    const th = state.status && state.status.heater && state.status.heater.thresholds;
    return (th && th.stale_after_s) || 30;
  }

  function renderAge() {
    if (!state.reading) {
      setText("age", "no reading yet");
      return;
    }
    const age = state.readingAge + (performance.now() - state.readingAt) / 1000;
    const stale = age > staleAfter();
    setText("age", `read ${duration(age)} ago${stale ? " — stale" : ""}`);
    $("age").parentElement.classList.toggle("stale", stale);
    document.querySelector(".readings").classList.toggle("stale", stale);
  }

  function renderSensor(sensor) {
    if (!sensor) return;
    let text = `${sensor.type}: ${sensor.health}`;
    if (sensor.health !== "OK" && sensor.last_error) text += ` (${sensor.last_error})`;
    setText("sensor", text);
  }

  function renderRelay(relay, st) {
    if (!st) return;
    const stateEl = $(`${relay}-state`);
    const enabled = st.enabled !== false;
    stateEl.classList.toggle("on", enabled && !!st.on);
    stateEl.classList.toggle("fault", st.mode === "fault");
    setText(`${relay}-state`, !enabled ? "disabled" : st.on ? "ON" : "off");
    let mode = enabled ? `mode ${st.mode}` : `${relay}.enabled is false`;
    if (st.override_until) mode += ` until ${clock(Date.parse(st.override_until))}`;
    setText(`${relay}-mode`, mode);
    setText(`${relay}-reason`, st.reason || "");
    const latched = $(`${relay}-latched`);
    latched.hidden = !st.latched;
    setText(`${relay}-latched`, st.latched ? `Latched off: ${st.latched}. Reset once the cause is gone.` : "");
    const th = st.thresholds || {};
    let text = "";
    if (relay === "heater" && th.min_temp_c !== undefined) {
      text = `on below ${num(th.min_temp_c)} °C, off above ${num(th.max_temp_c)} °C, cutoff ${num(th.cutoff_temp_c, 0)} °C`;
    } else if (relay === "fan" && th.max_humidity !== undefined) {
      text = `on above ${num(th.max_humidity, 0)} %, off below ${num(th.min_humidity, 0)} %`;
    }
    setText(`${relay}-thresholds`, text);
    for (const button of document.querySelectorAll(`button[data-relay="${relay}"]`)) {
      const action = button.dataset.action;
      if (action === "reset") continue;
      const pressed =
        (action === "auto" && st.mode === "auto") ||
        (action === "on" && st.mode === "manual" && st.on) ||
        (action === "off" && st.mode === "manual" && !st.on);
      button.setAttribute("aria-pressed", String(pressed));
    }
    renderControls();
  }

  function renderControls() {
    const live = state.gatewayUp === true && state.service.connected === true;
    for (const button of document.querySelectorAll("button[data-action]")) {
      const st = state.status && state.status[button.dataset.relay];
      const enabled = !!st && st.enabled !== false;
      let disabled = !live || !enabled || button.dataset.busy === "1";
      if (button.dataset.action === "reset") disabled = disabled || !st.latched;
      button.disabled = disabled;
    }
  }

  // The drying-session panel: shown only when the service's status has a "drying" section.
  const DRYING_LABELS = {
    material: "Material",
    phase: "Phase",
    state: "State",
    target_c: "Target",
    target_temp_c: "Target",
    elapsed_s: "Elapsed",
    remaining_s: "Remaining",
    ends_at: "Ends",
    until: "Ends",
  };

  function dryingValue(key, value) {
    if (value === null || value === undefined) return "—";
    if (typeof value === "number") {
      if (key.endsWith("_s")) return duration(value);
      if (key.endsWith("_c")) return `${num(value)} °C`;
      if (key.includes("humidity") || key.endsWith("_pct")) return `${num(value, 0)} %`;
      return String(value);
    }
    if (typeof value === "string" && /^\d{4}-\d\d-\d\dT/.test(value)) return clock(Date.parse(value));
    if (typeof value === "object") return JSON.stringify(value);
    return String(value);
  }

  function renderDrying(drying) {
    const card = $("drying-card");
    if (!drying || typeof drying !== "object") {
      card.hidden = true;
      return;
    }
    card.hidden = false;
    const dl = $("drying-facts");
    dl.replaceChildren();
    for (const [key, value] of Object.entries(drying)) {
      const div = document.createElement("div");
      const dt = document.createElement("dt");
      const dd = document.createElement("dd");
      dt.textContent = DRYING_LABELS[key] || key.replace(/_/g, " ");
      dd.textContent = dryingValue(key, value);
      div.append(dt, dd);
      dl.append(div);
    }
  }

  function renderStorage(s) {
    if (!s) return;
    const rows = [
      ["Database", s.backend === "none" ? "none (history kept here)" : `${s.backend}${s.connected ? ", connected" : ", not connected"}`],
      ["Backlog", `${s.backlog ?? 0}${s.oldest_unsent_age_s ? ` (oldest ${duration(s.oldest_unsent_age_s)})` : ""}`],
      ["Written", String(s.written ?? 0)],
      ["Dropped / rejected", `${s.dropped ?? 0} / ${s.rejected ?? 0}`],
      ["Dead letters", String(s.dead_letter ?? 0)],
      ["Next retry", s.next_retry_s ? `in ${duration(s.next_retry_s)}` : "—"],
    ];
    if (s.last_error) rows.push(["Last error", s.last_error]);
    if (s.alert) rows.push(["Alert", typeof s.alert === "string" ? s.alert : JSON.stringify(s.alert)]);
    const dl = $("storage-facts");
    dl.replaceChildren();
    for (const [label, value] of rows) {
      const div = document.createElement("div");
      const dt = document.createElement("dt");
      const dd = document.createElement("dd");
      dt.textContent = label;
      dd.textContent = value;
      div.append(dt, dd);
      dl.append(div);
    }
  }

  async function refreshStatus() {
    try {
      onStatus(await api("/api/status"));
    } catch (err) {
      if (err.status === 401) showLogin("Your login has expired. Log in again.");
    }
  }

  let refreshSoon = null;
  function refreshStatusSoon() {
    if (refreshSoon) return;
    refreshSoon = setTimeout(() => {
      refreshSoon = null;
      refreshStatus();
    }, 250);
  }

  // -- the chart ----------------------------------------------------------------------------
  async function loadHistory() {
    const range = state.range;
    state.step = Math.max(1, Math.round(range / CHART_POINTS));
    try {
      const rows = await api(`/api/history?since=${range}&step=${state.step}`);
      if (range !== state.range) return; // the user picked another range meanwhile
      const live = state.points.filter((p) => p.live);
      state.points = rows.map((r) => ({
        t: r.time_ns / 1e6,
        temperature_c: r.temperature_c,
        humidity: r.humidity,
        n: 1,
      }));
      const last = state.points.length ? state.points[state.points.length - 1].t : 0;
      for (const p of live) if (p.t > last) state.points.push(p);
      drawCharts();
    } catch (err) {
      setText("temp-summary", `history unavailable: ${err.message}`);
      setText("hum-summary", "");
    }
  }

  function addPoint(r) {
    if (typeof r.time_ns !== "number") return;
    const t = r.time_ns / 1e6;
    const stepMs = state.step * 1000;
    const last = state.points[state.points.length - 1];
    if (last && last.live && Math.floor(last.t / stepMs) === Math.floor(t / stepMs)) {
      // The same bucket: a running mean, as the service averages history buckets.
      last.n += 1;
      for (const key of ["temperature_c", "humidity"]) {
        if (typeof r[key] === "number") last[key] += (r[key] - last[key]) / last.n;
      }
      last.t = t;
    } else if (!last || t > last.t) {
      state.points.push({ t, temperature_c: r.temperature_c, humidity: r.humidity, n: 1, live: true });
    }
    const cutoff = t - state.range * 1000;
    while (state.points.length && state.points[0].t < cutoff) state.points.shift();
    scheduleCharts();
  }

  function scheduleCharts() {
    if (state.chartTimer) return;
    state.chartTimer = setTimeout(() => {
      state.chartTimer = null;
      drawCharts();
    }, 1000);
  }

  function drawCharts() {
    drawChart($("chart-temp"), "temperature_c", "°C", 1, "temp-summary", "Temperature");
    drawChart($("chart-hum"), "humidity", "%", 2, "hum-summary", "Humidity");
  }

  function el(name, attrs, text) {
    const node = document.createElementNS(SVG, name);
    for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function rangeLabel(s) {
    return s >= 3600 ? `${s / 3600} h` : `${s / 60} min`;
  }

  function drawChart(svg, key, unit, minSpan, summaryId, title) {
    const width = Math.max(240, Math.round(svg.getBoundingClientRect().width || 600));
    const height = 140;
    svg.setAttribute("viewBox", `0 0 ${width} ${height}`);
    svg.replaceChildren();
    const pts = state.points.filter((p) => typeof p[key] === "number" && Number.isFinite(p[key]));
    if (pts.length < 2) {
      svg.append(el("text", { x: 8, y: height / 2, class: "empty" }, "not enough data yet"));
      setText(summaryId, `${title}: not enough data for the last ${rangeLabel(state.range)} yet.`);
      return;
    }
    let lo = Math.min(...pts.map((p) => p[key]));
    let hi = Math.max(...pts.map((p) => p[key]));
    const summary = `${title} ${num(lo)} – ${num(hi)} ${unit} over the last ${rangeLabel(state.range)}; now ${num(pts[pts.length - 1][key])} ${unit}.`;
    if (hi - lo < minSpan) {
      const mid = (hi + lo) / 2;
      lo = mid - minSpan / 2;
      hi = mid + minSpan / 2;
    }
    const pad = (hi - lo) * 0.08;
    lo -= pad;
    hi += pad;
    const left = 40;
    const right = 8;
    const top = 6;
    const bottom = 20;
    const t1 = pts[pts.length - 1].t;
    const t0 = t1 - state.range * 1000;
    const x = (t) => left + ((t - t0) / (t1 - t0)) * (width - left - right);
    const y = (v) => top + ((hi - v) / (hi - lo)) * (height - top - bottom);
    for (const v of [lo + pad, (lo + hi) / 2, hi - pad]) {
      svg.append(el("line", { x1: left, x2: width - right, y1: y(v), y2: y(v), class: "grid-line" }));
      svg.append(el("text", { x: left - 4, y: y(v) + 4, "text-anchor": "end", class: "tick" }, num(v)));
    }
    for (const [frac, anchor] of [[0, "start"], [0.5, "middle"], [1, "end"]]) {
      const t = t0 + frac * (t1 - t0);
      svg.append(el("text", { x: x(t), y: height - 4, "text-anchor": anchor, class: "tick" }, clock(t)));
    }
    const gap = Math.max(state.step * 3000, 60000); // no line across missing data
    let d = "";
    let prev = null;
    for (const p of pts) {
      if (p.t < t0) continue;
      d += `${prev === null || p.t - prev > gap ? "M" : "L"}${x(p.t).toFixed(1)},${y(p[key]).toFixed(1)}`;
      prev = p.t;
    }
    svg.append(el("path", { d, class: "series" }));
    setText(summaryId, summary);
  }

  function setRange(range) {
    state.range = range;
    for (const b of document.querySelectorAll("button[data-range]")) {
      b.setAttribute("aria-pressed", String(Number(b.dataset.range) === range));
    }
    state.points = [];
    drawCharts();
    loadHistory();
  }

  // -- login and control --------------------------------------------------------------------
  function renderSession() {
    const s = state.session;
    setText("box-name", s.box);
    document.title = `${s.box} · filamentctl`;
    $("login-button").hidden = s.authenticated || !s.control_enabled;
    $("logout-button").hidden = !s.authenticated || !s.csrf_token;
    if (s.authenticated) $("login-panel").hidden = true;
  }

  function showLogin(why) {
    setText("login-why", why);
    setText("login-error", "");
    $("login-panel").hidden = false;
    $("login-cancel").hidden = !!(state.session && state.session.read_requires_login);
    $("token").focus();
  }

  async function login(event) {
    event.preventDefault();
    const input = $("token");
    setText("login-error", "");
    try {
      const res = await api("/api/login", { method: "POST", body: { token: input.value } });
      input.value = "";
      state.session = await api("/api/session");
      if (!state.session.csrf_token) state.session.csrf_token = res.csrf_token;
      state.locked = false;
      renderSession();
      renderConnection();
      announce("Logged in.");
      if (!state.stream) {
        openStream();
        loadHistory();
      }
    } catch (err) {
      setText("login-error", err.message);
      input.select();
    }
  }

  async function logout() {
    try {
      await api("/api/logout", { method: "POST", body: {} });
    } catch (_) {
      // logged out anyway from the page's point of view
    }
    await connect();
    announce("Logged out.");
  }

  function confirmHeaterOn() {
    const dialog = $("confirm");
    return new Promise((resolve) => {
      dialog.addEventListener("close", () => resolve(dialog.returnValue === "ok"), { once: true });
      dialog.returnValue = "";
      dialog.showModal();
      $("confirm-cancel").focus();
    });
  }

  async function control(relay, action) {
    setText(`${relay}-error`, "");
    if (!state.session || !state.session.authenticated) {
      showLogin(`Log in to switch the ${relay}.`);
      return;
    }
    if (relay === "heater" && action === "on" && !(await confirmHeaterOn())) return;
    let path = `/api/${relay}`;
    let body = { mode: action };
    if (action === "reset") {
      path = `/api/${relay}/reset`;
      body = {};
    } else if (action !== "auto" && $(`${relay}-for`).value) {
      body.for = $(`${relay}-for`).value;
    }
    const buttons = document.querySelectorAll(`button[data-relay="${relay}"]`);
    for (const b of buttons) b.dataset.busy = "1";
    renderControls();
    try {
      const st = await api(path, { method: "POST", body });
      if (state.status) state.status[relay] = st;
      renderRelay(relay, st);
      announce(`${relay}: ${st.on ? "on" : "off"}, mode ${st.mode}`);
    } catch (err) {
      if (err.status === 401) {
        state.session.authenticated = false;
        renderSession();
        showLogin("Your login has expired. Log in again.");
      } else {
        setText(`${relay}-error`, err.message);
      }
    } finally {
      for (const b of buttons) delete b.dataset.busy;
      renderControls();
    }
  }

  // -- start --------------------------------------------------------------------------------
  function bind() {
    $("login-form").addEventListener("submit", login);
    $("login-button").addEventListener("click", () => showLogin("Log in to switch the heater and fan."));
    $("login-cancel").addEventListener("click", () => {
      $("login-panel").hidden = true;
    });
    $("logout-button").addEventListener("click", logout);
    for (const b of document.querySelectorAll("button[data-action]")) {
      b.addEventListener("click", () => control(b.dataset.relay, b.dataset.action));
    }
    for (const b of document.querySelectorAll("button[data-range]")) {
      b.addEventListener("click", () => setRange(Number(b.dataset.range)));
    }
    let resizeTimer = null;
    window.addEventListener("resize", () => {
      clearTimeout(resizeTimer);
      resizeTimer = setTimeout(drawCharts, 150);
    });
    setInterval(renderAge, 1000);
    state.refreshTimer = setInterval(() => {
      if (state.stream && state.service.connected && !document.hidden) refreshStatus();
    }, REFRESH_MS);
  }

  bind();
  renderConnection();
  connect();
})();
