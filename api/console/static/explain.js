// Where traffic goes: the answer a client address or ECS subnet gets for a name (the
// API's explain trace, step by step).
import { api, fill, ApiError, h, s, newestOnly } from "./lib.js";

const COLOURS = 8;  // pool-0 .. pool-7 in console.css; more pools reuse them
let world = null;   // world.json, fetched once (from this origin)

async function worldMap() {
  if (!world) world = (await fetch("world.json", { credentials: "omit" })).json();
  return world;
}

// The zone a name is in: the longest zone origin it ends with.
function zoneOf(zones, name) {
  const fqdn = name.toLowerCase().endsWith(".") ? name.toLowerCase() : `${name.toLowerCase()}.`;
  return zones.map((z) => z.name).filter((z) => fqdn === z || fqdn.endsWith(`.${z}`))
    .sort((a, b) => b.length - a.length)[0];
}

// A world map coloured by the pool each country's clients get (GET …/geo).
async function geoSection(name, type) {
  const zones = (await api("GET", "/v1/zones")).data;
  const zone = zoneOf(zones, name);
  if (!zone) return null;
  let geo;
  try {
    geo = (await api("GET", `/v1/zones/${encodeURIComponent(zone)}/steered/${encodeURIComponent(name)}/${encodeURIComponent(type)}/geo`)).data;
  } catch (exc) {
    if (exc instanceof ApiError && exc.status === 404) return null;  // not a steered name
    throw exc;
  }
  if (!geo.geo_rules) {
    return h("section", { class: "card" }, h("h2", {}, "By country"),
      h("p", {}, `${geo.name} has no continent or country rules: every country gets pool ${Object.values(geo.countries)[0] || "(none)"}.`));
  }
  const map = await worldMap();
  const pools = [...new Set(Object.values(geo.countries))].sort((a, b) => String(a).localeCompare(String(b)));
  const colour = (pool) => pool === null ? "pool-none" : `pool-${pools.filter((p) => p !== null).indexOf(pool) % COLOURS}`;
  const svg = s("svg", { viewBox: map.viewBox, role: "img", "aria-label": `world map: the pool each country's clients get for ${geo.name}` });
  for (const country of map.countries) {
    const pool = country.code in geo.countries ? geo.countries[country.code] : null;
    const split = geo.split.includes(country.code) ? " (part of it elsewhere: a subdivision rule)" : "";
    svg.append(s("path", { d: country.d, class: colour(pool), "data-country": country.code },
      s("title", {}, `${country.name} (${country.code}): ${pool === null ? "no rule matches" : `pool ${pool}`}${split}`)));
  }
  const byPool = pools.map((pool) => [pool, Object.keys(geo.countries).filter((c) => geo.countries[c] === pool)]);
  return h("section", { class: "card map" }, h("h2", {}, `By country: ${geo.name} ${geo.type}`),
    svg,
    h("p", { class: "legend" }, byPool.map(([pool, list]) => h("span", {},
      h("span", { class: `swatch ${colour(pool)}` }), `${pool === null ? "no rule" : pool} (${list.length})`))),
    geo.address_rules.length ? h("p", { class: "muted" }, `By address first, whatever the country: ${geo.address_rules.join("; ")}.`) : null,
    h("p", { class: "muted" }, `Continents from ${geo.continents}.`),
    h("details", {}, h("summary", {}, "Countries by pool"),
      h("ul", {}, byPool.map(([pool, list]) => h("li", {}, h("strong", {}, pool === null ? "no rule" : pool), `: ${list.join(" ")}`)))));
}

export async function explainPage(view, presetName, presetType) {
  const name = h("input", { id: "explain-name", type: "text", required: true, value: presetName || "", placeholder: "www2.example.com" });
  const type = h("select", { id: "explain-type" }, ["A", "AAAA", "CNAME"].map((t) =>
    h("option", { value: t, selected: t === (presetType || "A") }, t)));
  const client = h("input", { id: "explain-client", type: "text", required: true, value: "192.0.2.1", placeholder: "198.51.100.7" });
  const ecs = h("input", { id: "explain-ecs", type: "text", placeholder: "10.1.2.0/24" });
  const fieldErrors = {};
  const fields = { name, type, client, ecs };
  const labelled = (key, text, input) => {
    fieldErrors[key] = h("span", { class: "field-error", id: `explain-${key}-error` });
    input.setAttribute("aria-describedby", `explain-${key}-error`);
    return h("label", { for: input.id }, text, input, fieldErrors[key]);
  };
  const result = h("section", { class: "card", "aria-live": "polite" });
  const mapBox = h("div", {});
  let mapped = null;  // the name and type the map shows
  const form = h("form", { "aria-label": "explain an answer" },
    labelled("name", "Name", name), labelled("type", "Type", type),
    labelled("client", "Client address", client), labelled("ecs", "ECS subnet (optional)", ecs),
    h("button", { type: "submit", class: "primary" }, "Explain"));
  const explainTurn = newestOnly();  // a second question asked before the first's answer came
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const newest = explainTurn();
    for (const span of Object.values(fieldErrors)) span.textContent = "";
    try {
      const found = (await api("GET", "/v1/explain", { query: { name: name.value.trim(), type: type.value,
        client: client.value.trim(), ecs: ecs.value.trim() } })).data;
      if (!newest()) return;
      fill(result,
        h("h2", {}, `${found.name} ${found.type} for ${client.value.trim()}${ecs.value.trim() ? ` (ECS ${ecs.value.trim()})` : ""}`),
        h("p", { class: "answer" }, found.steered
          ? [`Answer: `, h("strong", {}, found.values.join(", ") || found.rcode), found.pool ? ` from pool ${found.pool}` : "",
             `, TTL ${found.ttl}, ECS scope /${found.scope}`]
          : "Not a steered name: the zone's records answer."),
        found.trace.length ? h("ol", {}, found.trace.map((step) => h("li", {},
          h("strong", {}, step.step), `: ${step.detail}`,
          step.candidates.length ? h("span", { class: "muted" }, ` → ${step.candidates.join(", ")}`) : ""))) : null,
        h("details", {}, h("summary", {}, "Full trace, as `gslb explain` prints it"), h("pre", {}, found.text)));
      if (mapped !== `${found.name} ${found.type}`) {
        mapped = `${found.name} ${found.type}`;
        fill(mapBox, await geoSection(found.name, found.type));
      }
    } catch (exc) {
      if (exc instanceof ApiError && exc.fields.length) {
        for (const f of exc.fields) (fieldErrors[f.field] || fieldErrors.name).textContent = f.message;
        const first = fields[exc.fields[0].field];
        if (first) first.focus();
      } else {
        fill(result, h("p", { class: "error", role: "alert" }, exc.message));
      }
    }
  });
  fill(view, h("h1", {}, "Where traffic goes"),
    h("section", { class: "card" }, h("p", { class: "muted" },
      "The answer a resolver at this address (or with this client subnet) gets, and why."), form),
    result, mapBox);
  document.title = "Where traffic goes · gslb";
  if (presetName) form.requestSubmit();
  return null;
}
