// Building the page from data without ever parsing it as HTML.
//
// Persona text is LLM output: anything in it (`<script>`, `onerror=`) must stay text. Every element
// here is made with createElement and every string goes in as a text node or through setAttribute
// on a fixed, non-handler attribute name, so no data is ever interpreted as markup.

/**
 * An element with attributes and children: `h("a", {href: "/x", class: "c"}, "text", otherNode)`.
 * `on: {click: fn}` adds listeners; `dataset: {...}` sets data-* attributes; null/false attributes
 * and children are skipped; strings and numbers become text nodes.
 */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "on") {
      for (const [event, fn] of Object.entries(value)) el.addEventListener(event, fn);
    } else if (key === "dataset") {
      Object.assign(el.dataset, value);
    } else if (key.startsWith("on")) {
      throw new Error(`inline handler ${key}: use on: {...}`);
    } else if (key === "value" || key === "checked" || key === "selected") {
      el[key] = value;
    } else {
      el.setAttribute(key, value === true ? "" : String(value));
    }
  }
  append(el, children);
  return el;
}

/** Append children (nodes, strings, numbers, nested arrays; null/false skipped) as nodes or text. */
export function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

/** Empty an element and fill it with new children. */
export function replace(el, ...children) {
  el.replaceChildren();
  return append(el, children);
}

/** The app's own address of a persona page. */
export function personaHref(id) {
  return `/persona/${encodeURIComponent(id)}`;
}

/** A link to a persona page that the router handles without a reload. */
export function personaLink(id, text) {
  return h("a", { href: personaHref(id), "data-link": true, class: "persona-link", title: id }, text ?? id);
}

/** A value shown as text: scalars as themselves, anything else as compact JSON. */
export function asText(value) {
  if (value === null || value === undefined) return "";
  if (typeof value === "string") return value;
  if (typeof value === "number" || typeof value === "boolean") return String(value);
  return JSON.stringify(value);
}

/** A number with thousands separators (and at most `digits` decimals). */
export function fmt(n, digits = 2) {
  if (typeof n !== "number" || !Number.isFinite(n)) return asText(n);
  return n.toLocaleString("en-US", { maximumFractionDigits: digits });
}

/** A short text cut at `max` characters, the full text in the title. */
export function clipped(text, max = 140) {
  const s = asText(text);
  if (s.length <= max) return document.createTextNode(s);
  return h("span", { title: s }, s.slice(0, max - 1) + "…");
}

/** A definition list of key → value (values shown as text). */
export function defList(entries, className = "kv") {
  return h("dl", { class: className },
    entries.map(([k, v]) => [h("dt", {}, k), h("dd", {}, v instanceof Node ? v : asText(v))]));
}

/** A table from column names and rows of cells (cells are nodes or values shown as text). */
export function table(columns, rows, { caption, className = "data" } = {}) {
  return h("table", { class: className },
    caption ? h("caption", {}, caption) : null,
    h("thead", {}, h("tr", {}, columns.map((c) => h("th", { scope: "col" }, c)))),
    h("tbody", {}, rows.map((row) => h("tr", {},
      row.map((cell) => h("td", {}, cell instanceof Node ? cell : asText(cell)))))));
}

/** A section with a heading. */
export function section(title, ...children) {
  return h("section", { class: "panel" }, h("h2", {}, title), ...children);
}

/** The message of a failed request, shown on the page. */
export function errorBox(err) {
  return h("p", { class: "error", role: "alert" }, err?.message ?? String(err));
}

/** Horizontal bars for label → number, drawn with plain elements (no chart library). */
export function barChart(entries, { label = "", format = (v) => fmt(v), max } = {}) {
  const top = max ?? Math.max(0, ...entries.map(([, v]) => Number(v) || 0));
  return h("div", { class: "bars", role: "table", "aria-label": label },
    entries.map(([name, value]) => {
      const share = top > 0 ? (Number(value) || 0) / top : 0;
      const bar = h("span", { class: "bar-fill" });
      bar.style.width = `${(share * 100).toFixed(1)}%`;
      return h("div", { class: "bar-row", role: "row" },
        h("span", { class: "bar-label", role: "rowheader", title: asText(name) }, asText(name)),
        h("span", { class: "bar-track", role: "cell" }, bar),
        h("span", { class: "bar-value", role: "cell" }, format(value)));
    }));
}
