// A persona's own page (/persona/<id>): description, attributes, status and filter scores with
// their reasons, typed relationships in and out, the expansion path back to the source text,
// aliases and merged ids, and the samples it produced. All of it LLM output, all of it text.

import { api } from "../api.js";
import { asText, defList, fmt, h, personaHref, personaLink, section, table } from "../dom.js";
import { shortLabel } from "../graphview.js";

function statusBadge(status) {
  return h("span", { class: `status status-${String(status || "unknown").replace(/[^a-z]/g, "")}` }, asText(status || "unknown"));
}

/** Filter scores (1-5 per criterion, when the LLM judge ran) with each criterion's reasons, and the cheap checks' reasons. */
function scoresTable(scores, reasons, failed) {
  const criteria = [...new Set([...Object.keys(scores || {}), ...(reasons || []).map((r) => r.criterion)])];
  if (!criteria.length) return [h("p", { class: "muted" }, "Not filtered yet: no scores or reasons.")];
  const failedSet = new Set(failed || []);
  return [table(["criterion", "score", "verdict", "reason"], criteria.map((name) => {
    const score = scores?.[name] ?? (reasons || []).find((r) => r.criterion === name && typeof r.score === "number")?.score;
    const mine = (reasons || []).filter((r) => r.criterion === name);
    const bad = failedSet.has(name) || mine.some((r) => r.failed);
    return [
      name,
      typeof score === "number" ? h("span", { class: "score" }, h("meter", { min: 1, max: 5, low: 2.5, high: 3.5, optimum: 5, value: score }), ` ${fmt(score)}`) : "",
      h("span", { class: bad ? "verdict failed" : "verdict passed" }, bad ? "failed" : "passed"),
      h("span", {}, mine.map((r, i) => [i ? h("br") : null, asText(r.reason)])),
    ];
  }), { className: "data scores" })];
}

function relationships(rows, direction, truncated) {
  if (!rows?.length) return h("p", { class: "muted" }, direction === "out" ? "No relationships out." : "No relationships in.");
  const note = truncated ? h("p", { class: "note warn" }, `Only the first ${fmt(rows.length)} are listed: the console has them all.`) : null;
  // Read as a sentence with this persona at the missing end: "this —PATIENT_OF→ other" / "other —PATIENT_OF→ this".
  return [note, table(direction === "out" ? ["this persona …", "persona"] : ["persona", "… this persona"],
    rows.map((r) => {
      const other = personaLink(r.id, shortLabel(r.description || r.id, 90));
      const type = h("code", { class: "rel-type" }, `—${asText(r.type)}→`);
      return direction === "out" ? [type, other] : [other, type];
    }), { className: `data rel rel-${direction}` })];
}

/**
 * From the source text down to this persona. The API lists the path from this persona back to
 * its seed; each step's `type` is the edge by which it was proposed from the step before it here.
 */
function expansionPath(p) {
  const steps = [];
  if (p.source) {
    const stance = p.source.stance ? ` (${asText(p.source.stance)})` : "";
    steps.push(h("li", { class: "path-source" },
      h("span", { class: "path-kind" }, `source text${stance}${p.source.uri ? `: ${asText(p.source.uri)}` : ""}`),
      p.source.text ? h("blockquote", { class: "source-text" }, asText(p.source.text)) : h("p", { class: "muted" }, "(the graph keeps only the text's hash)")));
  }
  for (const step of [...(p.path || [])].reverse()) {
    const here = step.id === p.id;
    steps.push(h("li", { class: here ? "path-here" : "" },
      step.type ? [h("code", { class: "rel-type", title: step.relation ? `relation: ${asText(step.relation)}` : null }, `—${asText(step.type)}→`), " "] : null,
      here ? h("strong", {}, shortLabel(step.description, 120), " (this persona)")
        : personaLink(step.id, shortLabel(step.description || step.id, 120)),
      Number.isInteger(step.hop) ? h("span", { class: "muted small" }, ` hop ${step.hop}`) : null));
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
      section("Status and filter scores", h("p", {}, statusBadge(p.status), p.origin ? h("span", { class: "muted" }, ` origin: ${asText(p.origin)}`) : null,
        p.run_id ? [h("span", { class: "muted" }, " · made by run "), h("a", { href: "/runs", "data-link": true }, h("code", {}, asText(p.run_id)))] : null),
        ...scoresTable(p.scores, p.reasons, p.filter_failed)),
      section(`Relationships out (${fmt((p.out || []).length)})`, relationships(p.out, "out", p.out_truncated)),
      section(`Relationships in (${fmt((p.in || []).length)})`, relationships(p.in, "in", p.in_truncated)),
      section("Expansion path", expansionPath(p)),
      section("Aliases and merged ids",
        (p.aliases || []).length ? h("ul", { class: "aliases" }, p.aliases.map((a) => h("li", {}, asText(a)))) : h("p", { class: "muted" }, "No aliases."),
        (p.merged_ids || []).length ? h("p", {}, "Merged ids: ", p.merged_ids.map((m, i) => [i ? ", " : "", h("code", {}, asText(m))])) : h("p", { class: "muted" }, "No merged ids.")),
      section(`Samples (${fmt((p.samples || []).length)})`, samplesList(p.samples))),
  );
  // Keep the bookmarkable address on the survivor's id when a merged id was asked for.
  if (p.id !== id) history.replaceState(null, "", personaHref(p.id));
}
