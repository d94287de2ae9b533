// A steered record: pools and members with live health (polled every second), weight
// edits and drain/undrain/disable/enable of a member or a datacenter, each previewed
// (the API's dry run) before it is applied with If-Match.
import { api, fill, ApiError, h, notice, session, ago, previewThenApply } from "./lib.js";

const POLL_MS = 1000;

export async function recordPage(view, zone, name, type) {
  const base = `/v1/zones/${encodeURIComponent(zone)}/steered/${encodeURIComponent(name)}/${encodeURIComponent(type)}`;
  const writable = session.can("write", zone);
  let config = null;       // {record, etag} of the configuration
  let shownVersion = -1;   // the configuration version the table shows
  let rows = new Map();    // member value -> [{health, verdicts, state} cells], one per pool it is in
  let timer = null;
  let busy = false;        // a write is being previewed: do not rebuild under it
  let stopped = false;     // the user left the page
  const fqdn = name === "@" ? zone : name.endsWith(".") ? name : `${name}.${zone}`;
  const alert = h("div", { role: "alert" });
  const body = h("div", {});
  const updated = h("p", { class: "muted", "aria-live": "off" });

  async function load() {
    const reply = await api("GET", base);
    config = { record: reply.data.record, etag: reply.etag };
  }

  async function act(what, attempt) {
    busy = true;
    fill(alert);
    try {
      const done = await previewThenApply(what, attempt);
      if (done) {
        notice(`${what}: applied as version ${done.data.version}.`);
        await load();
        await refresh(true);
      }
    } catch (exc) {
      if (exc instanceof ApiError && exc.status === 412) {
        fill(alert, h("div", { class: "alert" },
          h("strong", {}, "Someone changed this record since you opened it. "),
          "Nothing was written. The page now shows the current version: check it, then make your change again."));
        await load();
        await refresh(true);
      } else {
        fill(alert, h("div", { class: "alert" }, `${what}: refused: ${exc.message}`,
          exc.fields && exc.fields.length ? ` (${exc.fields.map((f) => `${f.field}: ${f.message}`).join("; ")})` : ""));
      }
    } finally {
      busy = false;
    }
  }

  const memberWrite = (value, verb, method, path, json) => act(`${verb} ${value}`, (dry) =>
    api(method, `${base}/members/${encodeURIComponent(value)}${path}`,
        { body: json, etag: config.etag, query: { dry_run: dry ? "true" : undefined } }));
  const datacenterWrite = (dc, action) => act(`${action} datacenter ${dc}`, (dry) =>
    api("POST", `/v1/datacenters/${encodeURIComponent(dc)}/${action}`, { query: { dry_run: dry ? "true" : undefined } }));

  function healthCell(member) {
    const cell = h("td", { "data-label": "Health" });
    fillHealth(cell, member);
    return cell;
  }

  function fillHealth(cell, member) {
    const label = member.up ? "up" : "down";
    fill(cell, h("span", { class: member.up ? "up" : "down", "data-health": label }, label.toUpperCase()),
      h("span", { class: "muted" }, ` (${member.source}${member.override ? `, override ${member.override}` : ""})`));
    cell.dataset.health = label;
  }

  function fillVerdicts(cell, member) {
    if (!member.agents.length) {
      fill(cell, h("span", { class: "muted" }, member.check ? `${member.check}: no verdict yet` : "no check"));
      return;
    }
    fill(cell, h("div", { class: "muted" }, member.check),
      h("ul", {}, member.agents.map((a) => h("li", {},
        h("span", { class: a.up ? "up" : "down" }, `${a.agent} ${a.up ? "up" : "down"}`),
        ` ${ago(a.age)}${a.fresh ? "" : " (stale)"}${a.detail ? ` — ${a.detail}` : ""}`))));
  }

  function memberRow(member) {
    const value = member.value;
    const weight = h("input", { type: "number", class: "weight", min: 0, max: 1000, value: member.weight,
                                "aria-label": `weight of ${value}`, disabled: !writable });
    const verdicts = h("td", { "data-label": "Verdicts" });
    fillVerdicts(verdicts, member);
    const state = h("td", { "data-label": "State" }, member.state);
    const actions = h("td", { "data-label": "Actions" });
    if (writable) {
      actions.append(
        h("button", { type: "button", "aria-label": `save weight of ${value}`, onclick: () => {
          const w = Number(weight.value);
          memberWrite(value, `set weight ${w} on`, "PATCH", "", { weight: w });
        } }, "Save weight"),
        member.state === "drained"
          ? h("button", { type: "button", "aria-label": `undrain ${value}`, onclick: () => memberWrite(value, "undrain", "POST", "/undrain") }, "Undrain")
          : h("button", { type: "button", "aria-label": `drain ${value}`, onclick: () => memberWrite(value, "drain", "POST", "/drain") }, "Drain"),
        member.state === "disabled"
          ? h("button", { type: "button", "aria-label": `enable ${value}`, onclick: () => memberWrite(value, "enable", "POST", "/enable") }, "Enable")
          : h("button", { type: "button", "aria-label": `disable ${value}`, onclick: () => memberWrite(value, "disable", "POST", "/disable") }, "Disable"));
    }
    const health = healthCell(member);
    const row = h("tr", { "data-member": value },
      h("th", { scope: "row", "data-label": "Member" }, value),
      h("td", { "data-label": "Weight" }, writable ? weight : String(member.weight)),
      h("td", { "data-label": "Priority" }, String(member.priority)),
      h("td", { "data-label": "Datacenter" }, member.datacenter || "—"),
      state, health, verdicts, actions);
    rows.set(value, [...(rows.get(value) || []), { health, verdicts, state }]);
    return row;
  }

  function build(status) {
    rows = new Map();
    const datacenters = new Set();
    const pools = status.pools.map((pool) => {
      pool.members.forEach((m) => { if (m.datacenter) datacenters.add(m.datacenter); });
      return h("section", { class: "card", "aria-label": `pool ${pool.name}` },
        h("h2", {}, `Pool ${pool.name}`, pool.fallback ? h("span", { class: "muted" }, ` (falls back to ${pool.fallback})`) : null),
        h("table", { class: "members" },
          h("thead", {}, h("tr", {}, ["Member", "Weight", "Priority", "Datacenter", "State", "Health", "Verdicts", writable ? "Actions" : ""].map((t) => h("th", { scope: "col" }, t)))),
          h("tbody", {}, pool.members.map(memberRow))));
    });
    const dcs = writable && datacenters.size ? h("section", { class: "card", "aria-label": "datacenters" },
      h("h2", {}, "Datacenters"),
      h("p", { class: "muted" }, "Acts on every member in the datacenter, in every zone your token may change."),
      h("table", {}, h("tbody", {}, [...datacenters].sort().map((dc) => h("tr", {},
        h("th", { scope: "row" }, dc),
        h("td", {}, ["drain", "undrain", "disable", "enable"].map((action) =>
          h("button", { type: "button", "aria-label": `${action} datacenter ${dc}`, onclick: () => datacenterWrite(dc, action) },
            action[0].toUpperCase() + action.slice(1))))))))) : null;
    fill(body, ...pools, dcs || "");
    shownVersion = status.version;
  }

  async function refresh(rebuild = false) {
    const status = (await api("GET", `${base}/status`)).data;
    if (rebuild || (status.version !== shownVersion && !busy && !view.contains(document.activeElement?.closest("input")))) {
      if (status.version !== shownVersion && !rebuild) await load();
      build(status);
    } else {
      for (const pool of status.pools) {
        for (const member of pool.members) {
          for (const cells of rows.get(member.value) || []) {
            fillHealth(cells.health, member);
            fillVerdicts(cells.verdicts, member);
            cells.state.textContent = member.state;
          }
        }
      }
    }
    updated.textContent = `Live: updated ${new Date().toLocaleTimeString()} (configuration version ${status.version})`;
  }

  await load();
  fill(view,
    h("h1", {}, `${fqdn} ${type}`),
    h("p", {}, h("a", { href: `#/explain/${encodeURIComponent(fqdn)}/${encodeURIComponent(type)}` }, "Where this record's traffic goes"),
      writable ? "" : h("span", { class: "muted" }, " · read-only: your token cannot change this zone")),
    alert, updated, body);
  document.title = `${name} ${type} · gslb`;
  await refresh(true);
  const tick = async () => {
    if (!document.hidden) {  // a tab in the background asks nothing
      try { await refresh(); } catch (exc) { updated.textContent = `Live updates paused: ${exc.message}`; }
    }
    if (!stopped) timer = setTimeout(tick, POLL_MS);
  };
  timer = setTimeout(tick, POLL_MS);
  return () => { stopped = true; clearTimeout(timer); };
}
