// Runs (/runs): every Run node, newest first, with its counts, tokens and inputs.

import { api } from "../api.js";
import { asText, fmt, h, section, table } from "../dom.js";

function numbers(map) {
  const entries = Object.entries(map || {});
  if (!entries.length) return h("span", { class: "muted" }, "—");
  return h("ul", { class: "inline-kv" }, entries.map(([k, v]) =>
    h("li", {}, h("span", { class: "k" }, k), " ", typeof v === "number" ? fmt(v) : asText(v))));
}

export async function showRuns(ctx) {
  ctx.setTitle("Runs");
  const { root } = ctx;
  root.append(h("h1", {}, "Runs"));
  const runs = await api.runs();
  if (!runs.length) {
    root.append(h("p", { class: "muted" }, "No runs recorded yet: every stage (extract, filter, dedup, expand, synthesize, ...) records one."));
    return;
  }
  const tokens = runs.reduce((sum, r) => sum + Object.values(r.tokens || {}).reduce((s, v) => s + (Number(v) || 0), 0), 0);
  root.append(h("p", { class: "note" }, `${fmt(runs.length)} runs · ${fmt(tokens)} tokens in all`));
  root.append(section("Every run", h("div", { class: "table-scroll" }, table(
    ["run", "stage", "started", "seconds", "counts", "tokens", "inputs"],
    runs.map((r) => [h("code", {}, asText(r.id)), asText(r.stage), asText(r.started),
      typeof r.elapsed_s === "number" ? fmt(r.elapsed_s, 1) : asText(r.elapsed_s),
      numbers(r.counts), numbers(r.tokens), numbers(r.inputs)]),
    { className: "data runs" }))));
}
