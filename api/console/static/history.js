// History: versions with a per-record diff, the audit trail filtered by record, author
// and time, and rollback (admin) with the same preview-then-confirm as every write.
import { api, fill, ApiError, h, notice, session, when, lineDiff, readable, previewThenApply, newestOnly } from "./lib.js";

function diffBlock(change) {
  const lines = lineDiff(readable(change.before), readable(change.after));
  const title = `${change.kind} ${change.name || change.zone} ${change.type || ""}`.trim();
  const status = change.before === null || change.before === undefined ? "added"
    : change.after === null || change.after === undefined ? "removed" : "changed";
  return h("div", { class: "change" },
    h("h3", {}, `${title} `, h("span", { class: "muted" }, `(${status}, zone ${change.zone})`)),
    h("div", { class: "diff", role: "group", "aria-label": `diff of ${title}` }, folded(lines)));
}

// Changed lines with CONTEXT unchanged lines around them; longer unchanged runs folded.
const CONTEXT = 3;
function folded(lines) {
  const near = lines.map(() => false);
  lines.forEach(([mark], i) => {
    if (mark === " ") return;
    for (let j = Math.max(0, i - CONTEXT); j <= Math.min(lines.length - 1, i + CONTEXT); j++) near[j] = true;
  });
  const out = [];
  lines.forEach(([mark, text], i) => {
    if (near[i]) out.push(h("div", { class: mark === "+" ? "add" : mark === "-" ? "del" : "" }, `${mark} ${text}`));
    else if (i === 0 || near[i - 1]) out.push(h("div", { class: "muted" }, "  …"));
  });
  return out;
}

export async function historyPage(view) {
  const detail = h("section", { class: "card", "aria-live": "polite" },
    h("p", { class: "muted" }, "Choose a version to see what it changed."));
  const alert = h("div", { role: "alert" });

  async function showVersion(number) {
    const version = (await api("GET", `/v1/versions/${number}`)).data;
    const rollback = session.can("admin") ? h("button", { type: "button", class: "primary",
      "aria-label": `roll back to version ${number - 1}, before this change`,
      onclick: () => rollbackTo(number - 1) }, `Roll back to version ${number - 1}`) : null;
    fill(detail,
      h("h2", {}, `Version ${version.number}: ${version.message}`),
      h("p", { class: "muted" }, `${version.author}, ${when(version.time)}; zones ${version.zones.join(", ")}`),
      rollback,
      version.changes.map(diffBlock));
  }

  async function rollbackTo(number) {
    fill(alert);
    try {
      const done = await previewThenApply(`roll back to version ${number}`, (dry) =>
        api("POST", `/v1/versions/${number}/rollback`, { query: { dry_run: dry ? "true" : undefined } }));
      if (done) {
        notice(`Rolled back to version ${number}: now version ${done.data.version}.`);
        const fresh = await render();
        await showVersion(fresh[0].number);
      }
    } catch (exc) {
      fill(alert, h("div", { class: "alert" }, `Rollback refused: ${exc.message}`));
    }
  }

  const list = h("tbody", {});
  async function render() {
    const fresh = (await api("GET", "/v1/versions", { query: { limit: 50 } })).data;
    fill(list, ...fresh.map((v) => h("tr", {},
      h("td", {}, h("button", { type: "button", "aria-label": `show version ${v.number}`, onclick: () => showVersion(v.number).catch((e) => notice(e.message, true)) }, `v${v.number}`)),
      h("td", {}, when(v.time)), h("td", {}, v.author), h("td", {}, v.message))));
    return fresh;
  }

  // The audit trail, filtered.
  const name = h("input", { id: "audit-name", type: "search", placeholder: "www2" });
  const type = h("input", { id: "audit-type", type: "text", placeholder: "A", size: 6 });
  const author = h("input", { id: "audit-author", type: "text" });
  const since = h("input", { id: "audit-since", type: "datetime-local" });
  const until = h("input", { id: "audit-until", type: "datetime-local" });
  const auditRows = h("tbody", {});
  const auditError = h("p", { class: "error", role: "alert" });
  const epoch = (input) => input.value ? new Date(input.value).getTime() / 1000 : undefined;
  const auditTurn = newestOnly();  // the page's own first fill races the user's filters
  async function filterAudit(event) {
    if (event) event.preventDefault();
    const newest = auditTurn();
    auditError.textContent = "";
    try {
      const entries = (await api("GET", "/v1/audit", { query: { name: name.value.trim(), type: type.value.trim(),
        author: author.value.trim(), since: epoch(since), until: epoch(until), limit: 100 } })).data;
      if (!newest()) return;
      fill(auditRows, ...entries.map((a) => h("tr", {},
        h("td", {}, String(a.version)), h("td", {}, when(a.time)), h("td", {}, a.author),
        h("td", {}, `${a.name || a.zone} ${a.type}`.trim()), h("td", {}, a.message))));
      if (!entries.length) fill(auditRows, h("tr", {}, h("td", { colspan: 5, class: "muted" }, "No change matches.")));
    } catch (exc) {
      if (newest()) auditError.textContent = exc instanceof ApiError ? exc.message : String(exc);
    }
  }
  const form = h("form", { "aria-label": "filter the audit trail" },
    h("label", { for: "audit-name" }, "Record name", name),
    h("label", { for: "audit-type" }, "Type", type),
    h("label", { for: "audit-author" }, "Author", author),
    h("label", { for: "audit-since" }, "Since", since),
    h("label", { for: "audit-until" }, "Until", until),
    h("button", { type: "submit" }, "Filter"));
  form.addEventListener("submit", filterAudit);

  fill(view,
    h("h1", {}, "History"), alert,
    h("section", { class: "card" }, h("h2", {}, "Versions"),
      h("table", {}, h("thead", {}, h("tr", {}, ["Version", "When", "Who", "Message"].map((t) => h("th", { scope: "col" }, t)))), list)),
    detail,
    h("section", { class: "card" }, h("h2", {}, "Audit trail"), form, auditError,
      h("table", {}, h("thead", {}, h("tr", {}, ["Version", "When", "Who", "Record", "What"].map((t) => h("th", { scope: "col" }, t)))), auditRows)));
  const versions = await render();
  await filterAudit();
  if (versions.length) await showVersion(versions[0].number);
  document.title = "History · gslb";
  return null;
}
