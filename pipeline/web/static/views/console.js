// The Cypher console (/): a query box, the ready-made queries one click away, and the answer as a
// table and as a drawing. The address keeps the last query (/?cypher=... or /?name=...&p.id=...),
// so a result can be bookmarked or shared.

import { api } from "../api.js";
import { asText, clipped, defList, errorBox, fmt, h, personaLink, replace, section, table } from "../dom.js";
import { colourScale, createGraph, layoutOptions, runLayout, shortLabel } from "../graphview.js";

const PERSONA = "Persona";

/** A result cell as page content: persona nodes as links, other graph values as short text. */
function cell(value) {
  if (Array.isArray(value)) {
    const out = h("span", { class: "cell-list" });
    value.forEach((v, i) => { if (i) out.append(", "); out.append(cell(v)); });
    return out;
  }
  if (value && typeof value === "object") {
    if (value._kind === "node") {
      const p = value.properties || {};
      if ((value.labels || []).includes(PERSONA) && p.id) return personaLink(p.id, shortLabel(p.description || p.id, 60));
      return h("span", { class: "cell-node", title: JSON.stringify(p) }, `(:${(value.labels || []).join(":")} ${asText(p.id ?? value.id)})`);
    }
    if (value._kind === "edge") {
      return h("span", { class: "cell-edge", title: JSON.stringify(value.properties || {}) },
        `${asText(value.source)} -[:${asText(value.type)}]-> ${asText(value.target)}`);
    }
    if (value._kind === "path") {
      return h("span", { class: "cell-path" }, `path of ${(value.nodes || []).length} nodes, ${(value.edges || []).length} edges`);
    }
    return clipped(JSON.stringify(value), 200);
  }
  return clipped(value, 300);
}

function resultTable(result) {
  return table(result.columns, result.rows.map((row) => row.map(cell)), { className: "data results" });
}

/** Cytoscape elements from a query answer's graph part. */
function graphElements(graph) {
  const kinds = colourScale(graph.nodes.map((n) => (n.labels || [])[0]));
  const ids = new Set(graph.nodes.map((n) => String(n.id)));
  const nodes = graph.nodes.map((n) => {
    const p = n.properties || {};
    const kind = (n.labels || [])[0];
    return { group: "nodes", data: {
      id: String(n.id), label: shortLabel(p.description ?? p.text ?? p.id ?? kind), colour: kinds.get(kind) || "#888",
      hop: Number.isInteger(p.hop) ? p.hop : 0, kind, personaId: (n.labels || []).includes(PERSONA) ? p.id : null, properties: p,
    } };
  });
  const edges = graph.edges
    .filter((e) => ids.has(String(e.source)) && ids.has(String(e.target)))
    .map((e, i) => ({ group: "edges", data: { id: `e${i}`, source: String(e.source), target: String(e.target), type: e.type } }));
  return { nodes, edges, kinds };
}

function nodeDetail(node) {
  const d = node.data();
  const props = Object.entries(d.properties).filter(([k]) => k !== "description");
  return [
    h("p", { class: "node-kind" }, `:${d.kind ?? "node"}`),
    d.properties.description ? h("p", { class: "description" }, asText(d.properties.description)) : null,
    defList(props),
    d.personaId ? h("p", {}, personaLink(d.personaId, "Open the persona page")) : null,
  ];
}

function drawResultGraph(container, result, ctx) {
  const { nodes, edges, kinds } = graphElements(result.graph);
  if (!nodes.length) return;
  const canvas = h("div", { class: "graph-canvas", role: "img", "aria-label": `Drawing of ${nodes.length} nodes and ${edges.length} relationships` });
  const detail = h("aside", { class: "graph-detail", "aria-live": "polite" }, h("p", { class: "muted" }, "Click a node to see it."));
  const legend = h("ul", { class: "legend" }, [...kinds].map(([kind, colour]) => {
    const swatch = h("span", { class: "swatch" });
    swatch.style.background = colour;
    return h("li", {}, swatch, kind);
  }));
  container.append(section(`Graph: ${fmt(nodes.length)} nodes, ${fmt(edges.length)} relationships`,
    legend, h("div", { class: "graph-wrap" }, canvas, detail)));
  const cy = createGraph(canvas, [...nodes, ...edges], {
    onTap: (node) => replace(detail, nodeDetail(node)),
  });
  ctx.onLeave(() => cy.destroy());
  canvas.dataset.nodes = String(cy.nodes().length);
  canvas.dataset.edges = String(cy.edges().length);
  runLayout(cy, layoutOptions(nodes.length > 300 ? "concentric" : "cose", nodes.length));
}

function paramsFromAddress(params) {
  const out = {};
  for (const [k, v] of params) if (k.startsWith("p.")) out[k.slice(2)] = v;
  return out;
}

export async function showConsole(ctx) {
  ctx.setTitle("Console");
  const info = await ctx.info();
  const output = h("div", { class: "results-area", "aria-live": "polite" });
  const cypher = h("textarea", { id: "cypher", name: "cypher", rows: 5, spellcheck: "false",
    placeholder: "MATCH (p:Persona) RETURN p LIMIT 25" });
  const paramsInput = h("input", { id: "cypher-params", name: "params", type: "text", spellcheck: "false",
    placeholder: '{"n": 5}', autocomplete: "off" });
  const runButton = h("button", { type: "submit", class: "primary" }, "Run");
  let controller = null;

  async function run(body, address) {
    controller?.abort();
    controller = new AbortController();
    history.replaceState(null, "", address);
    replace(output, h("p", { class: "muted" }, "Running…"));
    runButton.disabled = true;
    const started = performance.now();
    try {
      const result = await api.query(body, controller.signal);
      window.__pgTimings.query = performance.now() - started;
      const note = `${fmt(result.rows.length)} row${result.rows.length === 1 ? "" : "s"} in ${fmt(result.elapsed_ms, 0)} ms`
        + (result.truncated ? ` (cut at the row cap of ${fmt(result.row_cap)})` : "");
      replace(output, h("p", { class: result.truncated ? "note warn" : "note", id: "result-note" }, note));
      if (result.columns.length) output.append(section("Table", h("div", { class: "table-scroll" }, resultTable(result))));
      drawResultGraph(output, result, ctx);
    } catch (err) {
      if (err.name === "AbortError") return;
      replace(output, errorBox(err));
    } finally {
      runButton.disabled = false;
    }
  }

  function runCypher() {
    let params = {};
    const text = paramsInput.value.trim();
    if (text) {
      try { params = JSON.parse(text); } catch (err) {
        replace(output, errorBox(new Error(`Parameters are not JSON: ${err.message}`)));
        return;
      }
    }
    const address = new URLSearchParams({ cypher: cypher.value });
    if (text) address.set("params", text);
    run({ cypher: cypher.value, params }, `/?${address}`);
  }

  function runNamed(name, params) {
    const address = new URLSearchParams({ name });
    for (const [k, v] of Object.entries(params)) address.set(`p.${k}`, v);
    run({ name, params }, `/?${address}`);
  }

  const form = h("form", { class: "query-form", on: { submit: (e) => { e.preventDefault(); runCypher(); } } },
    h("label", { for: "cypher" }, "Cypher"),
    cypher,
    h("div", { class: "form-row" },
      h("label", { for: "cypher-params" }, "Parameters (JSON)"), paramsInput, runButton));
  cypher.addEventListener("keydown", (e) => {
    if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) { e.preventDefault(); form.requestSubmit(); }
  });

  const limits = h("p", { class: "limits", id: "limits" },
    info.write ? "Write enabled: this server was started with --write, so Cypher that changes the graph runs. "
      : "Read-only: Cypher that would change the graph is refused (start the server with --write to allow it). ",
    `Each query stops after ${fmt(info.timeout_s)} s and shows at most ${fmt(info.row_cap)} rows. Ctrl+Enter runs.`);

  const readyMade = h("ul", { class: "ready-made" }, h("li", { class: "muted" }, "Loading…"));
  ctx.root.append(h("div", { class: "console" },
    h("aside", { class: "queries", "aria-labelledby": "ready-made-title" },
      h("h2", { id: "ready-made-title" }, "Ready-made queries"), readyMade),
    h("div", { class: "console-main" }, h("h1", {}, "Cypher console"), limits, form, output)));

  const { params } = ctx;
  try {
    const queries = await api.queries();
    replace(readyMade, queries.map((q) => {
      const inputs = (q.params || []).map((p) => h("input", { name: p, "aria-label": `${q.name}: ${p}`, placeholder: p, required: true, autocomplete: "off" }));
      const item = h("li", { dataset: { query: q.name } });
      const submit = (e) => {
        e.preventDefault();
        // Its text goes into the box to read or edit; it runs by name, with the parameters given beside it.
        cypher.value = q.cypher || "";
        paramsInput.value = "";
        runNamed(q.name, Object.fromEntries(inputs.map((i) => [i.name, i.value.trim()])));
      };
      if (inputs.length) {
        item.append(h("form", { class: "named", on: { submit } },
          h("button", { type: "submit", class: "query-name" }, q.name), inputs));
      } else {
        item.append(h("button", { type: "button", class: "query-name", on: { click: submit } }, q.name));
      }
      item.append(h("p", { class: "query-description" }, q.description || ""));
      return item;
    }));
    const named = queries.find((q) => q.name === params.get("name"));
    if (named && !cypher.value) cypher.value = named.cypher || "";
  } catch (err) {
    replace(readyMade, h("li", {}, errorBox(err)));
  }

  // A bookmarked result: run what the address says.
  if (params.has("cypher")) {
    cypher.value = params.get("cypher");
    paramsInput.value = params.get("params") || "";
    runCypher();
  } else if (params.has("name")) {
    runNamed(params.get("name"), paramsFromAddress(params));
  } else {
    cypher.value = "MATCH (p:Persona)-[r]->(q:Persona) RETURN p, r, q LIMIT 50";
  }
}
