// Zones and their RRsets: browse page by page, search the page, edit one RRset with the
// API's validation messages shown at the field they name.
import { api, fill, ApiError, h, notice, session, previewThenApply, newestOnly } from "./lib.js";

const PAGE = 50;

export async function zonesPage(view) {
  const zones = (await api("GET", "/v1/zones")).data;
  fill(view, h("h1", {}, "Zones"), h("section", { class: "card" },
    h("table", {}, h("thead", {}, h("tr", {}, ["Zone", "Serial", "Records", "Steered"].map((t) => h("th", { scope: "col" }, t)))),
      h("tbody", {}, zones.map((z) => h("tr", {},
        h("td", {}, h("a", { href: `#/zone/${encodeURIComponent(z.name)}` }, z.name)),
        h("td", {}, String(z.serial)), h("td", {}, String(z.records)), h("td", {}, String(z.steered))))))));
  document.title = "Zones · gslb";
  return null;
}

export async function zonePage(view, zone) {
  let offset = 0;
  const writable = session.can("write", zone);
  const search = h("input", { id: "rrset-search", type: "search", placeholder: "www" });
  const rows = h("tbody", {});
  const pager = h("p", {});
  const editor = h("section", { class: "card", hidden: true, "aria-label": "edit RRset" });

  const loadTurn = newestOnly();  // each keystroke of the search loads: the last one shows
  async function load() {
    const newest = loadTurn();
    const page = (await api("GET", `/v1/zones/${encodeURIComponent(zone)}/rrsets`, { query: { offset, limit: PAGE } })).data;
    if (!newest()) return;
    const term = search.value.trim().toLowerCase();
    const shown = page.rrsets.filter((r) => !term || r.name.toLowerCase().includes(term) || r.type.toLowerCase() === term);
    fill(rows, ...shown.map((r) => h("tr", {},
      h("td", {}, r.name), h("td", {}, r.type), h("td", {}, String(r.ttl)),
      h("td", { class: "rdata" }, r.rdata.join("\n")),
      h("td", {}, writable && r.type !== "SOA" ? h("button", { type: "button", "aria-label": `edit ${r.name} ${r.type}`, onclick: () => edit(r) }, "Edit") : ""))));
    fill(pager,
      h("button", { type: "button", id: "page-previous", disabled: offset === 0, onclick: () => { offset = Math.max(0, offset - PAGE); load(); } }, "Previous page"),
      ` page ${offset / PAGE + 1} (${PAGE} owners a page) `,
      h("button", { type: "button", id: "page-next", disabled: !page.more, onclick: () => { offset += PAGE; load(); } }, "Next page"));
  }

  async function edit(rrset) {
    const relative = rrset.name;
    const current = await api("GET", `/v1/zones/${encodeURIComponent(zone)}/rrsets/${encodeURIComponent(relative)}/${rrset.type}`);
    const ttl = h("input", { id: "edit-ttl", type: "number", value: current.data.ttl, "aria-describedby": "edit-ttl-error" });
    const rdata = h("textarea", { id: "edit-rdata", rows: 4, cols: 40, "aria-describedby": "edit-rdata-error" });
    rdata.value = current.data.rdata.join("\n");
    const errors = { ttl: h("span", { id: "edit-ttl-error", class: "field-error" }), rdata: h("span", { id: "edit-rdata-error", class: "field-error" }) };
    const general = h("p", { class: "error", role: "alert" });
    const form = h("form", { "aria-label": `edit ${rrset.name} ${rrset.type}` },
      h("h2", {}, `Edit ${rrset.name} ${rrset.type}`),
      h("label", { for: "edit-ttl" }, "TTL (seconds)", ttl, errors.ttl),
      h("label", { for: "edit-rdata" }, "Records, one per line", rdata, errors.rdata),
      general,
      h("button", { type: "submit", class: "primary" }, "Save"),
      h("button", { type: "button", onclick: () => { editor.hidden = true; } }, "Close"));
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      errors.ttl.textContent = errors.rdata.textContent = general.textContent = "";
      try {
        const body = { ttl: Number(ttl.value), rdata: rdata.value.split("\n").map((x) => x.trim()).filter(Boolean) };
        const done = await previewThenApply(`save ${rrset.name} ${rrset.type}`, (dry) =>
          api("PUT", `/v1/zones/${encodeURIComponent(zone)}/rrsets/${encodeURIComponent(relative)}/${rrset.type}`,
              { etag: current.etag, body, query: { dry_run: dry ? "true" : undefined } }));
        if (!done) return;
        notice(`${rrset.name} ${rrset.type} saved as version ${done.data.version}.`);
        editor.hidden = true;
        await load();
      } catch (exc) {
        if (!(exc instanceof ApiError)) throw exc;
        if (exc.status === 412) general.textContent = "Someone changed this RRset since you opened it; nothing was written. Close and edit again to see the current records.";
        else general.textContent = exc.message;
        for (const f of exc.fields) {
          const key = f.field.replace(/^body\./, "").replace(/\[.*$/, "").split(".")[0];
          const line = /\[(\d+)\]/.exec(f.field);
          (errors[key] || general).textContent = `${line ? `line ${Number(line[1]) + 1}: ` : ""}${f.message}`;
        }
        const bad = exc.fields.map((f) => f.field.replace(/^body\./, "")).find((f) => f.startsWith("ttl") || f.startsWith("rdata"));
        if (bad) (bad.startsWith("ttl") ? ttl : rdata).setAttribute("aria-invalid", "true");
      }
    });
    fill(editor, form);
    editor.hidden = false;
    ttl.focus();
  }

  search.addEventListener("input", () => load());
  fill(view, h("h1", {}, `Zone ${zone}`),
    h("section", { class: "card" },
      h("label", { for: "rrset-search" }, "Search this page (name or type)", search),
      h("table", {}, h("thead", {}, h("tr", {}, ["Name", "Type", "TTL", "Records", ""].map((t) => h("th", { scope: "col" }, t)))), rows),
      pager),
    editor);
  document.title = `${zone} · gslb`;
  await load();
  return null;
}
