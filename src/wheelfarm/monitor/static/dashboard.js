// The wheelfarm dashboard: polls data.json (every 5 s) and history.json (every 15 s) and draws
// tables and SVG graphs. No library, nothing from elsewhere.
"use strict";
const csrf = document.getElementById("csrf").value;
let source = "master";
const $ = (id) => document.getElementById(id);
const esc = (s) => String(s ?? "").replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
const GiB = 2 ** 30;
const num = (v, d = 1) => (v === undefined || v === null ? "" : Number(v).toFixed(d));
const gib = (v) => (v === undefined || v === null ? "" : (v / GiB).toFixed(1));
const span = (s) => {
  if (s === null || s === undefined) return "";
  s = Math.round(s);
  if (s < 120) return `${s} s`;
  if (s < 7200) return `${Math.round(s / 60)} min`;
  if (s < 172800) return `${(s / 3600).toFixed(1)} h`;
  return `${(s / 86400).toFixed(1)} d`;
};

async function control(action, builder) {
  const body = { action, csrf };
  if (builder) body.builder = builder;
  const answer = await fetch("/monitor/control", {
    method: "POST",
    credentials: "same-origin",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify(body),
  });
  if (!answer.ok) alert(`${action}: ${answer.status}`);
  refresh();
}

function button(action, builder) {
  const who = builder ? ` data-builder="${esc(builder)}"` : "";
  return `<button data-action="${action}"${who}>${action}</button>`;
}

function renderFarm(data) {
  const paused = data.farm.paused;
  const state = paused ? `paused (${paused === "disk" ? "the master's disk is low" : "by an operator"})` : "building";
  $("farm").innerHTML = `<p id=farm-state class="${paused ? "banner" : ""}">Farm: ${esc(state)} `
    + `${button("pause")}${button("resume")}</p>`;
  $("alerts").innerHTML = data.alerts.map((a) => `<li>${esc(a.source)}: ${esc(a.alert)}</li>`).join("")
    || "<li style='color:#0a5'>none</li>";
  const m = data.master.readings;
  $("master").innerHTML = `<table><tr><th>load</th><th>temperature</th><th>memory</th>`
    + `<th>disk free (data)</th><th>disk free (tree)</th><th>follower lag</th><th>uptime</th></tr>`
    + `<tr><td>${num(m.load, 2)}</td><td>${num(m.cpu_temperature, 0)}</td>`
    + `<td>${gib(m.memory_used)} / ${gib(m.memory_total)} GiB</td>`
    + `<td>${gib(m.data_free)} GiB</td><td>${gib(m.tree_free)} GiB</td>`
    + `<td>${m.lag_serials === undefined ? "unknown" : `${m.lag_serials} serials`} ${span(m.lag_seconds)}</td><td>${span(m.uptime)}</td></tr></table>`;
}

function renderTables(data) {
  $("targets").innerHTML = "<table><tr><th>target</th><th>pending</th><th>oldest</th><th>builders</th></tr>"
    + data.targets.map((t) => `<tr><td>${esc(t.name)}</td><td>${t.pending}</td><td>${span(t.oldest_age)}</td>`
      + `<td>${esc(Object.entries(t.builders).map(([s, n]) => `${n} ${s}`).join(", "))}</td></tr>`).join("")
    + "</table>";
  const rows = data.builders.map((b) => {
    const r = b.readings;
    return `<tr class="${b.alerts.length ? "alert" : ""}" data-name="${esc(b.name)}">`
      + `<td><a href="#" data-source="builder:${esc(b.name)}">${esc(b.name)}</a></td>`
      + `<td class="state-${b.state}">${b.state}</td><td>${esc(b.target)}</td><td>${esc(b.label)}</td>`
      + `<td>${span(b.uptime)}</td><td>${esc(b.job)}</td><td>${span(b.job_seconds)}</td>`
      + `<td>${num(r.load, 2)}</td><td>${num(r.cpu_temperature, 0)}</td>`
      + `<td>${gib(r.memory_available)}</td><td>${gib(r.disk_free_bytes)}</td>`
      + `<td>${num(r.clock_offset, 0)}</td><td>${esc(b.alerts.join("; "))}</td>`
      + `<td>${["pause", "resume", "skip", "stop"].map((a) => button(a, b.name)).join("")}</td></tr>`;
  });
  $("builders").innerHTML = "<table id=builder-table><tr><th>builder</th><th>state</th><th>target</th>"
    + "<th>label</th><th>uptime</th><th>job</th><th>for</th><th>load</th><th>°C</th>"
    + "<th>mem avail GiB</th><th>disk free GiB</th><th>clock offset s</th><th>alerts</th><th></th></tr>"
    + rows.join("") + "</table>";
}

function graph(name, points) {
  const W = 260, H = 70;
  const xs = points.map((p) => p[0]), ys = points.map((p) => p[1]);
  const x0 = Math.min(...xs), x1 = Math.max(...xs), y0 = Math.min(0, ...ys), y1 = Math.max(...ys);
  const sx = (x) => (x1 > x0 ? ((x - x0) / (x1 - x0)) * W : W / 2);
  const sy = (y) => (y1 > y0 ? H - ((y - y0) / (y1 - y0)) * H : H / 2);
  const line = points.map((p) => `${sx(p[0]).toFixed(1)},${sy(p[1]).toFixed(1)}`).join(" ");
  return `<div class=graph data-reading="${esc(name)}"><b>${esc(name)}</b> ${num(ys[ys.length - 1], 2)}`
    + `<svg width=${W} height=${H} viewBox="0 0 ${W} ${H}"><polyline fill=none stroke="#06c" `
    + `stroke-width=1.5 points="${line}"/></svg></div>`;
}

async function refreshGraphs() {
  const range = $("range").value;
  const answer = await fetch(`/monitor/history.json?source=${encodeURIComponent(source)}&range=${range}`,
    { credentials: "same-origin" });
  if (!answer.ok) return;
  const data = await answer.json();
  const byName = {};
  for (const [at, values] of data.points)
    for (const [k, v] of Object.entries(values)) (byName[k] ||= []).push([at, v]);
  $("source").textContent = source;
  $("graphs").innerHTML = Object.keys(byName).sort().map((k) => graph(k, byName[k])).join("")
    || "<p>no readings yet in this range</p>";
}

async function refresh() {
  const answer = await fetch("/monitor/data.json", { credentials: "same-origin" });
  if (answer.status === 401) { location.reload(); return; }
  const data = await answer.json();
  renderFarm(data);
  renderTables(data);
  $("updated").textContent = `updated ${new Date(data.now * 1000).toLocaleTimeString()}`;
  document.body.dataset.updated = String(data.now);
}

document.addEventListener("click", (event) => {
  const target = event.target;
  if (target.dataset.action) control(target.dataset.action, target.dataset.builder);
  if (target.dataset.source) { event.preventDefault(); source = target.dataset.source; refreshGraphs(); }
});
$("range").addEventListener("change", refreshGraphs);
refresh(); refreshGraphs();
setInterval(refresh, 5000);
setInterval(refreshGraphs, 15000);
