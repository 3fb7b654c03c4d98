// fairtreat dashboard: plain JS, no dependencies, charts drawn as inline SVG.
// Talks only to this service's own API (same origin).
"use strict";

// Errors are recorded so the browser tests can assert there were none.
window.__errors = [];
window.addEventListener("error", (e) => window.__errors.push(String(e.message || e)));
window.addEventListener("unhandledrejection", (e) => window.__errors.push(String(e.reason)));
(function () {
  const original = console.error;
  console.error = function (...args) {
    window.__errors.push(args.map(String).join(" "));
    original.apply(console, args);
  };
})();

const SVG = "http://www.w3.org/2000/svg";
const BANDS = ["low", "medium", "high"];
const FIELDS = [
  "fairness.min_parity_ratio",
  "fairness.min_group_samples",
  "fairness.justice_weight",
  "caps.perks_per_customer",
  "caps.window_days",
  "caps.max_value_per_customer",
  "budget.daily",
  "exploration.epsilon",
];

const state = {
  policy: null, // the policy in force, as fetched
  adminKey: "", // in memory only, never stored
  ready: false,
};

function $(id) {
  return document.getElementById(id);
}

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v !== undefined && v !== null) node.setAttribute(k, v);
  }
  for (const c of children) {
    if (c === null || c === undefined) continue;
    node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return node;
}

function svg(tag, attrs, text) {
  const node = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v !== undefined && v !== null) node.setAttribute(k, v);
  }
  if (text !== undefined) node.textContent = String(text);
  return node;
}

function fmt(n, digits) {
  if (typeof n !== "number" || !isFinite(n)) return "–";
  return n.toFixed(digits);
}

function money(n, currency) {
  if (typeof n !== "number" || !isFinite(n)) return "–";
  return n.toFixed(2) + " " + (currency || "");
}

function pct(n) {
  if (typeof n !== "number" || !isFinite(n)) return "–";
  return (n * 100).toFixed(1) + " %";
}

async function api(method, path, body, key) {
  const headers = { accept: "application/json" };
  if (body !== undefined) headers["content-type"] = "application/json";
  if (key) headers.authorization = "Bearer " + key;
  const resp = await fetch(path, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
    cache: "no-store",
  });
  let data = null;
  try {
    data = await resp.json();
  } catch (_) {
    data = null;
  }
  return { status: resp.status, ok: resp.ok, data };
}

function get(obj, path) {
  return path.split(".").reduce((o, k) => (o == null ? undefined : o[k]), obj);
}

function set(obj, path, value) {
  const keys = path.split(".");
  let o = obj;
  for (const k of keys.slice(0, -1)) o = o[k];
  o[keys[keys.length - 1]] = value;
}

function fieldId(path) {
  return path.replace(/\./g, "-");
}

// ---- charts -----------------------------------------------------------------

// Charts are drawn at their box's width in CSS pixels, so text keeps its size
// on a phone; they are redrawn when the width changes.
function width(box, fallback) {
  return Math.max(280, Math.round(box.clientWidth || fallback));
}

function chartSeries(summary) {
  const box = $("chart-series");
  box.replaceChildren();
  const series = summary.series || [];
  const W = width(box, 900), H = W < 600 ? 200 : 260, L = 40, R = 10, T = 10, B = 30;
  const max = Math.max(1, ...series.map((s) => s.decisions));
  const root = svg("svg", {
    viewBox: `0 0 ${W} ${H}`,
    role: "img",
    "aria-label": "Decisions and perks per hour over the current window",
  });
  const n = Math.max(1, series.length);
  const bw = (W - L - R) / n;
  const y = (v) => T + (H - T - B) * (1 - v / max);
  // axes and gridlines
  for (let i = 0; i <= 4; i++) {
    const v = Math.round((max * i) / 4);
    root.append(svg("line", { class: "axis", x1: L, x2: W - R, y1: y(v), y2: y(v) }));
    root.append(svg("text", { x: L - 4, y: y(v) + 4, "text-anchor": "end" }, v));
  }
  series.forEach((s, i) => {
    const x = L + i * bw;
    const title = `${s.hour}: ${s.decisions} decisions, ${s.perks} perks`;
    const d = svg("rect", {
      class: "bar-decisions",
      x: x + bw * 0.1,
      y: y(s.decisions),
      width: Math.max(0.5, bw * 0.8),
      height: Math.max(0, H - B - y(s.decisions)),
      "data-hour": s.hour,
      "data-decisions": s.decisions,
    });
    d.append(svg("title", {}, title));
    root.append(d);
    const p = svg("rect", {
      class: "bar-perks",
      x: x + bw * 0.25,
      y: y(s.perks),
      width: Math.max(0.5, bw * 0.5),
      height: Math.max(0, H - B - y(s.perks)),
      "data-hour": s.hour,
      "data-perks": s.perks,
    });
    p.append(svg("title", {}, title));
    root.append(p);
    const h = s.hour.slice(11, 13);
    if (h === "00" || (series.length <= 48 && Number(h) % 6 === 0)) {
      root.append(svg("text", { x: x, y: H - B + 14 }, s.hour.slice(5, 10) + (h === "00" ? "" : " " + h + "h")));
    }
  });
  root.append(svg("line", { class: "axis", x1: L, x2: W - R, y1: H - B, y2: H - B }));
  box.append(root);
  const total = series.reduce((a, s) => a + s.decisions, 0);
  const perks = series.reduce((a, s) => a + s.perks, 0);
  $("series-caption").textContent =
    `${total} decisions and ${perks} perks in the last ${summary.window_hours} hours (hourly, UTC).`;
  $("kpi-decisions").textContent = String(total);
  $("kpi-perks").textContent = String(perks);
  $("kpi-rate").textContent = total ? pct(perks / total) : "–";
}

function chartBudget(summary) {
  const box = $("chart-budget");
  box.replaceChildren();
  const b = summary.budget;
  const W = width(box, 420), H = 70, L = 10, R = 10;
  const share = b.daily > 0 ? b.spent_today / b.daily : 0;
  const root = svg("svg", {
    viewBox: `0 0 ${W} ${H}`,
    role: "img",
    "aria-label": `Spent ${money(b.spent_today, b.currency)} of ${money(b.daily, b.currency)} today`,
  });
  root.append(svg("rect", { class: "bar-track", x: L, y: 10, width: W - L - R, height: 26, rx: 4 }));
  root.append(
    svg("rect", {
      class: "bar-spend" + (share >= 1 ? " over" : ""),
      x: L,
      y: 10,
      width: Math.max(share > 0 ? 2 : 0, (W - L - R) * Math.min(1, share)),
      height: 26,
      rx: 4,
      "data-spent": b.spent_today,
    }),
  );
  root.append(svg("text", { x: L, y: 56 }, "0"));
  root.append(svg("text", { x: W - R, y: 56, "text-anchor": "end" }, money(b.daily, b.currency)));
  root.append(svg("text", { class: "value-label", x: W / 2, y: 56, "text-anchor": "middle" }, pct(share)));
  box.append(root);
  $("budget-caption").textContent =
    `${money(b.spent_today, b.currency)} spent on ${b.grants_today} perks today (${b.day}, UTC) of a daily budget of ${money(b.daily, b.currency)}.`;
  $("kpi-spend").textContent = money(b.spent_today, b.currency);
}

function chartConstraints(summary) {
  const box = $("chart-constraints");
  box.replaceChildren();
  const items = (summary.constraints || []).slice(0, 6);
  if (!items.length) {
    box.append(el("p", { class: "caption" }, "No constraint has bound yet."));
    return;
  }
  const W = width(box, 420), row = 28, L = 120, R = 50;
  const H = items.length * row + 6;
  const max = Math.max(1, ...items.map((c) => c.count));
  const root = svg("svg", { viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": "Constraints that bound, most frequent first" });
  items.forEach((c, i) => {
    const y = 3 + i * row;
    root.append(svg("text", { x: L - 6, y: y + 17, "text-anchor": "end" }, c.name.replace(/_/g, " ")));
    const w = ((W - L - R) * c.count) / max;
    const r = svg("rect", { class: "bar-constraint", x: L, y: y + 4, width: Math.max(1, w), height: row - 8, "data-count": c.count });
    r.append(svg("title", {}, `${c.name}: ${c.count}`));
    root.append(r);
    root.append(svg("text", { class: "value-label", x: L + w + 4, y: y + 17 }, c.count));
  });
  box.append(root);
}

function chartParity(report, W) {
  const H = 210, L = 34, R = 10, T = 26, B = 28;
  const cols = report.bands.map((b) => ({ label: b.band, ...b })).concat([
    { label: "overall", band: "overall", parity_ratio: report.overall.parity_ratio, enforced: false, failing: false },
  ]);
  const root = svg("svg", {
    viewBox: `0 0 ${W} ${H}`,
    role: "img",
    "aria-label": `Parity ratio of ${report.attribute} per severity band against the threshold ${report.threshold}`,
  });
  const y = (v) => T + (H - T - B) * (1 - Math.max(0, Math.min(1, v)));
  for (const v of [0, 0.25, 0.5, 0.75, 1]) {
    root.append(svg("line", { class: "axis", x1: L, x2: W - R, y1: y(v), y2: y(v) }));
    root.append(svg("text", { x: L - 4, y: y(v) + 4, "text-anchor": "end" }, v.toFixed(2)));
  }
  const bw = (W - L - R) / cols.length;
  cols.forEach((c, i) => {
    const x = L + i * bw + bw * 0.2;
    const cls = "bar-parity" + (c.failing ? " failing" : c.enforced || c.band === "overall" ? "" : " not-enforced");
    const r = svg("rect", {
      class: cls,
      x,
      y: y(c.parity_ratio),
      width: bw * 0.6,
      height: Math.max(0, H - B - y(c.parity_ratio)),
      "data-band": c.band,
      "data-ratio": c.parity_ratio,
    });
    r.append(svg("title", {}, `${c.label}: ${fmt(c.parity_ratio, 3)}${c.failing ? " (failing)" : ""}`));
    root.append(r);
    root.append(svg("text", { class: "value-label", x: x + bw * 0.3, y: y(c.parity_ratio) - 3, "text-anchor": "middle" }, fmt(c.parity_ratio, 2)));
    root.append(svg("text", { x: x + bw * 0.3, y: H - B + 14, "text-anchor": "middle" }, c.label));
  });
  root.append(svg("line", { class: "threshold", x1: L, x2: W - R, y1: y(report.threshold), y2: y(report.threshold) }));
  root.append(svg("line", { class: "threshold", x1: W - R - 110, x2: W - R - 84, y1: 9, y2: 9 }));
  root.append(svg("text", { x: W - R, y: 13, "text-anchor": "end" }, `threshold ${report.threshold}`));
  return root;
}

function parityTable(report) {
  const head = el("tr", {}, el("th", { scope: "col" }, "Band"), el("th", { scope: "col", class: "num" }, "Parity ratio"),
    el("th", { scope: "col" }, "Enforced"), el("th", { scope: "col" }, "Groups (perk rate)"));
  const rows = report.bands.map((b) => {
    const groups = (b.groups || []).map((g) => `${g.group} ${pct(g.perk_rate)} of ${g.decisions}`).join(", ");
    return el("tr", {},
      el("th", { scope: "row" }, b.band),
      el("td", {
        class: "num parity-cell" + (b.failing ? " failing" : ""),
        "data-attribute": report.attribute,
        "data-band": b.band,
        "data-failing": String(b.failing),
      }, fmt(b.parity_ratio, 3) + (b.failing ? " ✗ below " + report.threshold : "")),
      el("td", {}, b.enforced ? "yes" : `no (< ${report.min_group_samples} per group)`),
      el("td", {}, groups || "–"));
  });
  rows.push(el("tr", {}, el("th", { scope: "row" }, "overall"), el("td", { class: "num" }, fmt(report.overall.parity_ratio, 3)),
    el("td", {}, "–"), el("td", {}, "")));
  return el("div", { class: "table-wrap" }, el("table", {},
    el("caption", { class: "visually-hidden" }, `Parity of ${report.attribute}`),
    el("thead", {}, head), el("tbody", {}, ...rows)));
}

// ---- loading ----------------------------------------------------------------

let lastSummary = null;
let lastReports = null;

async function loadSummary() {
  const [summary, ready] = await Promise.all([api("GET", "/v1/dashboard/summary"), api("GET", "/readyz")]);
  if (!summary.ok) throw new Error("summary: HTTP " + summary.status);
  const s = summary.data;
  lastSummary = s;
  $("policy-version").textContent = "v" + s.policy_version;
  $("model-version").textContent = s.model_version;
  $("window-hours").textContent = s.window_hours + " h";
  $("store-kind").textContent = ready.data ? ready.data.store + (ready.data.store_ok ? "" : " (degraded)") : "?";
  chartSeries(s);
  chartBudget(s);
  chartConstraints(s);
}

async function loadParity(policy) {
  const reports = await Promise.all(
    policy.fairness.group_attributes.map((a) => api("GET", "/v1/fairness/report?attribute=" + encodeURIComponent(a))),
  );
  lastReports = reports;
  drawParity(reports);
}

function drawParity(reports) {
  const box = $("parity");
  // Each chart takes half the panel, or all of it on a phone.
  const full = box.clientWidth || 840;
  const parityWidth = Math.max(280, Math.round(full > 700 ? full / 2 - 12 : full));
  box.replaceChildren();
  reports.forEach((r) => {
    if (!r.ok) return;
    const rep = r.data;
    box.append(el("div", { class: "parity-attr" },
      el("h3", {}, rep.attribute),
      el("div", { class: "parity-layout" },
        el("figure", { class: "chart parity-chart", "data-attribute": rep.attribute }, chartParity(rep, parityWidth)),
        parityTable(rep))));
  });
}

async function loadPolicy() {
  const r = await api("GET", "/v1/policy");
  if (!r.ok) throw new Error("policy: HTTP " + r.status);
  state.policy = r.data;
  fillForm(r.data);
  return r.data;
}

async function loadHistory() {
  const r = await api("GET", "/v1/policy/history?limit=20");
  const list = $("history");
  list.replaceChildren();
  if (!r.ok) return;
  for (const c of r.data) {
    const changes = (c.changes || []).map((ch) =>
      el("li", {}, el("code", {}, ch.field), ": ", JSON.stringify(ch.old), " → ", JSON.stringify(ch.new)));
    list.append(el("li", { "data-version": c.version },
      el("strong", {}, `v${c.version}`),
      " ",
      el("span", { class: "meta" }, `by ${c.actor} at ${c.at}` + (c.previous_version ? ` (from v${c.previous_version})` : "")),
      changes.length ? el("ul", {}, ...changes) : el("div", { class: "meta" }, "initial version")));
  }
}

async function loadAll() {
  const policy = await loadPolicy();
  await Promise.all([loadSummary(), loadParity(policy), loadHistory()]);
}

// ---- editor -----------------------------------------------------------------

function fillForm(policy) {
  for (const path of FIELDS) {
    $("f-" + fieldId(path)).value = String(get(policy, path));
  }
  clearErrors();
}

function clearErrors() {
  for (const path of FIELDS) setFieldError(path, "");
  setFieldError("admin-key", "");
  const alert = $("editor-alert");
  alert.hidden = true;
  alert.textContent = "";
}

function setFieldError(path, message) {
  const input = path === "admin-key" ? $("admin-key") : $("f-" + fieldId(path));
  const err = path === "admin-key" ? $("e-admin-key") : $("e-" + fieldId(path));
  if (!input || !err) return false;
  err.textContent = message;
  if (message) input.setAttribute("aria-invalid", "true");
  else input.removeAttribute("aria-invalid");
  return true;
}

function showAlert(message) {
  const alert = $("editor-alert");
  alert.textContent = message;
  alert.hidden = false;
}

// The proposed policy: the fetched policy with the form's fields patched in.
function proposed() {
  const p = JSON.parse(JSON.stringify(state.policy));
  let ok = true;
  for (const path of FIELDS) {
    const input = $("f-" + fieldId(path));
    const raw = input.value.trim();
    const n = Number(raw);
    if (raw === "" || !isFinite(n)) {
      setFieldError(path, "Enter a number.");
      ok = false;
      continue;
    }
    if (input.hasAttribute("data-int") && !Number.isInteger(n)) {
      setFieldError(path, "Enter a whole number.");
      ok = false;
      continue;
    }
    set(p, path, n);
  }
  return ok ? p : null;
}

// Puts each invalid field's message next to its input; the rest in the alert.
function showApiError(r) {
  const e = (r.data && r.data.error) || {};
  const details = e.details && e.details.length ? e.details : e.field ? [{ field: e.field, message: e.message }] : [];
  const unplaced = [];
  for (const d of details) {
    const path = String(d.field).replace(/^policy\./, "");
    if (!setFieldError(path, d.message)) unplaced.push(`${d.field}: ${d.message}`);
  }
  if (!details.length || unplaced.length) {
    const what = {
      401: "The admin key was not accepted.",
      403: "This key may not change the policy.",
      409: "The policy changed since this page loaded. Reload it and apply again.",
    }[r.status] || "";
    showAlert([`Error ${r.status}${e.code ? " (" + e.code + ")" : ""}: ${what || e.message || ""}`, ...unplaced].join(" "));
  }
  const first = details.map((d) => $("f-" + fieldId(String(d.field).replace(/^policy\./, "")))).find(Boolean);
  if (first) first.focus();
}

function figuresTable(w) {
  const rows = [];
  const row = (label, key, before, after, digits, formatter) => {
    const f = formatter || ((v) => fmt(v, digits));
    const changed = before !== after;
    rows.push(el("tr", { "data-key": key },
      el("th", { scope: "row" }, label),
      el("td", { class: "num", "data-side": "before", "data-value": before }, f(before)),
      el("td", { class: "num" + (changed ? " changed" : ""), "data-side": "after", "data-value": after }, f(after))));
  };
  const b = w.before, a = w.after;
  row("Policy version", "policy_version", b.policy_version, a.policy_version, 0, (v) => "v" + v);
  row("Decisions replayed", "decisions", b.decisions, a.decisions, 0);
  row("Perks", "perks", b.perks, a.perks, 0);
  row("Perk rate", "perk_rate", b.perk_rate, a.perk_rate, 4);
  row("Spend", "spend", b.spend, a.spend, 2);
  row("Expected utility (mean)", "expected_utility", b.expected_utility, a.expected_utility, 2);
  row("Justice cost (total)", "justice_cost", b.justice_cost, a.justice_cost, 2);
  for (const pa of b.parity) {
    const pb = a.parity.find((x) => x.attribute === pa.attribute) || { bands: [], overall: NaN };
    for (const band of BANDS) {
      const x = pa.bands.find((y) => y.band === band);
      const z = pb.bands.find((y) => y.band === band);
      if (!x && !z) continue;
      row(`Parity ${pa.attribute} / ${band}`, `parity.${pa.attribute}.${band}`, x ? x.parity_ratio : NaN, z ? z.parity_ratio : NaN, 3);
    }
    row(`Parity ${pa.attribute} / overall`, `parity.${pa.attribute}.overall`, pa.overall, pb.overall, 3);
  }
  const table = el("table", { id: "preview-table" },
    el("caption", {}, `What-if over ${w.replayed} ${w.source === "window" ? "interactions of the current window" : "interactions"}`),
    el("thead", {}, el("tr", {}, el("th", { scope: "col" }, "Figure"), el("th", { scope: "col", class: "num" }, "Before (in force)"),
      el("th", { scope: "col", class: "num" }, "After (proposed)"))),
    el("tbody", {}, ...rows));
  const changed = el("p", { id: "preview-changed" },
    "Decisions that would change: ",
    el("strong", { "data-key": "changed_decisions", "data-value": w.changed_decisions }, String(w.changed_decisions)),
    " (of which with a different gesture: ",
    el("strong", { "data-key": "changed_gestures", "data-value": w.changed_gestures }, String(w.changed_gestures)),
    ").");
  return el("div", {}, el("h3", {}, "Preview"), el("div", { class: "table-wrap" }, table), changed);
}

async function preview() {
  clearErrors();
  const p = proposed();
  if (!p) return;
  const btn = $("preview-btn");
  btn.disabled = true;
  $("editor-status").textContent = "Replaying the window…";
  try {
    const r = await api("POST", "/v1/policy/simulate", { policy: p });
    if (!r.ok) {
      $("editor-status").textContent = "";
      showApiError(r);
      return;
    }
    $("preview").replaceChildren(figuresTable(r.data));
    $("editor-status").textContent = `Preview ready: ${r.data.changed_decisions} decisions would change.`;
  } finally {
    btn.disabled = false;
  }
}

async function apply() {
  clearErrors();
  state.adminKey = $("admin-key").value;
  if (!state.adminKey) {
    setFieldError("admin-key", "Enter the admin key to apply.");
    $("admin-key").focus();
    return;
  }
  const p = proposed();
  if (!p) return;
  const btn = $("apply-btn");
  btn.disabled = true;
  $("editor-status").textContent = "";
  try {
    const r = await api("PUT", "/v1/policy", p, state.adminKey);
    if (!r.ok) {
      if (r.status === 401 || r.status === 403) setFieldError("admin-key", r.status === 401 ? "Wrong admin key." : "This key may not change the policy.");
      showApiError(r);
      return;
    }
    const c = r.data;
    const fields = (c.changes || []).map((x) => x.field).join(", ") || "nothing";
    await loadAll();
    $("editor-status").textContent = `Applied: policy v${c.version} (was v${c.previous_version}), changed ${fields}.`;
  } finally {
    btn.disabled = false;
  }
}

function init() {
  $("policy-form").addEventListener("submit", (e) => {
    e.preventDefault();
    preview().catch((err) => showAlert("Preview failed: " + err.message));
  });
  $("apply-btn").addEventListener("click", () => {
    apply().catch((err) => showAlert("Apply failed: " + err.message));
  });
  $("reset-btn").addEventListener("click", () => {
    if (state.policy) fillForm(state.policy);
    $("preview").replaceChildren();
    $("editor-status").textContent = "";
  });
  loadAll()
    .then(() => {
      state.ready = true;
      document.body.setAttribute("data-ready", "true");
    })
    .catch((err) => {
      const box = $("load-error");
      box.textContent = "Could not load the dashboard: " + err.message;
      box.hidden = false;
    });
}

let resizeTimer = null;
let lastWidth = window.innerWidth;
window.addEventListener("resize", () => {
  clearTimeout(resizeTimer);
  resizeTimer = setTimeout(() => {
    if (window.innerWidth === lastWidth) return;
    lastWidth = window.innerWidth;
    if (lastSummary) {
      chartSeries(lastSummary);
      chartBudget(lastSummary);
      chartConstraints(lastSummary);
    }
    if (lastReports) drawParity(lastReports);
  }, 150);
});

document.addEventListener("DOMContentLoaded", init);
