// The sidecar's status page: polls the API every second and draws with
// plain SVG (no chart library, nothing fetched from elsewhere).
"use strict";
const COLORS = ["#3f6fd8", "#c62828", "#2e8540", "#b8860b", "#7b3fd8", "#00838f", "#d84f9c", "#5d4037"];
const SVGNS = "http://www.w3.org/2000/svg";
let token = new URLSearchParams(location.hash.slice(1)).get("token") || localStorage.getItem("otelplug-token") || "";

function el(tag, attrs, text) {
  const e = tag.startsWith("svg:") ? document.createElementNS(SVGNS, tag.slice(4)) : document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  if (text !== undefined) e.textContent = text;
  return e;
}

async function api(path, method) {
  const headers = token ? {Authorization: "Bearer " + token} : {};
  const r = await fetch(path, {method: method || "GET", headers});
  let body = null;
  try { body = await r.json(); } catch (e) { body = {error: r.statusText}; }
  return {status: r.status, body};
}

function fmt(v, digits) {
  if (v === null || v === undefined) return "-";
  if (typeof v !== "number") return String(v);
  if (Math.abs(v) >= 1e6) return (v / 1e6).toFixed(1) + "M";
  if (Math.abs(v) >= 1e4) return (v / 1e3).toFixed(1) + "k";
  return Number.isInteger(v) ? String(v) : v.toFixed(digits === undefined ? 2 : digits);
}

function table(id, head, rows) {
  const t = document.getElementById(id);
  t.replaceChildren();
  const tr = el("tr");
  head.forEach(h => tr.appendChild(el("th", {}, h)));
  t.appendChild(tr);
  if (!rows.length) { const r = el("tr"); r.appendChild(el("td", {colspan: head.length}, "none")); t.appendChild(r); }
  rows.forEach(cells => {
    const r = el("tr");
    cells.forEach(c => {
      if (c instanceof Node) { const td = el("td"); td.appendChild(c); r.appendChild(td); }
      else r.appendChild(el("td", typeof c === "number" ? {class: "num"} : {}, fmt(c)));
    });
    t.appendChild(r);
  });
}

// series: {name: [[t, v], ...]} drawn as lines with a y axis from 0
function lines(id, series) {
  const svg = document.getElementById(id);
  const w = svg.clientWidth || 420, h = svg.clientHeight || 160, left = 44, bottom = 16;
  svg.setAttribute("viewBox", `0 0 ${w} ${h}`);
  svg.replaceChildren();
  const all = Object.values(series).flat();
  const ts = all.map(p => p[0]), vs = all.map(p => p[1]).filter(v => v !== null);
  const t0 = Math.min(...ts), t1 = Math.max(...ts), vmax = Math.max(1e-9, ...vs) * 1.1;
  svg.appendChild(el("svg:line", {x1: left, y1: h - bottom, x2: w, y2: h - bottom, class: "axis"}));
  svg.appendChild(el("svg:line", {x1: left, y1: 0, x2: left, y2: h - bottom, class: "axis"}));
  svg.appendChild(el("svg:text", {x: 2, y: 10}, fmt(vmax)));
  svg.appendChild(el("svg:text", {x: 2, y: h - bottom}, "0"));
  if (!all.length) { svg.appendChild(el("svg:text", {x: left + 10, y: h / 2}, "no data yet")); return; }
  const x = t => left + (t1 > t0 ? (t - t0) / (t1 - t0) : 1) * (w - left - 4);
  const y = v => (h - bottom) - (v / vmax) * (h - bottom - 4);
  Object.entries(series).forEach(([name, pts], i) => {
    const color = COLORS[i % COLORS.length];
    const d = pts.filter(p => p[1] !== null).map((p, j) => `${j ? "L" : "M"}${x(p[0]).toFixed(1)},${y(p[1]).toFixed(1)}`).join("");
    if (d) svg.appendChild(el("svg:path", {d, class: "line", stroke: color, "data-series": name}));
    svg.appendChild(el("svg:text", {x: left + 8 + (i % 3) * 130, y: 12 + Math.floor(i / 3) * 12, fill: color}, name));
  });
}

function charts(samples) {
  const spans = {"spans/s": samples.map(s => [s.t, s.spans_per_second])};
  const errors = {}, p95 = {}, exporters = {}, queue = {}, fill = {}, drops = {};
  samples.forEach(s => {
    for (const [svc, v] of Object.entries(s.services)) {
      (errors[svc] = errors[svc] || []).push([s.t, v.error_rate]);
      (p95[svc] = p95[svc] || []).push([s.t, v.p95_ms]);
    }
    for (const [id, v] of Object.entries(s.exporters)) {
      (exporters[id + " sent"] = exporters[id + " sent"] || []).push([s.t, v.sent]);
      (exporters[id + " failed"] = exporters[id + " failed"] || []).push([s.t, v.send_failed]);
      (queue[id] = queue[id] || []).push([s.t, v.queue]);
    }
    for (const [ring, v] of Object.entries(s.rings || {})) {
      (fill[ring] = fill[ring] || []).push([s.t, v.pending_bytes]);
      (drops[ring] = drops[ring] || []).push([s.t, v.dropped_per_second]);
    }
  });
  lines("chart-spans", spans); lines("chart-errors", errors); lines("chart-p95", p95); lines("chart-exporters", exporters);
  lines("chart-queue", queue); lines("chart-ring-fill", fill); lines("chart-ring-drops", drops);
}

function bar(fraction) {
  const b = el("div", {class: "bar", title: (fraction * 100).toFixed(1) + "%"});
  b.appendChild(el("div", {style: `width:${Math.min(100, fraction * 100).toFixed(1)}%`}));
  return b;
}

function showStatus(st) {
  const h = document.getElementById("health");
  h.textContent = st.health.status; h.className = "badge " + st.health.status;
  document.getElementById("uptime").textContent = "up " + Math.round(st.uptime_seconds) + "s";
  const probs = document.getElementById("problems");
  probs.replaceChildren(...st.health.problems.map(p => el("div", {class: "problem"}, `${p.component}: ${p.reason}`)));
  table("pipelines", ["pipeline", "receivers", "processors", "exporters"],
        st.pipelines.map(p => [p.id, p.receivers.join(", "), p.processors.join(", ") || "-", p.exporters.join(", ")]));
  table("exporters", ["exporter", "queue", "sent", "failed", "queue full", "retries", "last error"],
        st.exporters.map(e => [e.id, e.queue_capacity ? bar(e.queue_size / e.queue_capacity) : "no queue",
                               e.sent, e.send_failed, e.enqueue_failed, e.retries, e.last_error || ""]));
  table("rings", ["channel", "pid", "pending bytes", "dropped (full)", "dropped (oversize)"],
        st.rings.producers.map(r => [r.channel, String(r.pid), r.pending_bytes, r.dropped_full, r.dropped_oversize]));
  document.getElementById("trace-section").hidden = !st.capabilities.store;
}

function alertButton(a, action, label) {
  const b = el("button", {"data-action": action, "data-alert": a.id}, label);
  b.onclick = async () => {
    const r = await api(`/api/v1/alerts/${encodeURIComponent(a.id)}/${action}`, "POST");
    if (r.status !== 200) showError(`${action} ${a.id}: ${r.body.error}`);
    refresh();
  };
  return b;
}

function showAlerts(r) {
  const sec = document.getElementById("alerts-section");
  if (r.status !== 200) { sec.hidden = true; return; }
  sec.hidden = false;
  table("alerts", ["alert", "state", "labels", "since", ""], r.body.alerts.map(a => {
    const actions = el("span");
    // fields of the alert engine's view (otelplug/analytics/alerts.py: Alert)
    if (a.state !== "resolved") {
      if (!a.ack) actions.appendChild(alertButton(a, "ack", "acknowledge"));
      actions.appendChild(alertButton(a, "resolve", "resolve"));
    }
    const since = a.fired_at || a.active_since;
    const state = a.state + (a.ack ? ` (acknowledged by ${a.ack.by})` : "") + (a.silenced_by ? " (silenced)" : "");
    return [a.rule || a.id, state, JSON.stringify(a.labels || {}), since ? new Date(since * 1000).toISOString() : "", actions];
  }));
}

function showGraph(r) {
  const sec = document.getElementById("graph-section");
  if (r.status !== 200) { sec.hidden = true; return; }
  sec.hidden = false;
  const svg = document.getElementById("graph"), g = r.body;
  svg.replaceChildren();
  const w = svg.clientWidth || 600, h = 300, n = (g.nodes || []).length;
  svg.setAttribute("viewBox", `0 0 ${w} ${h}`);
  const pos = {};
  (g.nodes || []).forEach((node, i) => {
    const name = node.name || node.id || node;
    const a = 2 * Math.PI * i / Math.max(1, n);
    pos[name] = [w / 2 + Math.cos(a) * (w / 2 - 80), h / 2 + Math.sin(a) * (h / 2 - 30)];
  });
  (g.edges || []).forEach(e => {
    const a = pos[e.client || e.source], b = pos[e.server || e.target];
    if (a && b) svg.appendChild(el("svg:line", {x1: a[0], y1: a[1], x2: b[0], y2: b[1], stroke: "#8893a8"}));
  });
  for (const [name, [x, y]] of Object.entries(pos)) {
    svg.appendChild(el("svg:circle", {cx: x, cy: y, r: 6, fill: "#3f6fd8"}));
    svg.appendChild(el("svg:text", {x: x + 9, y: y + 4}, name));
  }
}

async function showTrace(id) {
  const msg = document.getElementById("trace-msg"), svg = document.getElementById("trace");
  svg.replaceChildren();
  const r = await api(`/api/v1/traces/${encodeURIComponent(id)}`);
  if (r.status !== 200) { msg.textContent = r.body.error; return; }
  msg.textContent = "";
  const spans = r.body.spans, crit = new Set(((r.body.critical_path || {}).span_ids) || []);
  // store rows (the ClickHouse exporter's columns): Timestamp and Duration in ns
  const start = s => Number(s.Timestamp ?? s.start_time_unix_nano ?? 0);
  const end = s => s.Duration !== undefined ? start(s) + Number(s.Duration) : Number(s.end_time_unix_nano ?? 0);
  const t0 = Math.min(...spans.map(start)), t1 = Math.max(...spans.map(end)), w = svg.clientWidth || 800;
  svg.setAttribute("viewBox", `0 0 ${w} ${spans.length * 18 + 4}`);
  svg.setAttribute("height", spans.length * 18 + 4);
  spans.sort((a, b) => start(a) - start(b)).forEach((s, i) => {
    const x = 220 + (start(s) - t0) / Math.max(1, t1 - t0) * (w - 230);
    const bw = Math.max(2, (end(s) - start(s)) / Math.max(1, t1 - t0) * (w - 230));
    const name = `${s.ServiceName ?? s.service ?? ""} ${s.SpanName ?? s.name ?? ""}`.slice(0, 34);
    svg.appendChild(el("svg:text", {x: 2, y: i * 18 + 13}, name));
    svg.appendChild(el("svg:rect", {x, y: i * 18 + 3, width: bw, height: 12, "data-span": s.SpanId ?? s.span_id,
                                    class: crit.has(s.SpanId ?? s.span_id) ? "critical" : "span"}));
  });
}

function showError(text) {
  const e = document.getElementById("error");
  e.hidden = !text; e.textContent = text || "";
}

// every second: status only (it carries the alert list and the newest
// chart sample; /series is fetched once); findings and the service graph
// change slowly: every 5th time.  One request a second keeps the page's
// cost to the sidecar small (bench/api.py).
let tick = 0, samples = null;
async function refresh() {
  try {
    const st = await api("/api/v1/status");
    if (st.status !== 200) { showError(`status: ${st.status} ${st.body.error}`); return; }
    showError("");
    showStatus(st.body);
    const caps = st.body.capabilities, slow = tick++ % 5 === 0;
    showAlerts(caps.alerts ? {status: 200, body: {alerts: st.body.alerts}} : {status: 404});
    const [series, findings, graph] = await Promise.all([
      samples === null ? api("/api/v1/series?last=120") : null, slow ? api("/api/v1/findings?limit=50") : null,
      slow && caps.graph ? api("/api/v1/graph") : null]);
    if (series && series.status === 200) samples = series.body.samples;
    if (samples !== null) {
      const last = samples.length ? samples[samples.length - 1].t : 0;
      samples.push(...st.body.latest_samples.filter(s => s.t > last));
      samples = samples.slice(-120);
      charts(samples);
    }
    if (findings && findings.status === 200)
      table("findings", ["level", "finding", "signal", "attribute/metric", "count", "service", "renamed to", "example trace"],
            findings.body.findings.map(f => [f.level, f.id, f.signal, f.attribute_or_metric, f.count, f.service || "",
                                             f.renamed_to || "", f.example ? f.example.trace_id : ""]));
    if (graph) showGraph(graph); else if (!caps.graph) showGraph({status: 404});
    document.body.dataset.refreshed = String(Date.now());
  } catch (e) {
    showError("cannot reach the sidecar: " + e);
  }
}

document.getElementById("login").onsubmit = ev => {
  ev.preventDefault();
  token = document.getElementById("token").value;
  localStorage.setItem("otelplug-token", token);
  refresh();
};
document.getElementById("trace-form").onsubmit = ev => {
  ev.preventDefault();
  showTrace(document.getElementById("trace-id").value.trim());
};
refresh();
setInterval(refresh, 1000);
