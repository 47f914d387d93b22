// Samples (/samples, /samples?file=...&offset=...): the synthesized files, and one file's rows a
// page at a time, each row's persona(s) linked to their pages.

import { api } from "../api.js";
import { append, asText, fmt, h, personaLink, section, table } from "../dom.js";

const PAGE = 50;
const PERSONA_KEYS = ["persona_id", "persona_ids"];

function samplesHref(file, offset = 0) {
  const q = new URLSearchParams({ file });
  if (offset) q.set("offset", String(offset));
  return `/samples?${q}`;
}

function personaCell(row) {
  const ids = Array.isArray(row.persona_ids) ? row.persona_ids : row.persona_id ? [row.persona_id] : [];
  if (!ids.length) return h("span", { class: "muted" }, "—");
  return h("span", { class: "cell-list" }, ids.map((id, i) => [i ? " " : "", personaLink(id)]));
}

function valueCell(value) {
  return h("div", { class: "cell-text" }, typeof value === "string" ? value : JSON.stringify(value, null, 1));
}

async function showFile(ctx, file) {
  const { root } = ctx;
  const offset = Math.max(parseInt(ctx.params.get("offset") || "0", 10) || 0, 0);
  ctx.setTitle(`Samples: ${file}`);
  root.append(h("p", { class: "crumbs" }, h("a", { href: "/samples", "data-link": true }, "Samples"), " / ", h("code", {}, file)));
  const page = await api.samples(file, offset, PAGE);
  const rows = page.rows || [];
  const keys = [...new Set(rows.flatMap((r) => Object.keys(r)))].filter((k) => !PERSONA_KEYS.includes(k));
  const end = offset + rows.length;
  const total = page.total ?? (rows.length === PAGE ? end + 1 : end);  // unknown total: assume more while pages are full
  const pager = h("nav", { class: "pager", "aria-label": "Pages" },
    offset > 0 ? h("a", { href: samplesHref(file, Math.max(offset - PAGE, 0)), "data-link": true, rel: "prev" }, "← previous") : null,
    h("span", {}, rows.length ? `rows ${fmt(offset + 1)}–${fmt(end)}${page.total == null ? "" : ` of ${fmt(page.total)}`}`
      : `no rows here${page.total == null ? "" : ` (${fmt(page.total)} in the file)`}`),
    end < total ? h("a", { href: samplesHref(file, end), "data-link": true, rel: "next" }, "next →") : null);
  append(root, [h("h1", {}, "Samples"), pager,
    h("div", { class: "table-scroll" }, table(["#", "persona", ...keys],
      rows.map((r, i) => [String(offset + i + 1), personaCell(r), ...keys.map((k) => (k in r ? valueCell(r[k]) : ""))]),
      { className: "data samples-table" })),
    (page.errors || []).length ? h("ul", { class: "error" }, page.errors.map((e) => h("li", {}, asText(e)))) : null,
    pager.cloneNode(true)]);
}

export async function showSamples(ctx) {
  const file = ctx.params.get("file");
  if (file) return showFile(ctx, file);
  ctx.setTitle("Samples");
  const { root } = ctx;
  root.append(h("h1", {}, "Samples"));
  const files = await api.sampleFiles();
  if (!files.length) {
    const info = await ctx.info();
    root.append(h("p", { class: "muted" }, "No JSONL or Parquet files under the data folder",
      info.data_dir ? [" (", h("code", {}, asText(info.data_dir)), ")"] : "",
      ". `personagraph synthesize -o FILE` writes one: put it there to browse it here."));
    return;
  }
  root.append(section("Synthesized files", table(["file", "format", "rows", "size"], files.map((f) => [
    h("a", { href: samplesHref(f.path), "data-link": true }, f.path), asText(f.format), f.rows == null ? "many" : fmt(f.rows),
    typeof f.size_bytes === "number" ? `${fmt(f.size_bytes / 1024, 1)} KiB` : "",
  ]))));
}
