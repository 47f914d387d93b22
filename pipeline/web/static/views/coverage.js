// Coverage (/coverage): the coverage report's charts. Personas per value of each region attribute
// (share bars, the targets with their gaps), and the graph's shape: hop depths, component sizes,
// degrees, relationship types, frontier and isolated personas. Bars are plain elements.

import { api } from "../api.js";
import { asText, barChart, fmt, h, section, table } from "../dom.js";

const pct = (v) => `${(100 * (Number(v) || 0)).toFixed(1)}%`;
const MAX_BARS = 24;

/** [label, count] pairs from {key: count}; numeric keys in numeric order, others largest first. */
function pairs(counts) {
  const entries = Object.entries(counts || {}).map(([k, v]) => [k, Number(v) || 0]);
  return entries.every(([k]) => /^-?\d+$/.test(k))
    ? entries.sort((a, b) => Number(a[0]) - Number(b[0]))
    : entries.sort((a, b) => b[1] - a[1]);
}

/** Numeric keys folded into power-of-two bins (1, 2-3, 4-7, ...) when there are too many to draw one bar each. */
function binned(entries) {
  if (entries.length <= MAX_BARS || !entries.every(([k]) => /^\d+$/.test(k))) return entries;
  const bins = new Map();
  for (const [k, v] of entries) {
    const n = Number(k);
    const lo = n === 0 ? 0 : 2 ** Math.floor(Math.log2(n));
    const label = n === 0 ? "0" : lo === 1 ? "1" : `${lo}–${2 * lo - 1}`;
    bins.set(label, (bins.get(label) || 0) + v);
  }
  return [...bins];
}

function regionCharts(attributes) {
  return Object.entries(attributes || {}).map(([attribute, values]) => {
    // Each value as {value, personas, share}; a plain {value: count} map works too.
    const rows = Array.isArray(values) ? values
      : Object.entries(values).map(([value, personas]) => ({ value, personas }));
    const total = rows.reduce((s, r) => s + (Number(r.personas) || 0), 0);
    return h("figure", { class: "chart", dataset: { attribute } },
      h("figcaption", {}, attribute.replace(/_/g, " ")),
      barChart(rows.map((r) => [r.value, r.share ?? (total ? r.personas / total : 0)]), {
        label: `Share of personas by ${attribute}`, max: 1,
        format: (share) => `${pct(share)}`,
      }),
      h("p", { class: "muted small" }, rows.map((r) => `${asText(r.value)} ${fmt(r.personas)}`).join(" · ")));
  });
}

function graphShape(g) {
  const tiles = Object.entries(g).filter(([, v]) => typeof v === "number");
  const charts = Object.entries(g).filter(([, v]) => v && typeof v === "object" && !Array.isArray(v));
  return [
    h("dl", { class: "tiles" }, tiles.map(([k, v]) => h("div", { class: "tile" }, h("dt", {}, k.replace(/_/g, " ")), h("dd", {}, fmt(v))))),
    h("div", { class: "charts" }, charts.map(([k, v]) => h("figure", { class: "chart", dataset: { measure: k } },
      h("figcaption", {}, k.replace(/_/g, " ")),
      barChart(binned(pairs(v)), { label: k.replace(/_/g, " ") })))),
  ];
}

export async function showCoverage(ctx) {
  ctx.setTitle("Coverage");
  const { root } = ctx;
  root.append(h("h1", {}, "Coverage"), h("p", { class: "muted" }, "Counting…"));
  const report = await api.coverage();
  root.lastChild.remove();
  if (typeof report.total === "number") root.append(h("p", { class: "note" }, `${fmt(report.total)} live personas`));
  root.append(section("Regions: share of personas per value", h("div", { class: "charts" }, regionCharts(report.attributes))));
  if ((report.targets || []).length) {
    root.append(section("Targets", table(["attribute", "value", "target", "actual", "gap"], report.targets.map((t) =>
      [t.attribute, t.value, pct(t.target), pct(t.actual ?? t.share), pct(t.gap)]))));
  }
  if (report.graph) root.append(section("The graph's shape", ...graphShape(report.graph)));
}
