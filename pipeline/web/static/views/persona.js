// A persona's own page (/persona/<id>): description, attributes, status and filter scores with
// their reasons, typed relationships in and out, the expansion path back to the source text,
// aliases and merged ids, and the samples it produced. All of it LLM output, all of it text.

import { api } from "../api.js";
import { asText, defList, fmt, h, personaHref, personaLink, section, table } from "../dom.js";
import { shortLabel } from "../graphview.js";

function statusBadge(status) {
  return h("span", { class: `status status-${String(status || "unknown").replace(/[^a-z]/g, "")}` }, asText(status || "unknown"));
}

function scoresTable(scores, reasons) {
  const byCriterion = new Map();
  const loose = [];
  for (const r of reasons || []) {
    if (r && typeof r === "object" && r.criterion) byCriterion.set(r.criterion, r.reason ?? r.text ?? JSON.stringify(r));
    else loose.push(r);
  }
  const names = [...new Set([...Object.keys(scores || {}), ...byCriterion.keys()])];
  const out = [];
  if (names.length) {
    out.push(table(["criterion", "score", "reason"], names.map((name) => {
      const score = scores?.[name];
      const meter = typeof score === "number" ? h("meter", { min: 0, max: score > 1 ? 5 : 1, value: score, title: String(score) }) : null;
      return [name, h("span", { class: "score" }, meter, ` ${asText(score)}`), asText(byCriterion.get(name) ?? "")];
    })));
  }
  if (loose.length) out.push(h("ul", { class: "reasons" }, loose.map((r) => h("li", {}, asText(r)))));
  return out.length ? out : [h("p", { class: "muted" }, "Not filtered yet: no scores.")];
}

function relationships(rows, direction) {
  if (!rows?.length) return h("p", { class: "muted" }, direction === "out" ? "No relationships out." : "No relationships in.");
  return table(direction === "out" ? ["this persona", "relationship", "persona"] : ["persona", "relationship", "this persona"],
    rows.map((r) => {
      const other = personaLink(r.id, shortLabel(r.description || r.id, 90));
      const type = h("code", { class: "rel-type" }, `—${asText(r.type)}→`);
      return direction === "out" ? ["●", type, other] : [other, type, "●"];
    }), { className: `data rel rel-${direction}` });
}

function expansionPath(p) {
  const steps = [];
  if (p.source) {
    steps.push(h("li", { class: "path-source" },
      h("span", { class: "path-kind" }, `source text${p.source.stance ? ` (${asText(p.source.stance)})` : ""}`),
      h("blockquote", { class: "source-text" }, asText(p.source.text ?? p.source.id))));
  }
  for (const step of p.path || []) {
    const here = step.id === p.id;
    steps.push(h("li", { class: here ? "path-here" : "" },
      step.type ? h("code", { class: "rel-type" }, `—${asText(step.type)}→`) : null,
      " ",
      here ? h("strong", {}, shortLabel(step.description, 120), " (this persona)")
        : personaLink(step.id, shortLabel(step.description || step.id, 120))));
  }
  if (!steps.length) return h("p", { class: "muted" }, "No expansion path recorded.");
  return h("ol", { class: "path" }, steps);
}

function samplesList(samples) {
  if (!samples?.length) return h("p", { class: "muted" }, "No samples from this persona yet.");
  return h("ul", { class: "samples" }, samples.map((s) =>
    h("li", {}, h("span", { class: "task" }, asText(s.task || "sample")), h("pre", { class: "sample-text" }, asText(s.text)))));
}

export async function showPersona(ctx) {
  const { root, id } = ctx;
  ctx.setTitle(`Persona ${id}`);
  const p = await api.persona(id);
  ctx.setTitle(shortLabel(p.description, 60) || p.id);
  const attributes = Object.entries(p.attributes || {});
  root.append(
    h("header", { class: "persona-head" },
      h("p", { class: "crumbs" }, "Persona ", h("code", { class: "persona-id" }, p.id), " ", statusBadge(p.status),
        Number.isInteger(p.hop) ? h("span", { class: "hop" }, `hop ${p.hop}`) : null),
      p.resolved_from && p.resolved_from !== p.id
        ? h("p", { class: "note" }, "You asked for ", h("code", {}, asText(p.resolved_from)), ", which was merged into this persona.")
        : null,
      h("h1", { class: "description", id: "persona-description" }, asText(p.description)),
      h("p", { class: "actions" },
        h("a", { class: "button", href: `/neighbourhood/${encodeURIComponent(p.id)}`, "data-link": true }, "Neighbourhood"),
        " ",
        h("a", { class: "button secondary", href: `/?${new URLSearchParams({ name: "expansion_path", "p.id": p.id })}`, "data-link": true }, "expansion_path in the console"))),
    h("div", { class: "persona-grid" },
      section("Attributes", attributes.length ? defList(attributes) : h("p", { class: "muted" }, "No attributes.")),
      section("Status and filter scores", h("p", {}, statusBadge(p.status)), ...scoresTable(p.scores, p.reasons)),
      section(`Relationships out (${fmt((p.out || []).length)})`, relationships(p.out, "out")),
      section(`Relationships in (${fmt((p.in || []).length)})`, relationships(p.in, "in")),
      section("Expansion path", expansionPath(p)),
      section("Aliases and merged ids",
        (p.aliases || []).length ? h("ul", { class: "aliases" }, p.aliases.map((a) => h("li", {}, asText(a)))) : h("p", { class: "muted" }, "No aliases."),
        (p.merged_ids || []).length ? h("p", {}, "Merged ids: ", p.merged_ids.map((m, i) => [i ? ", " : "", h("code", {}, asText(m))])) : h("p", { class: "muted" }, "No merged ids.")),
      section(`Samples (${fmt((p.samples || []).length)})`, samplesList(p.samples))),
  );
  // Keep the bookmarkable address on the survivor's id when a merged id was asked for.
  if (p.id !== id) history.replaceState(null, "", personaHref(p.id));
}
