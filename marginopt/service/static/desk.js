// The desk page: positions (pasted or uploaded CSV) on the demo case's market, instruments,
// venues and hedge universe -> /v1/margin, /v1/health and /v1/hedge -> tables and an SVG chart.
// Plain browser JavaScript, no build step and nothing loaded from elsewhere. User text is only
// ever set as textContent, never as HTML.
"use strict";

const HEDGE_FLOOR = 1e-4; // |quantity| below this is the solver's tolerance, not a trade
const SVG = "http://www.w3.org/2000/svg";
let demo = null; // the demo case as JSON, from /v1/demo

const $ = (id) => document.getElementById(id);

function money(x) {
  return x === null || x === undefined ? "" : x.toLocaleString("en-US", { minimumFractionDigits: 2, maximumFractionDigits: 2 });
}

function qty(x) {
  return Math.abs(x) < 0.01 ? x.toExponential(2) : x.toLocaleString("en-US", { maximumFractionDigits: 4 });
}

function describe(status, body) {
  if (body && Array.isArray(body.detail)) {
    return `${status}: ` + body.detail.map((d) => d.msg).join("; ");
  }
  return `HTTP ${status}`;
}

async function api(path, options) {
  const response = await fetch(path, options);
  let body = null;
  try {
    body = await response.json();
  } catch (e) {
    body = null;
  }
  if (!response.ok) {
    throw new Error(describe(response.status, body));
  }
  return body;
}

function postJson(path, value) {
  return api(path, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(value) });
}

function showError(message) {
  const el = $("error");
  el.textContent = message;
  el.hidden = !message;
}

// A failed request leaves no earlier answer on screen under its error: the tables, summary and
// chart of the last good answer are emptied and hidden.
function clearResults() {
  $("results").hidden = true;
  $("margin-table").querySelector("tbody").replaceChildren();
  $("hedges-table").querySelector("tbody").replaceChildren();
  $("hedges-table").dataset.ready = "false";
  $("health-table").querySelector("tbody").replaceChildren();
  $("plan-summary").textContent = "";
  clearExecutability();
  $("chart").replaceChildren();
}

function clearExecutability() {
  $("plan-gap").textContent = "";
  $("plan-gap").hidden = true;
  $("executability-table").querySelector("tbody").replaceChildren();
  $("executability-summary").textContent = "";
  $("executability").hidden = true;
}

// A verified plan: optimal, or feasible (an executable plan not proven optimal: status_detail says why).
function planned(plan) {
  return plan.status === "optimal" || plan.status === "feasible";
}

// An executable plan (a case with lot sizes, minimum trades or transfers, move or ticket caps):
// the gap line of its certificate and the cost of executability (the continuous optimum as the
// lower bound, the executable plan, the naive rounding of the continuous plan), as the CLI prints them.
function renderExecutability(plan, ccy) {
  clearExecutability();
  const cert = plan.certificate;
  if (planned(plan) && cert && cert.incumbent !== undefined && cert.incumbent !== null) {
    const proven = cert.proven_optimal ? `proven optimal (gap within ${cert.requested_gap})`
      : `status ${plan.status}: ${plan.status_detail}`;
    $("plan-gap").textContent = `gap: incumbent ${money(cert.incumbent)}, bound ${money(cert.bound)}, gap ${money(cert.gap)} ` +
      `(${Number(cert.relative_gap).toPrecision(3)} relative), ${proven}`;
    $("plan-gap").dataset.proven = String(cert.proven_optimal);
    $("plan-gap").hidden = false;
  }
  const ex = plan.executability;
  if (!planned(plan) || !ex) return;
  const body = $("executability-table").querySelector("tbody");
  const total = (margins) => (margins ? margins.reduce((s, m) => s + m.after, 0) : null);
  const rows = [
    ["continuous", "continuous optimum (lower bound)", ex.continuous.objective_value, total(ex.continuous.margins),
      ex.continuous.status === "optimal" ? "yes (no execution terms)" : `no continuous plan (${ex.continuous.status})`],
    ["executable", "executable plan", ex.executable.objective_value, total(plan.margins), "yes (verified)"],
  ];
  const naive = ex.naive_rounding;
  if (naive) {
    const failed = naive.failed_checks.map((c) => `${c.check} violated by ${c.violation.toPrecision(6)}`).join("; ");
    rows.push(["naive", "naive rounding of the continuous plan", naive.objective_value, total(naive.margins),
      naive.feasible ? "yes" : `no: ${failed}`]);
  }
  for (const [key, label, cost, margin, feasible] of rows) {
    const tr = document.createElement("tr");
    tr.dataset.plan = key;
    tr.dataset.cost = String(cost);
    cell(tr, label, "text");
    cell(tr, money(cost));
    cell(tr, money(margin));
    cell(tr, feasible, "text");
    body.appendChild(tr);
  }
  const over = ex.executable.over_continuous;
  $("executability-summary").textContent = over === null || over === undefined
    ? "No continuous optimum to compare with."
    : `Executing as printed costs ${money(over)} ${ccy} over the continuous optimum.`;
  $("executability").hidden = false;
}

function setState(state, text) {
  document.body.dataset.state = state;
  $("status").textContent = text;
}

function cell(row, text, className) {
  const td = document.createElement("td");
  td.textContent = text;
  if (className) td.className = className;
  row.appendChild(td);
  return td;
}

function toCsv(rows) {
  const columns = ["venue", "account", "instrument", "quantity"];
  const lines = [columns.join(",")];
  for (const r of rows) lines.push(columns.map((c) => (r[c] === undefined ? "" : String(r[c]))).join(","));
  return lines.join("\n") + "\n";
}

function renderVenues() {
  const box = $("venues");
  box.querySelectorAll("label, p").forEach((el) => el.remove());
  for (const name of Object.keys(demo.venues)) {
    const label = document.createElement("label");
    const input = document.createElement("input");
    input.type = "checkbox";
    input.name = "venue";
    input.value = name;
    input.checked = true;
    input.dataset.testid = `venue-${name}`;
    label.append(input, " " + name);
    box.appendChild(label);
  }
}

function pickedVenues() {
  return Array.from(document.querySelectorAll('input[name="venue"]:checked')).map((el) => el.value);
}

// The CSV is read by the service (POST /v1/positions/csv) with the case reader's rules, so an
// error names the CSV's own row and column.
async function readPositions(text) {
  const form = new FormData();
  form.append("file", new Blob([text], { type: "text/csv" }), "positions.csv");
  const body = await api("/v1/positions/csv", { method: "POST", body: form });
  return body.positions;
}

function buildCase(rows, venues) {
  const unknown = rows.findIndex((r) => !(r.venue in demo.venues));
  if (unknown >= 0) {
    throw new Error(`positions row ${unknown + 1}: venue '${rows[unknown].venue}' is not one of ${Object.keys(demo.venues).join(", ")}`);
  }
  const keep = new Set(venues);
  const c = structuredClone(demo);
  c.venues = Object.fromEntries(Object.entries(demo.venues).filter(([name]) => keep.has(name)));
  c.positions = rows.filter((r) => keep.has(r.venue));
  c.hedges = (demo.hedges || []).filter((h) => keep.has(h.venue));
  return c;
}

function renderMargin(report) {
  const body = $("margin-table").querySelector("tbody");
  body.replaceChildren();
  let collateral = 0;
  let excess = 0;
  for (const v of report.venues) {
    const tr = document.createElement("tr");
    tr.dataset.venue = v.venue;
    tr.dataset.initialMargin = String(v.initial_margin);
    cell(tr, v.venue);
    cell(tr, money(v.initial_margin));
    cell(tr, money(v.maintenance_margin));
    cell(tr, money(v.collateral_value));
    cell(tr, money(v.excess), v.excess < 0 ? "negative" : "");
    cell(tr, v.worst_scenario || "-", "text");
    body.appendChild(tr);
    collateral += v.collateral_value;
    excess += v.excess;
  }
  const total = document.createElement("tr");
  total.className = "total";
  cell(total, "total");
  cell(total, money(report.total_initial_margin));
  cell(total, "");
  cell(total, money(collateral));
  cell(total, money(excess), excess < 0 ? "negative" : "");
  cell(total, "");
  body.appendChild(total);
}

// The nearest breach of a level over every direction: "BTC down -5.56%", "now", or "none in the scan".
function nearest(distances, level) {
  let best = null;
  for (const d of distances) {
    const c = d[level];
    if (c.breached_now) return "now";
    if (c.move !== null && (best === null || Math.abs(c.move) < Math.abs(best.move))) best = { name: d.direction, move: c.move };
  }
  return best === null ? "none in the scan" : `${best.name} ${(100 * best.move).toFixed(2)}%`;
}

function renderHealth(health) {
  const body = $("health-table").querySelector("tbody");
  body.replaceChildren();
  for (const v of health.venues) {
    const tr = document.createElement("tr");
    tr.dataset.venue = v.venue;
    tr.dataset.marginBalance = String(v.margin_balance);
    cell(tr, v.venue);
    cell(tr, money(v.margin_balance));
    cell(tr, v.margin_ratio === null ? "no balance" : `${(100 * v.margin_ratio).toFixed(2)}%`);
    cell(tr, money(v.excess_maintenance), v.excess_maintenance < 0 ? "negative" : "");
    cell(tr, nearest(v.distance, "call"), "text");
    cell(tr, nearest(v.distance, "liquidation"), "text");
    body.appendChild(tr);
  }
}

function renderHedges(plan, ccy) {
  const table = $("hedges-table");
  const body = table.querySelector("tbody");
  body.replaceChildren();
  const saved = Object.fromEntries(plan.margins.map((m) => [m.venue, m.before - m.after]));
  const hedges = plan.hedges.filter((h) => Math.abs(h.quantity) >= HEDGE_FLOOR);
  let cost = 0;
  const seen = new Set(); // margin saved is per venue: shown on the venue's first hedge
  for (const h of hedges) {
    const tr = document.createElement("tr");
    tr.className = "hedge";
    tr.dataset.venue = h.venue;
    tr.dataset.instrument = h.instrument;
    tr.dataset.quantity = String(h.quantity);
    tr.dataset.cost = String(h.cost);
    cell(tr, h.venue);
    cell(tr, h.instrument, "text");
    cell(tr, qty(h.quantity));
    cell(tr, money(h.cost));
    cell(tr, seen.has(h.venue) ? "" : money(saved[h.venue]));
    seen.add(h.venue);
    body.appendChild(tr);
    cost += h.cost;
  }
  const before = plan.margins.reduce((s, m) => s + m.before, 0);
  const after = plan.margins.reduce((s, m) => s + m.after, 0);
  if (!planned(plan)) {
    const short = (plan.infeasibility || []).map((s) => `${s.constraint} short by ${money(s.shortfall)}`).join("; ");
    $("plan-summary").textContent = `No plan: ${plan.status}${short ? " (" + short + ")" : ""}.`;
  } else if (!hedges.length) {
    $("plan-summary").textContent = "No hedge needed: every picked venue's margin is covered as it stands.";
  } else {
    $("plan-summary").textContent = `${hedges.length} hedges cost ${money(cost)} ${ccy} and save ${money(before - after)} ${ccy} ` +
      `of initial margin (${money(before)} -> ${money(after)}); verification ${plan.verification.passed ? "passed" : "failed"}.`;
  }
  if (hedges.length) {
    const total = document.createElement("tr");
    total.className = "total";
    cell(total, "total");
    cell(total, "");
    cell(total, "");
    cell(total, money(cost));
    cell(total, money(before - after));
    body.appendChild(total);
  }
  table.dataset.status = plan.status;
  table.dataset.ready = "true";
}

function svg(name, attrs, text) {
  const el = document.createElementNS(SVG, name);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
  if (text !== undefined) el.textContent = text;
  return el;
}

// One group per venue: a grey bar (before) and a blue bar (after the hedges).
function renderChart(report, plan) {
  const after = Object.fromEntries(plan.margins.map((m) => [m.venue, m.after]));
  const venues = report.venues.map((v) => ({ name: v.venue, before: v.initial_margin, after: after[v.venue] }));
  const width = 640, height = 260, left = 80, bottom = 40, top = 24;
  const top_value = Math.max(1, ...venues.flatMap((v) => [v.before, v.after ?? 0]));
  const scale = (x) => ((height - bottom - top) * x) / top_value;
  const chart = svg("svg", { viewBox: `0 0 ${width} ${height}`, width: "100%", role: "img",
    "aria-label": "initial margin per venue, before and after the hedges" });
  chart.appendChild(svg("line", { class: "axis", x1: left, x2: width - 8, y1: height - bottom, y2: height - bottom }));
  for (const frac of [0, 0.5, 1]) {
    const y = height - bottom - scale(top_value * frac);
    chart.appendChild(svg("text", { x: left - 6, y: y + 4, "text-anchor": "end" }, money(top_value * frac).replace(/\.00$/, "")));
  }
  const slot = (width - left - 8) / Math.max(venues.length, 1);
  const barWidth = Math.min(48, slot / 3);
  venues.forEach((v, i) => {
    const g = svg("g", { class: "venue-bars", "data-venue": v.name });
    const x0 = left + i * slot + slot / 2 - barWidth;
    const bars = [["bar-before", v.before, x0], ["bar-after", v.after, x0 + barWidth]];
    for (const [cls, value, x] of bars) {
      if (value === undefined) continue; // no plan: no after bar
      const h = scale(value);
      const rect = svg("rect", { class: cls, x, y: height - bottom - h, width: barWidth - 2, height: h, "data-value": value });
      rect.appendChild(svg("title", {}, `${v.name} ${cls === "bar-before" ? "before" : "after"}: ${money(value)}`));
      g.appendChild(rect);
    }
    g.appendChild(svg("text", { x: x0 + barWidth, y: height - bottom + 16, "text-anchor": "middle" }, v.name));
    chart.appendChild(g);
  });
  chart.appendChild(svg("rect", { class: "bar-before", x: left, y: 4, width: 10, height: 10 }));
  chart.appendChild(svg("text", { x: left + 14, y: 13 }, "before"));
  chart.appendChild(svg("rect", { class: "bar-after", x: left + 70, y: 4, width: 10, height: 10 }));
  chart.appendChild(svg("text", { x: left + 84, y: 13 }, "after the hedges"));
  $("chart").replaceChildren(chart);
}

// The run history: today's initial margin per venue against the previous day's, and the latest runs.
// A service that keeps no history answers 404 here: the section stays hidden.
async function refreshHistory() {
  let days, runs;
  try {
    [days, runs] = await Promise.all([api("/v1/history/days"), api("/v1/history?limit=10")]);
  } catch (e) {
    $("history").hidden = true;
    return;
  }
  const daysBody = $("days-table").querySelector("tbody");
  daysBody.replaceChildren();
  for (const v of days.venues) {
    const tr = document.createElement("tr");
    tr.dataset.venue = v.venue;
    tr.dataset.today = String(v.today);
    tr.dataset.previous = String(v.previous);
    cell(tr, v.venue);
    cell(tr, money(v.previous));
    cell(tr, money(v.today));
    cell(tr, money(v.change), v.change > 0 ? "negative" : "");
    daysBody.appendChild(tr);
  }
  if (days.total) {
    const tr = document.createElement("tr");
    tr.className = "total";
    cell(tr, "total");
    cell(tr, money(days.total.previous));
    cell(tr, money(days.total.today));
    cell(tr, money(days.total.change), days.total.change > 0 ? "negative" : "");
    daysBody.appendChild(tr);
  }
  const side = (s) => (s ? `run ${s.run} (${s.command}, ${s.date})` : "none");
  $("days-summary").textContent = days.case === null ? "No run stored yet."
    : `${days.case}: today ${side(days.today)}, previous day ${side(days.previous)}.`;
  const runsBody = $("runs-table").querySelector("tbody");
  runsBody.replaceChildren();
  for (const r of runs.runs) {
    const tr = document.createElement("tr");
    tr.dataset.run = String(r.id);
    tr.dataset.command = r.command;
    tr.dataset.initialMargin = String(r.total_initial_margin);
    cell(tr, String(r.id));
    cell(tr, r.created_at.replace("T", " ").slice(0, 19), "text");
    cell(tr, r.command, "text");
    cell(tr, r.case, "text");
    cell(tr, money(r.total_initial_margin));
    cell(tr, money(r.total_initial_margin_after));
    cell(tr, r.status, "text");
    runsBody.appendChild(tr);
  }
  $("history").hidden = false;
  $("history").dataset.ready = "true";
}

async function submit(event) {
  event.preventDefault();
  showError("");
  const venues = pickedVenues();
  if (!venues.length) {
    clearResults();
    showError("Pick at least one venue.");
    return;
  }
  $("submit").disabled = true;
  $("hedges-table").dataset.ready = "false";
  setState("working", "computing margin and solving for hedges\u2026");
  try {
    const rows = await readPositions($("positions").value);
    const c = buildCase(rows, venues);
    const objective = $("objective").value;
    const [report, health, plan] = await Promise.all([
      postJson("/v1/margin", c),
      postJson("/v1/health", c),
      postJson("/v1/hedge" + (objective ? `?objective=${encodeURIComponent(objective)}` : ""), c),
    ]);
    renderMargin(report);
    renderHealth(health);
    renderHedges(plan, report.base_currency);
    renderExecutability(plan, report.base_currency);
    renderChart(report, plan);
    $("results").hidden = false;
    await refreshHistory();
    setState("done", `done: ${report.venues.length} venues, plan ${plan.status}`);
  } catch (e) {
    clearResults();
    showError(e.message);
    setState("error", "");
  } finally {
    $("submit").disabled = false;
  }
}

async function init() {
  $("desk-form").addEventListener("submit", submit);
  $("load-demo").addEventListener("click", () => {
    if (demo) $("positions").value = toCsv(demo.positions);
  });
  $("positions-file").addEventListener("change", async (event) => {
    const file = event.target.files[0];
    if (file) $("positions").value = await file.text();
  });
  try {
    demo = await api("/v1/demo");
    renderVenues();
    await refreshHistory();
    $("submit").disabled = false;
    setState("ready", "");
  } catch (e) {
    showError(`could not load the demo case: ${e.message}`);
    setState("error", "");
  }
}

document.addEventListener("DOMContentLoaded", init);
