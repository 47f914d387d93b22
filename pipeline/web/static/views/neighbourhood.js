// A persona's k-hop neighbourhood (/neighbourhood/<id>?hops=2&limit=1000), drawn with Cytoscape.js:
// rings by distance from the centre, colour by distance, hop or a region attribute, edges labelled
// by type (the labels appear as you zoom in). Clicking a node selects it and expands it: its own
// 1-hop neighbourhood is fetched and added around it.
//
// window.__pgTimings.neighbourhood records request, response, layout stop and first frame drawn
// (ms since navigation), for the browser test and bench/bench_web.py.

import { api } from "../api.js";
import { asText, defList, fmt, h, personaLink, replace, table } from "../dom.js";
import { FORCE_LAYOUT_MAX, colourScale, createGraph, fitPositions, hopColour, layoutOptions, nextFrame, radialPositions, runLayout, shortLabel, unknownColour } from "../graphview.js";

const COLOUR_FIXED = [["distance", "distance from the centre"], ["status", "status"]];
const MAX_LEGEND = 12;

/** BFS from `center` over the edges, either direction: each node's distance and BFS parent, and the visiting order. */
function distances(center, nodeIds, edges) {
  const adjacent = new Map(nodeIds.map((id) => [id, []]));
  for (const e of edges) {
    adjacent.get(e.source)?.push(e.target);
    adjacent.get(e.target)?.push(e.source);
  }
  const dist = new Map([[center, 0]]);
  const parent = new Map();
  const order = [center];
  for (let i = 0; i < order.length; i++) {
    for (const next of adjacent.get(order[i]) || []) {
      if (!dist.has(next)) { dist.set(next, dist.get(order[i]) + 1); parent.set(next, order[i]); order.push(next); }
    }
  }
  for (const id of nodeIds) if (!dist.has(id)) order.push(id);
  return { dist, parent, order };
}

/** A preset layout placing the drawn nodes radially around `center` (graphview.radialPositions). */
function radialLayout(cy, center) {
  const { dist, parent, order } = distances(center, cy.nodes().map((n) => n.id()),
    cy.edges().map((e) => ({ source: e.data("source"), target: e.data("target") })));
  const positions = radialPositions(center, order, parent, dist, ringGap(cy.nodes().length));
  return { name: "preset", positions: (n) => positions.get(n.id()), fit: true, padding: 24, animate: false };
}

/** Spacing of the radial drawing: room for labels in a small neighbourhood, tight rings in a large one. */
function ringGap(nodeCount) {
  return nodeCount <= 40 ? 40 : nodeCount <= FORCE_LAYOUT_MAX ? 26 : 18;
}

function edgeKey(e) {
  return `${e.source}|${e.type}|${e.target}`;
}

function nodeElement(n, distance, position) {
  return { group: "nodes", position, data: {
    id: n.id, label: shortLabel(n.description), description: n.description, hop: distance, colour: hopColour(distance),
    status: n.status, attributes: n.attributes || {},
  } };
}

function edgeElement(e) {
  return { group: "edges", data: { id: edgeKey(e), source: e.source, target: e.target, type: e.type } };
}

/** The value a node is coloured by under `mode`. */
function colourValue(data, mode) {
  if (mode === "distance") return data.hop;
  if (mode === "status") return data.status;
  return data.attributes?.[mode];
}

export async function showNeighbourhood(ctx) {
  const { root, id, params } = ctx;
  const hops = Math.min(Math.max(parseInt(params.get("hops") || "2", 10) || 2, 1), 6);
  const limit = Math.min(Math.max(parseInt(params.get("limit") || "1000", 10) || 1000, 1), 5000);
  ctx.setTitle(`Neighbourhood of ${id}`);
  const timings = { request: performance.now() };
  window.__pgTimings.neighbourhood = timings;

  const stats = h("p", { class: "note", id: "nb-stats", "aria-live": "polite" }, "Loading…");
  const canvas = h("div", { class: "graph-canvas big", id: "nb-canvas", role: "img", "aria-label": "Neighbourhood drawing" });
  const detail = h("aside", { class: "graph-detail", id: "nb-detail", "aria-live": "polite" },
    h("p", { class: "muted" }, "Click a persona to select it and draw its own neighbours around it."));
  const legend = h("ul", { class: "legend", id: "nb-legend" });
  const colourBy = h("select", { id: "nb-colour" });
  const layoutBy = h("select", { id: "nb-layout" },
    [["radial", "radial by distance"], ["breadthfirst", "tree"], ["cose", "force (slow above 300)"]]
      .map(([v, t]) => h("option", { value: v }, t)));
  const hopsInput = h("select", { id: "nb-hops", name: "hops" }, [1, 2, 3].map((k) => h("option", { value: k, selected: k === hops }, `${k} hop${k > 1 ? "s" : ""}`)));
  const limitInput = h("input", { id: "nb-limit", name: "limit", type: "number", min: 1, max: 5000, value: String(limit) });
  const listBox = h("details", { class: "node-list" }, h("summary", {}, "The personas drawn, as a list"));

  root.append(
    h("h1", {}, "Neighbourhood of ", personaLink(id, id)),
    h("form", { class: "toolbar", on: { submit: (e) => {
      e.preventDefault();
      ctx.navigate(`/neighbourhood/${encodeURIComponent(id)}?hops=${hopsInput.value}&limit=${limitInput.value}`);
    } } },
      h("label", {}, "Depth ", hopsInput), h("label", {}, "At most ", limitInput, " personas"),
      h("button", { type: "submit" }, "Reload"),
      h("label", {}, "Colour by ", colourBy), h("label", {}, "Layout ", layoutBy)),
    stats, legend,
    h("div", { class: "graph-wrap" }, canvas, detail),
    listBox);

  const data = await api.neighbourhood(id, hops, limit);
  timings.response = performance.now();
  const center = data.center ?? id;
  const nodeIds = data.nodes.map((n) => n.id);
  const { dist, parent, order } = distances(center, nodeIds, data.edges);
  const positions = radialPositions(center, order, parent, dist, ringGap(nodeIds.length));
  const byId = new Map(data.nodes.map((n) => [n.id, n]));
  const elements = [
    ...order.filter((nid) => byId.has(nid)).map((nid) => nodeElement(byId.get(nid), dist.get(nid) ?? hops + 1, positions.get(nid))),
    ...data.edges.filter((e) => byId.has(e.source) && byId.has(e.target)).map(edgeElement),
  ];
  const cy = createGraph(canvas, elements, { onTap: (node) => select(node) });
  timings.created = performance.now();
  cy.one("render", () => { timings.rendered = performance.now(); });
  window.__pg = { cy };
  ctx.onLeave(() => { cy.destroy(); if (window.__pg?.cy === cy) delete window.__pg; });
  cy.getElementById(center).addClass("center");

  // Colour choices: the fixed ones, then each attribute key the drawn personas carry.
  const attributeKeys = [...new Set(data.nodes.flatMap((n) => Object.keys(n.attributes || {})))].sort();
  replace(colourBy, [...COLOUR_FIXED, ...attributeKeys.map((k) => [k, k.replace(/_/g, " ")])]
    .map(([v, t]) => h("option", { value: v }, t)));

  // Colour the nodes by the chosen value and redraw the legend; `legendOnly` when the nodes were
  // made with their colours (by distance) and only the legend is missing.
  function recolour({ legendOnly = false } = {}) {
    const mode = colourBy.value;
    const nodes = cy.nodes();
    let entries;
    if (mode === "distance") {
      const values = [...new Set(nodes.map((n) => colourValue(n.data(), mode)))].sort((a, b) => (a ?? 99) - (b ?? 99));
      entries = values.map((v) => [v ?? "unknown", Number.isInteger(v) ? hopColour(v) : unknownColour]);
      if (!legendOnly) cy.batch(() => nodes.forEach((n) => n.data("colour", hopColour(colourValue(n.data(), mode)))));
    } else {
      const counts = new Map();
      nodes.forEach((n) => { const v = colourValue(n.data(), mode); counts.set(v, (counts.get(v) || 0) + 1); });
      const ranked = [...counts].filter(([v]) => v !== undefined && v !== null && v !== "").sort((a, b) => b[1] - a[1]);
      const scale = colourScale(ranked.slice(0, MAX_LEGEND).map(([v]) => v));
      entries = [...scale].map(([v, c]) => [v, c]);
      if (ranked.length > MAX_LEGEND || counts.size > ranked.length) entries.push(["other / unknown", unknownColour]);
      cy.batch(() => nodes.forEach((n) => n.data("colour", scale.get(colourValue(n.data(), mode)) || unknownColour)));
    }
    replace(legend, entries.map(([value, colour]) => {
      const swatch = h("span", { class: "swatch" });
      swatch.style.background = colour;
      return h("li", {}, swatch, asText(value));
    }));
  }

  function showStats() {
    const n = cy.nodes().length;
    const m = cy.edges().length;
    stats.dataset.nodes = String(n);
    stats.dataset.edges = String(m);
    stats.textContent = `${fmt(n)} personas · ${fmt(m)} relationships`
      + (data.truncated ? ` · cut at ${fmt(limit)} personas: raise the limit to see more` : "");
  }

  async function select(node) {
    cy.nodes().unselect();
    node.select();
    const d = node.data();
    replace(detail,
      h("p", { class: "description" }, asText(d.description)),
      defList([["distance", d.hop], ["status", d.status ?? ""], ...Object.entries(d.attributes)]),
      h("p", {}, personaLink(d.id, "Open the persona page")));
    if (!node.hasClass("expanded")) await expand(node);
  }

  async function expand(node) {
    node.addClass("expanded");
    let more;
    try {
      more = await api.neighbourhood(node.id(), 1, limit);
    } catch (err) {
      detail.append(h("p", { class: "error", role: "alert" }, err.message));
      return;
    }
    const fresh = more.nodes.filter((n) => cy.getElementById(n.id).empty());
    // The new personas on an arc beyond the clicked one, facing away from the centre.
    const at = node.position();
    const origin = cy.getElementById(center).position();
    const facing = node.id() === center ? 0 : Math.atan2(at.y - origin.y, at.x - origin.x);
    const spread = Math.min(2 * Math.PI, Math.max(Math.PI / 2, fresh.length * 0.3));
    const radius = Math.max(60, (fresh.length * 20) / spread);
    cy.add(fresh.map((n, i) => {
      const angle = facing - spread / 2 + (spread * (i + 0.5)) / fresh.length;
      return nodeElement(n, node.data("hop") + 1, { x: at.x + radius * Math.cos(angle), y: at.y + radius * Math.sin(angle) });
    }));
    const has = (nid) => !cy.getElementById(nid).empty();
    const added = cy.add(more.edges.filter((e) => !has(edgeKey(e)) && has(e.source) && has(e.target)).map(edgeElement));
    window.__pgTimings.expanded = { nodes: fresh.length, edges: added.length };
    recolour();
    showStats();
  }

  colourBy.addEventListener("change", recolour);
  layoutBy.addEventListener("change", async () => {
    const started = performance.now();
    const { drawn } = await runLayout(cy, layoutBy.value === "radial" ? radialLayout(cy, center)
      : layoutOptions(layoutBy.value, cy.nodes().length));
    window.__pgTimings.relayout = { layout: layoutBy.value, ms: drawn - started };
  });
  listBox.addEventListener("toggle", () => {
    if (!listBox.open || listBox.querySelector("table")) return;
    listBox.append(table(["persona", "distance", "status"], cy.nodes().map((n) =>
      [personaLink(n.id(), shortLabel(n.data("description"), 100)), n.data("hop"), n.data("status") ?? ""])));
  });

  recolour({ legendOnly: true });
  showStats();
  // The positions came with the elements: fit them to the view and wait for the first frame drawn.
  fitPositions(cy);
  const layout = performance.now();
  const drawn = await nextFrame();
  Object.assign(timings, { layout, drawn, nodes: cy.nodes().length, edges: cy.edges().length });
  canvas.dataset.ready = "true";
}
