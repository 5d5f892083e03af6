// The callslo wallboard: tiles from /api/events (server-sent events), a chart of the selected
// queue's service level per interval today from /api/queues/{tenant}/{queue}.
"use strict";
(function () {
  const tiles = new Map();          // "tenant/queue" -> tile from the API
  const $ = (id) => document.getElementById(id);
  const state = { tenant: "", sort: "worst", find: "", selected: null, drawn: false };
  let chartTimer = null;

  const pct = (v) => (v === null || v === undefined ? "–" : (100 * v).toFixed(1) + " %");
  const secs = (v) => {
    if (v === null || v === undefined) return "–";
    if (v < 60) return v.toFixed(0) + " s";
    return Math.floor(v / 60) + " min " + String(Math.round(v % 60)).padStart(2, "0") + " s";
  };
  const num = (v) => (v === null || v === undefined ? "–" : String(v));
  const rank = { red: 0, amber: 1, green: 2, none: 3 };

  function worstFirst(a, b) {
    const gap = (t) => (t.service_level === null || t.sl_target === null
      ? Infinity : t.service_level - t.sl_target);
    return rank[a.status] - rank[b.status] || gap(a) - gap(b)
      || (b.calls_waiting || 0) - (a.calls_waiting || 0) || a.key.localeCompare(b.key);
  }

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
    for (const c of children) node.append(c);
    return node;
  }

  function tileNode(t) {
    const a = t.agents || {};
    const node = el("article", { class: "tile " + t.status + (t.key === state.selected ? " selected" : ""),
      "data-key": t.key, "data-status": t.status, "data-version": String(t.version),
      "data-sl": t.service_level === null ? "" : String(t.service_level),
      "data-waiting": num(t.calls_waiting) });
    const sl = el("div", { class: "sl" }, pct(t.service_level));
    sl.append(el("span", { class: "target" }, "target " + pct(t.sl_target)
      + (t.threshold_s === null ? "" : ` in ${t.threshold_s} s`)));
    const dl = el("dl");
    const row = (name, value, field) => dl.append(el("dt", {}, name), el("dd", { "data-field": field }, value));
    row("Waiting", num(t.calls_waiting), "calls_waiting");
    row("Oldest wait", secs(t.oldest_wait_s), "oldest_wait_s");
    row("ASA", secs(t.asa_s), "asa_s");
    row("Abandoned", pct(t.abandon_rate), "abandon_rate");
    row("Available / busy / away", `${num(a.available)} / ${(a.on_call || 0) + (a.wrapup || 0)} / ${num(a.away)}`, "agents");
    row("Staffed / required", `${num(t.staffed)} / ${num(t.required)}`, "staffed");
    const alerts = el("ul", { class: "alerts" });
    for (const al of t.alerts || []) {
      alerts.append(el("li", { class: al.severity || "" }, `${al.kind || "alert"}: ${al.value ?? ""}`));
    }
    node.append(el("h3", {}, t.queue), el("div", { class: "tenant" }, t.tenant), sl, dl, alerts);
    node.addEventListener("click", () => select(t.key));
    return node;
  }

  function render() {
    state.drawn = false;
    let list = [...tiles.values()].filter((t) => (!state.tenant || t.tenant === state.tenant)
      && (!state.find || t.key.toLowerCase().includes(state.find)));
    list.sort(state.sort === "name" ? (a, b) => a.key.localeCompare(b.key) : worstFirst);
    $("tiles").replaceChildren(...list.map(tileNode));
    const counts = { red: 0, amber: 0, green: 0 };
    for (const t of list) if (t.status in counts) counts[t.status] += 1;
    $("counts").textContent = `${list.length} queues: ${counts.red} red, ${counts.amber} amber, ${counts.green} green`;
    if (!state.selected && list.length) select(list[0].key);
  }

  function schedule() {
    if (state.drawn) return;
    state.drawn = true;
    requestAnimationFrame(render);
  }

  function tenants(names) {
    const select = $("tenant");
    const have = new Set([...select.options].map((o) => o.value));
    for (const name of names) if (!have.has(name)) select.append(el("option", { value: name }, name));
  }

  function select(key) {
    state.selected = key;
    schedule();
    drawChart();
  }

  async function drawChart() {
    clearTimeout(chartTimer);
    chartTimer = setTimeout(drawChart, 10000);
    if (!state.selected) return;
    const [tenant, ...rest] = state.selected.split("/");
    const url = `/api/queues/${encodeURIComponent(tenant)}/${encodeURIComponent(rest.join("/"))}`;
    let detail;
    try {
      const response = await fetch(url, { credentials: "same-origin" });
      if (!response.ok) return;
      detail = await response.json();
    } catch (e) { return; }
    chart(detail);
  }

  function chart(detail) {
    const svg = $("chart");
    const W = 960, H = 260, top = 10, bottom = 30, left = 40;
    const ns = "http://www.w3.org/2000/svg";
    const s = (tag, attrs, text) => {
      const n = document.createElementNS(ns, tag);
      for (const [k, v] of Object.entries(attrs)) n.setAttribute(k, v);
      if (text !== undefined) n.textContent = text;
      return n;
    };
    const y = (v) => top + (1 - v) * (H - top - bottom);
    const nodes = [s("line", { class: "axis", x1: left, x2: W, y1: y(0), y2: y(0) })];
    for (const v of [0, 0.5, 1]) nodes.push(s("text", { x: 2, y: y(v) + 5 }, (100 * v) + "%"));
    const intervals = detail.intervals || [];
    const dayStart = intervals.length ? intervals[0].interval_start_ms - intervals[0].interval_start_ms % 86400000 : 0;
    const width = intervals.length ? (intervals[0].interval_end_ms - intervals[0].interval_start_ms) : 900000;
    const x = (ms) => left + (ms - dayStart) / 86400000 * (W - left);
    for (const r of intervals) {
      if (r.service_level === null) continue;
      nodes.push(s("rect", { class: "bar " + (r.sl_met ? "met" : "missed"), "data-start": r.interval_start_ms,
        x: x(r.interval_start_ms) + 0.5, width: Math.max(1, x(r.interval_start_ms + width) - x(r.interval_start_ms) - 1),
        y: y(r.service_level), height: y(0) - y(r.service_level) }));
    }
    for (let h = 0; h < 24; h += 3) nodes.push(s("text", { x: x(dayStart + h * 3600000) - 8, y: H - 8 }, String(h).padStart(2, "0")));
    const target = detail.sl_target ?? (intervals.length ? intervals[intervals.length - 1].sl_target : null);
    if (target !== null) nodes.push(s("line", { class: "target", x1: left, x2: W, y1: y(target), y2: y(target) }));
    svg.replaceChildren(...nodes);
    $("chart-title").textContent = `Service level today: ${detail.tenant} / ${detail.queue} (UTC)`;
    $("chart-note").textContent = intervals.length
      ? `${intervals.length} intervals closed today; dashed line: target ${pct(target)}`
      : "No interval of today has closed yet.";
  }

  function connect() {
    const url = "/api/events" + (state.tenant ? "?tenant=" + encodeURIComponent(state.tenant) : "");
    const source = new EventSource(url, { withCredentials: true });
    const live = $("live");
    const take = (message, replace) => {
      const data = JSON.parse(message.data);
      if (replace) tiles.clear();
      for (const t of data.queues) tiles.set(t.key, t);
      tenants(data.tenants || []);
      live.textContent = "live";
      live.classList.remove("off");
      live.dataset.version = String(data.version);
      // For people (and the browser test): how many pushes arrived since the page loaded.
      if (replace) live.dataset.snapshotVersion = String(data.version);
      else live.dataset.updates = String(Number(live.dataset.updates || 0) + 1);
      schedule();
      if (state.selected && data.queues.some((t) => t.key === state.selected) && !replace) {
        clearTimeout(chartTimer);
        chartTimer = setTimeout(drawChart, 2000);
      }
    };
    source.addEventListener("snapshot", (m) => take(m, true));
    source.addEventListener("update", (m) => take(m, false));
    source.onerror = () => { live.textContent = "reconnecting"; live.classList.add("off"); };
    return source;
  }

  let source = null;
  $("tenant").addEventListener("change", (e) => {
    state.tenant = e.target.value;
    state.selected = null;
    if (source) source.close();
    source = connect();
  });
  $("sort").addEventListener("change", (e) => { state.sort = e.target.value; schedule(); });
  $("find").addEventListener("input", (e) => { state.find = e.target.value.trim().toLowerCase(); schedule(); });
  const params = new URLSearchParams(location.search);
  if (params.get("tenant")) { state.tenant = params.get("tenant"); tenants([state.tenant]); $("tenant").value = state.tenant; }
  if (params.get("sort") === "name") { state.sort = "name"; $("sort").value = "name"; }
  source = connect();
})();
