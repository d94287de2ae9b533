// The console's entry: sign-in, the page router (location.hash), the overview.
import { api, fill, ApiError, h, session, ago, when } from "./lib.js";
import { recordPage } from "./record.js";
import { historyPage } from "./history.js";
import { explainPage } from "./explain.js";
import { zonesPage, zonePage } from "./zones.js";

const view = document.getElementById("view");
let leave = null;  // the current page's clean-up (stops its polling)

function show(...children) {
  fill(view, ...children);
}

function loginPage(message) {
  document.getElementById("nav").hidden = true;
  document.getElementById("logout").hidden = true;
  document.getElementById("who").textContent = "";
  const input = h("input", { id: "token", type: "password", autocomplete: "off", required: true,
                             "aria-describedby": "token-help" });
  const error = h("p", { class: "error", role: "alert" }, message || "");
  const form = h("form", { class: "login card", "aria-labelledby": "login-title" },
    h("h1", { id: "login-title" }, "Sign in"),
    h("label", { for: "token" }, "API token", input),
    h("p", { id: "token-help", class: "muted" },
      "A token from `gslb token create`. It is kept in this tab only (sessionStorage) and sent as an Authorization header."),
    error,
    h("button", { type: "submit", class: "primary" }, "Sign in"));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    session.token = input.value.trim();
    try {
      await start();
    } catch (exc) {
      session.token = null;
      error.textContent = exc instanceof ApiError && exc.status === 401
        ? "That token is not valid here." : `Cannot sign in: ${exc.message}`;
    }
  });
  show(h("section", { class: "card login" }, form));
  input.focus();
}

async function start() {
  session.me = (await api("GET", "/v1/token")).data;
  document.getElementById("nav").hidden = false;
  document.getElementById("logout").hidden = false;
  document.getElementById("who").textContent = `${session.me.name} (${session.me.role})`;
  await route();
}

async function route() {
  if (leave) { leave(); leave = null; }
  if (!session.token || !session.me) { loginPage(); return; }
  const path = decodeURIComponent(location.hash.replace(/^#\/?/, "")).split("/").filter(Boolean);
  for (const link of document.querySelectorAll("nav a")) {
    const target = link.getAttribute("href").replace(/^#\/?/, "");
    if ((path[0] || "") === target || (target === "zones" && path[0] === "zone")) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  show(h("p", { class: "muted" }, "Loading…"));
  try {
    if (path[0] === "record" && path.length === 4) leave = await recordPage(view, path[1], path[2], path[3]);
    else if (path[0] === "history") leave = await historyPage(view);
    else if (path[0] === "explain") leave = await explainPage(view, path[1], path[2]);
    else if (path[0] === "zones") leave = await zonesPage(view);
    else if (path[0] === "zone" && path[1]) leave = await zonePage(view, path[1]);
    else leave = await overviewPage();
  } catch (exc) {
    if (exc instanceof ApiError && exc.status === 401) return;
    show(h("p", { class: "error", role: "alert" }, `Could not load this page: ${exc.message}`));
  }
}

async function overviewPage() {
  const [zones, nodes, health, audit] = await Promise.all([
    api("GET", "/v1/zones"), api("GET", "/v1/nodes"), api("GET", "/v1/health"),
    api("GET", "/v1/audit", { query: { limit: 10 } })]);
  const steered = await Promise.all(zones.data.filter((z) => z.steered > 0).map((z) =>
    api("GET", `/v1/zones/${encodeURIComponent(z.name)}/steered`).then((r) => [z.name, r.data])));
  const down = health.data.filter((c) => !c.up);
  const stale = new Set();
  for (const check of health.data) for (const agent of check.agents) if (!agent.fresh) stale.add(agent.agent);
  const stopped = nodes.data.filter((n) => n.stopped || n.lagging.length);

  const stat = (label, value, bad) => h("div", { class: "stat" }, h("b", { class: bad ? "down" : "up" }, String(value)), label);
  const records = h("ul", {});
  for (const [zone, list] of steered) {
    for (const item of list) {
      const relative = item.name === zone ? "@" : item.name.slice(0, -(zone.length + 1));
      records.append(h("li", {}, h("a", { href: `#/record/${encodeURIComponent(zone)}/${encodeURIComponent(relative)}/${item.type}` },
        `${item.name} ${item.type}`)));
    }
  }
  const zoneRows = zones.data.map((z) => h("tr", {},
    h("td", {}, h("a", { href: `#/zone/${encodeURIComponent(z.name)}` }, z.name)),
    h("td", {}, String(z.serial)), h("td", {}, String(z.records)), h("td", {}, String(z.steered))));
  const nodeRows = nodes.data.map((n) => h("tr", {},
    h("td", {}, n.node), h("td", {}, `v${n.config_version}`),
    h("td", { class: n.stopped ? "down" : n.lagging.length ? "warn" : "up" },
      n.stopped ? "stopped reporting" : n.lagging.length ? `lagging: ${n.lagging.join(", ")}` : "serving"),
    h("td", {}, n.seen ? ago(n.seen) : "now")));
  const changes = audit.data.map((a) => h("tr", {},
    h("td", {}, String(a.version)), h("td", {}, when(a.time)), h("td", {}, a.author),
    h("td", {}, `${a.name || a.zone} ${a.type}`.trim()), h("td", {}, a.message)));
  show(
    h("h1", {}, "Overview"),
    h("div", { class: "stats" },
      stat("zones", zones.data.length, false),
      stat("health checks down", down.length, down.length > 0),
      stat("agents stale", stale.size, stale.size > 0),
      stat("nodes flagged", stopped.length, stopped.length > 0)),
    down.length ? h("section", { class: "card" }, h("h2", {}, "Down"),
      h("ul", {}, down.map((c) => h("li", {}, h("span", { class: "down" }, c.check), " ",
        c.agents.map((a) => `${a.agent}: ${a.detail || (a.up ? "up" : "down")}`).join("; "))))) : null,
    h("section", { class: "card" }, h("h2", {}, "Steered records"), records),
    h("section", { class: "card" }, h("h2", {}, "Zones"),
      h("table", {}, h("thead", {}, h("tr", {}, h("th", {}, "Zone"), h("th", {}, "Serial"), h("th", {}, "Records"), h("th", {}, "Steered"))),
        h("tbody", {}, zoneRows))),
    h("section", { class: "card" }, h("h2", {}, "Nodes"),
      h("table", {}, h("thead", {}, h("tr", {}, h("th", {}, "Node"), h("th", {}, "Configuration"), h("th", {}, "State"), h("th", {}, "Last heartbeat"))),
        h("tbody", {}, nodeRows))),
    h("section", { class: "card" }, h("h2", {}, "Recent changes"),
      h("table", {}, h("thead", {}, h("tr", {}, h("th", {}, "Version"), h("th", {}, "When"), h("th", {}, "Who"), h("th", {}, "Record"), h("th", {}, "What"))),
        h("tbody", {}, changes)),
      h("p", {}, h("a", { href: "#/history" }, "All versions and the audit trail"))));
  document.title = "Overview · gslb";
  return null;
}

document.getElementById("logout").addEventListener("click", () => {
  session.token = null;
  session.me = null;
  location.hash = "#/";
  loginPage("Signed out.");
});
window.addEventListener("gslb-unauthorized", () => {
  session.token = null;
  session.me = null;
  if (leave) { leave(); leave = null; }
  loginPage("The token was refused (revoked or expired): sign in again.");
});
window.addEventListener("hashchange", () => { route().then(() => view.focus()); });

if (session.token) start().catch(() => loginPage()); else loginPage();
