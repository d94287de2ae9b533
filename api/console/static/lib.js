// Helpers of the console: the API client, DOM building (text only: never HTML from
// data), notices, the preview-then-confirm dialog and its chart, a line diff.

const TOKEN_KEY = "gslb-token";

export const session = {
  get token() { return sessionStorage.getItem(TOKEN_KEY); },
  set token(value) {
    if (value) sessionStorage.setItem(TOKEN_KEY, value);
    else sessionStorage.removeItem(TOKEN_KEY);
  },
  me: null,  // {name, role, zones} from /v1/token
  can(role, zone) {
    const order = ["read", "write", "admin"];
    if (!this.me || order.indexOf(this.me.role) < order.indexOf(role)) return false;
    if (!zone || this.me.zones.length === 0) return true;
    const z = zone.toLowerCase().endsWith(".") ? zone.toLowerCase() : zone.toLowerCase() + ".";
    return this.me.zones.includes(z);
  },
};

export class ApiError extends Error {
  constructor(status, body) {
    super((body && (body.detail || body.title)) || `HTTP ${status}`);
    this.status = status;
    this.body = body || {};
  }
  get fields() { return this.body.errors || []; }
}

// One request to the REST API with the session's token; JSON in and out. The token
// goes in a header only (never in a URL, so no log or history holds it).
export async function api(method, path, { body, etag, query } = {}) {
  const headers = { Accept: "application/json" };
  if (session.token) headers.Authorization = `Bearer ${session.token}`;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (etag) headers["If-Match"] = etag;
  let url = path;
  if (query) {
    const params = new URLSearchParams();
    for (const [k, v] of Object.entries(query)) {
      if (v !== undefined && v !== null && v !== "") params.append(k, String(v));
    }
    const text = params.toString();
    if (text) url += (url.includes("?") ? "&" : "?") + text;
  }
  const reply = await fetch(url, { method, headers, body: body === undefined ? undefined : JSON.stringify(body),
                                   credentials: "omit", cache: "no-store" });
  const type = reply.headers.get("Content-Type") || "";
  const data = type.includes("json") ? await reply.json() : await reply.text();
  if (!reply.ok) {
    if (reply.status === 401) window.dispatchEvent(new Event("gslb-unauthorized"));
    throw new ApiError(reply.status, typeof data === "object" ? data : { detail: data });
  }
  return { data, etag: reply.headers.get("ETag"), status: reply.status };
}

// h("td", {class: "x", "aria-label": "..."}, "text", child): an element; strings become
// text nodes, so a value from the API is never parsed as markup.
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith("on")) el.addEventListener(key.slice(2), value);
    else if (key === "text") el.textContent = value;
    else el.setAttribute(key, value === true ? "" : String(value));
  }
  append(el, children);
  return el;
}

// Replace an element's children (arrays flattened; null, undefined and false skipped).
export function fill(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

// Of overlapping requests for one part of a page, only the newest may fill it: an older
// answer that arrives later (a busy API) is dropped, never shown over a newer one. Each
// call of the returned function starts a request and gives its check: still the newest?
export function newestOnly() {
  let asked = 0;
  return () => {
    const mine = ++asked;
    return () => mine === asked;
  };
}

function append(el, children) {
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

const SVG = "http://www.w3.org/2000/svg";
export function s(tag, attrs = {}, ...children) {
  const el = document.createElementNS(SVG, tag);
  for (const [key, value] of Object.entries(attrs)) el.setAttribute(key, String(value));
  append(el, children);
  return el;
}

let noticeTimer = null;
export function notice(text, bad = false) {
  const box = document.getElementById("notice");
  box.className = bad ? "bad" : "";
  box.textContent = text;
  clearTimeout(noticeTimer);
  noticeTimer = setTimeout(() => { box.textContent = ""; }, 6000);
}

export function ago(seconds) {
  if (seconds === null || seconds === undefined) return "never";
  if (seconds < 60) return `${seconds.toFixed(seconds < 10 ? 1 : 0)} s ago`;
  if (seconds < 7200) return `${Math.round(seconds / 60)} min ago`;
  return `${Math.round(seconds / 3600)} h ago`;
}

export function when(epoch) {
  return new Date(epoch * 1000).toLocaleString();
}

// The share of answers per pool and per member, before and after, as SVG bars.
export function previewChart(preview) {
  const box = h("div", { class: "chart" });
  if (!preview.length) {
    box.append(h("p", { class: "muted" }, "No steered answer changes for any sampled client network."));
    return box;
  }
  for (const item of preview) {
    box.append(h("h3", {}, `${item.name} ${item.type}`),
               h("p", { class: "muted" }, `share of answers over ${item.networks} client networks; grey: now, blue: after`));
    const rows = [...item.pools.map((x) => ["pool", x]), ...item.members.map((x) => ["member", x])];
    // One row per pool and member: its name, then a bar now and a bar after (percent beside).
    const rowHeight = 52, barWidth = 270, width = 360;
    const svg = s("svg", { viewBox: `0 0 ${width} ${rows.length * rowHeight}`, role: "img",
                           "aria-label": `answer shares for ${item.name} before and after` });
    rows.forEach(([kind, share], i) => {
      const y = i * rowHeight;
      const changed = Math.abs(share.before - share.after) > 1e-9;
      svg.append(s("text", { x: 0, y: y + 13, class: changed ? "changed" : "" },
        `${kind} ${share.key}${changed ? `: ${pct(share.before)} → ${pct(share.after)}` : `: ${pct(share.after)}`}`));
      svg.append(s("rect", { x: 0, y: y + 19, height: 12, width: Math.max(1, share.before * barWidth), class: "before" }, s("title", {}, `now ${pct(share.before)}`)));
      svg.append(s("text", { x: barWidth + 6, y: y + 29, class: "muted" }, `now ${pct(share.before)}`));
      svg.append(s("rect", { x: 0, y: y + 34, height: 12, width: Math.max(1, share.after * barWidth), class: "after" }, s("title", {}, `after ${pct(share.after)}`)));
      svg.append(s("text", { x: barWidth + 6, y: y + 44 }, `after ${pct(share.after)}`));
    });
    box.append(svg);
  }
  return box;
}

export function pct(x) { return `${(x * 100).toFixed(x > 0 && x < 0.1 ? 1 : 0)}%`; }

// Preview then confirm: `attempt(dryRun)` makes the write (dry run first); the dialog
// shows the preview, and only Apply sends it for real. Resolves to the real reply, or
// null when cancelled. Errors (412 included) propagate to the caller.
export async function previewThenApply(what, attempt) {
  const preview = await attempt(true);
  const dialog = document.getElementById("confirm");
  document.getElementById("confirm-what").textContent = what;
  const chart = document.getElementById("confirm-chart");
  chart.replaceChildren(previewChart(preview.data.preview || []));
  const changes = preview.data.changes || [];
  document.getElementById("confirm-changes").textContent = changes.length
    ? `Changes: ${changes.map((c) => `${c.kind} ${c.name || c.zone} ${c.type || ""}`.trim()).join("; ")}`
    : "Nothing would change.";
  const apply = document.getElementById("confirm-apply");
  const cancel = document.getElementById("confirm-cancel");
  apply.disabled = changes.length === 0;
  dialog.showModal();
  (changes.length ? apply : cancel).focus();
  const choice = await new Promise((resolve) => {
    const done = (value) => () => { apply.onclick = cancel.onclick = dialog.oncancel = null; resolve(value); };
    apply.onclick = done(true);
    cancel.onclick = done(false);
    dialog.oncancel = done(false);
  });
  dialog.close();
  if (!choice) return null;
  return attempt(false);
}

// Lines removed and added between two texts (a longest-common-subsequence walk).
export function lineDiff(before, after) {
  const a = before ? before.split("\n") : [], b = after ? after.split("\n") : [];
  const n = a.length, m = b.length;
  const lcs = Array.from({ length: n + 1 }, () => new Array(m + 1).fill(0));
  for (let i = n - 1; i >= 0; i--) {
    for (let j = m - 1; j >= 0; j--) {
      lcs[i][j] = a[i] === b[j] ? lcs[i + 1][j + 1] + 1 : Math.max(lcs[i + 1][j], lcs[i][j + 1]);
    }
  }
  const out = [];
  let i = 0, j = 0;
  while (i < n || j < m) {
    if (i < n && j < m && a[i] === b[j]) { out.push([" ", a[i]]); i++; j++; }
    else if (j < m && (i >= n || lcs[i][j + 1] >= lcs[i + 1][j])) { out.push(["+", b[j]]); j++; }
    else { out.push(["-", a[i]]); i++; }
  }
  return out;
}

// A readable, stable text of a configuration value (a record, an RRset, zone text).
export function readable(value, indent = "") {
  if (value === null || value === undefined) return "";
  if (typeof value === "string") return value.trimEnd();
  if (Array.isArray(value)) {
    return value.map((item) => typeof item === "object" && item !== null
      ? `${indent}- ${readable(item, indent + "  ").trimStart()}` : `${indent}- ${item}`).join("\n");
  }
  if (typeof value === "object") {
    return Object.keys(value).sort().map((key) => {
      const item = value[key];
      if (item !== null && typeof item === "object") {
        const inner = readable(item, indent + "  ");
        return `${indent}${key}:\n${inner}`;
      }
      return `${indent}${key}: ${item}`;
    }).join("\n");
  }
  return String(value);
}
