// Drawing a graph with Cytoscape.js (vendored: static/vendor/cytoscape, see vendor/README.md).
//
// The canvas renderer keeps 1,000 nodes interactive. A neighbourhood is drawn radially around its
// centre with positions computed here in linear time (`radialPositions`), because a force layout
// (`cose`) on 1,000 nodes takes seconds and even Cytoscape's `concentric` measures every label
// (docs/benchmarks.md, "Web explorer"). Labels are drawn as canvas text, never as HTML.

import cytoscape from "./vendor/cytoscape/cytoscape.esm.min.mjs";

// Categorical colours (Tableau 10 and two more), distinguishable on white.
const CATEGORICAL = ["#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#edc948", "#b07aa1",
  "#ff9da7", "#9c755f", "#bab0ac", "#1f77b4", "#8c564b"];
// Hop depth 0..6: dark to light along one hue ramp (viridis stops).
const BY_HOP = ["#440154", "#443983", "#31688e", "#21918c", "#35b779", "#90d743", "#fde725"];
const UNKNOWN = "#c7c9ce";
// A large graph: no force layout by default, cheaper edges and drawing while panning.
export const FORCE_LAYOUT_MAX = 300;
// Above this many nodes, labels show only once zoomed in (else they pile up into a grey blur).
const LABELS_MAX = 80;

/** A colour for each distinct value in order of first appearance: Map(value -> colour). */
export function colourScale(values) {
  const scale = new Map();
  for (const v of values) {
    if (v === null || v === undefined || v === "" || scale.has(v)) continue;
    scale.set(v, CATEGORICAL[scale.size % CATEGORICAL.length]);
  }
  return scale;
}

/** The colour of hop depth `hop` (grey when unknown). */
export function hopColour(hop) {
  return Number.isInteger(hop) ? BY_HOP[Math.min(Math.max(hop, 0), BY_HOP.length - 1)] : UNKNOWN;
}

export const unknownColour = UNKNOWN;

/** A one-line label for a node: the start of its description. */
export function shortLabel(text, max = 40) {
  const s = String(text ?? "").replace(/\s+/g, " ").trim();
  return s.length > max ? `${s.slice(0, max - 1)}…` : s;
}

// Text of every node and edge (labels and relationship types), and where it shows.
const NODE_LABEL = { label: "data(label)", "font-size": 9, color: "#1f2430", "text-valign": "bottom", "text-margin-y": 2 };
const EDGE_LABEL = { label: "data(type)", "font-size": 7, color: "#5b6270", "text-rotation": "autorotate",
  "text-background-color": "#ffffff", "text-background-opacity": 0.7 };
const EDGE_ARROW = { "target-arrow-shape": "triangle", "target-arrow-color": "#aab2bf", "arrow-scale": 0.6 };
// Zoom from which a large graph draws every label (below it, only the centre's, the selected and hovered).
const LABEL_ZOOM = 1.2;

/**
 * The stylesheet. `allLabels` false (a large graph seen from afar) leaves text and arrowheads off
 * all but the centre, the selected node and its edges, and hovered nodes: measuring and placing
 * 1,000 labels and arrows costs more than drawing the graph, and at that zoom none could be read.
 */
function style(large, allLabels) {
  const selectedText = { "font-size": 11, "text-background-color": "#ffffff", "text-background-opacity": 0.85,
    "text-background-padding": 2, "z-index": 10 };
  return [
    { selector: "node", style: {
      "background-color": "data(colour)", width: 14, height: 14, "border-width": 1, "border-color": "#ffffff",
      ...(allLabels ? { ...NODE_LABEL, "min-zoomed-font-size": 9 } : {}),
      // A small graph wraps its labels (measuring them is cheap at that size).
      ...(allLabels ? { "text-wrap": "wrap", "text-max-width": "120px" } : {}),
    } },
    { selector: "node.center", style: { ...NODE_LABEL, ...selectedText, width: 26, height: 26, "border-width": 3,
      "border-color": "#1f2430", "font-weight": "bold" } },
    { selector: "node.expanded", style: { "border-width": 2, "border-color": "#1f2430" } },
    { selector: "node.hover", style: { ...NODE_LABEL, ...selectedText } },
    { selector: "node:selected", style: { ...NODE_LABEL, ...selectedText, "border-width": 3, "border-color": "#d6336c" } },
    { selector: "edge", style: {
      width: 1, "line-color": "#aab2bf",
      // Haystack lines are Cytoscape's cheapest edges (no arrowheads): for a large graph seen from afar.
      "curve-style": !large ? "bezier" : allLabels ? "straight" : "haystack",
      ...(allLabels ? { ...EDGE_ARROW, ...EDGE_LABEL, "min-zoomed-font-size": 8 } : {}),
    } },
    { selector: "edge:selected, edge.near", style: { ...EDGE_ARROW, ...EDGE_LABEL, "curve-style": large ? "straight" : "bezier", "line-color": "#d6336c", "target-arrow-color": "#d6336c", width: 2 } },
  ];
}

/**
 * Positions for a radial drawing around `center`: each node on a ring by its distance, inside the
 * angle its BFS parent got, the angle shared among children by subtree size, so a persona's
 * neighbours fan out beside it. A crowded ring is split into up to six staggered sub-rings
 * instead of growing huge. Linear time: no force simulation, no label measuring.
 *
 * `order` lists node ids in BFS order from `center`, `parent` maps each reached id to its BFS
 * parent, `distance` to its depth; ids not reached go on an outer ring. Returns Map(id -> {x, y}).
 */
export function radialPositions(center, order, parent, distance, gap = 18) {
  const children = new Map(order.map((id) => [id, []]));
  for (const id of order) if (id !== center && parent.has(id)) children.get(parent.get(id)).push(id);
  // A subtree's share of its parent's angle: its size, plus a little so that leaves beside a big
  // subtree are not squeezed into a sliver.
  const size = new Map();
  for (let i = order.length - 1; i >= 0; i--) {
    const id = order[i];
    size.set(id, 1 + children.get(id).reduce((s, c) => s + size.get(c), 0));
  }
  const share = (id) => size.get(id) + 2;
  // Angles: each node's wedge split among its children by subtree size.
  const angle = new Map([[center, 0]]);
  const wedge = new Map([[center, [0, 2 * Math.PI]]]);
  for (const id of order) {
    const [from, to] = wedge.get(id) ?? [0, 0];
    const kids = children.get(id);
    const total = kids.reduce((s, c) => s + share(c), 0);
    let at = from;
    for (const c of kids) {
      const span = ((to - from) * share(c)) / total;
      wedge.set(c, [at, at + span]);
      angle.set(c, at + span / 2);
      at += span;
    }
  }
  // Rings: ids per depth in angle order; unreached ids on one more ring, spread evenly.
  const rings = new Map();
  let deepest = 0;
  for (const id of order) {
    const d = id === center ? 0 : parent.has(id) ? distance.get(id) : Infinity;
    if (Number.isFinite(d)) deepest = Math.max(deepest, d);
    if (!rings.has(d)) rings.set(d, []);
    rings.get(d).push(id);
  }
  const stray = rings.get(Infinity) || [];
  rings.delete(Infinity);
  if (stray.length) {
    stray.forEach((id, i) => angle.set(id, (2 * Math.PI * i) / stray.length));
    rings.set(deepest + 1, stray);
  }
  const positions = new Map([[center, { x: 0, y: 0 }]]);
  let radius = 0;
  let previousWidth = 0;
  for (const depth of [...rings.keys()].filter((d) => d > 0).sort((a, b) => a - b)) {
    const ids = rings.get(depth).sort((a, b) => angle.get(a) - angle.get(b));
    radius += previousWidth + (depth === 1 ? 4 * gap : 5 * gap);
    let subRings = Math.ceil((ids.length * gap) / (2 * Math.PI * radius));
    if (subRings > 6) {
      subRings = 6;
      radius = (ids.length * gap) / (2 * Math.PI * subRings);
    }
    ids.forEach((id, i) => {
      const r = radius + (i % subRings) * gap;
      positions.set(id, { x: r * Math.cos(angle.get(id)), y: r * Math.sin(angle.get(id)) });
    });
    previousWidth = (subRings - 1) * gap;
  }
  return positions;
}

/** Layout options by name: "concentric" (rings by hop), "breadthfirst" (tree from the centre) or "cose" (force). */
export function layoutOptions(name, nodeCount) {
  const common = { animate: false, fit: true, padding: 24 };
  if (name === "cose") {
    return { ...common, name: "cose", randomize: true, numIter: nodeCount > FORCE_LAYOUT_MAX ? 300 : 1000,
      nodeRepulsion: () => (nodeCount > 60 ? 6000 : 40000), idealEdgeLength: () => (nodeCount > 60 ? 40 : 90) };
  }
  if (name === "breadthfirst") {
    return { ...common, name: "breadthfirst", directed: false, roots: "node.center", spacingFactor: 0.9,
      avoidOverlap: nodeCount <= FORCE_LAYOUT_MAX };
  }
  // Rings by hop: the lowest hop innermost. levelWidth 1 gives one ring per hop value.
  return { ...common, name: "concentric", concentric: (n) => 100 - (n.data("hop") ?? 99), levelWidth: () => 1,
    minNodeSpacing: nodeCount > FORCE_LAYOUT_MAX ? 2 : 8, avoidOverlap: nodeCount <= FORCE_LAYOUT_MAX };
}

/**
 * A Cytoscape instance drawing `elements` (with their positions) into `container`; `onTap(node)`
 * on a node click. A large graph draws cheaper (haystack edges, a texture while panning); one with
 * more than LABELS_MAX nodes shows every label only once zoomed in past LABEL_ZOOM.
 */
export function createGraph(container, elements, { onTap } = {}) {
  const nodeCount = elements.filter((e) => e.group === "nodes").length;
  const large = nodeCount > FORCE_LAYOUT_MAX;
  const crowded = nodeCount > LABELS_MAX;
  let allLabels = !crowded;
  const cy = cytoscape({
    container,
    elements,
    style: style(large, allLabels),
    layout: { name: "preset", fit: false },
    minZoom: 0.05,
    maxZoom: 4,
    boxSelectionEnabled: false,
    textureOnViewport: large,
    hideEdgesOnViewport: large,
    motionBlur: false,
  });
  if (onTap) cy.on("tap", "node", (event) => onTap(event.target));
  cy.on("select", "node", (event) => event.target.connectedEdges().addClass("near"));
  cy.on("unselect", "node", (event) => event.target.connectedEdges().removeClass("near"));
  cy.on("mouseover", "node", (event) => event.target.addClass("hover"));
  cy.on("mouseout", "node", (event) => event.target.removeClass("hover"));
  if (crowded) {
    cy.on("zoom", () => {
      const wanted = cy.zoom() >= LABEL_ZOOM;
      if (wanted !== allLabels) cy.style(style(large, (allLabels = wanted)));
    });
  }
  return cy;
}

/** Zoom and pan so that every node's centre (not its label: no text measuring) fits the view with `padding`. */
export function fitPositions(cy, padding = 30, maxZoom = 1.25) {
  let x0 = Infinity, y0 = Infinity, x1 = -Infinity, y1 = -Infinity;
  cy.nodes().forEach((n) => {
    const { x, y } = n.position();
    x0 = Math.min(x0, x); y0 = Math.min(y0, y); x1 = Math.max(x1, x); y1 = Math.max(y1, y);
  });
  if (!Number.isFinite(x0)) return;
  const w = cy.width(), h = cy.height();
  const zoom = Math.min(maxZoom, (w - 2 * padding) / Math.max(x1 - x0, 1), (h - 2 * padding) / Math.max(y1 - y0, 1));
  cy.viewport({ zoom, pan: { x: w / 2 - zoom * (x0 + x1) / 2, y: h / 2 - zoom * (y0 + y1) / 2 } });
}

/** Resolve with performance.now() once a frame has been drawn (two animation frames: Cytoscape redraws on the first). */
export function nextFrame() {
  return new Promise((resolve) => requestAnimationFrame(() => requestAnimationFrame(() => resolve(performance.now()))));
}

/**
 * Run a layout and resolve once it has stopped and a frame showing it has been drawn
 * (two animation frames: Cytoscape redraws on the first, the second comes after that paint).
 */
export function runLayout(cy, options, eles = cy.elements()) {
  return new Promise((resolve) => {
    const layout = eles.layout(options);
    layout.one("layoutstop", () => {
      const stopped = performance.now();
      nextFrame().then((drawn) => resolve({ stopped, drawn }));
    });
    layout.run();
  });
}
