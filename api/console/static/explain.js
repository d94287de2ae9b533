// Where traffic goes: the answer a client address or ECS subnet gets for a name (the
// API's explain trace, step by step).
import { api, fill, ApiError, h } from "./lib.js";

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
  const form = h("form", { "aria-label": "explain an answer" },
    labelled("name", "Name", name), labelled("type", "Type", type),
    labelled("client", "Client address", client), labelled("ecs", "ECS subnet (optional)", ecs),
    h("button", { type: "submit", class: "primary" }, "Explain"));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    for (const span of Object.values(fieldErrors)) span.textContent = "";
    try {
      const found = (await api("GET", "/v1/explain", { query: { name: name.value.trim(), type: type.value,
        client: client.value.trim(), ecs: ecs.value.trim() } })).data;
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
    result);
  document.title = "Where traffic goes · gslb";
  if (presetName) form.requestSubmit();
  return null;
}
