// The explorer's shell: the header (graph name, read-only/write badge, counts), the persona search
// box, and a router on location.pathname. The server answers every page address with this same
// index.html, so /persona/<id> is a real, bookmarkable address; links inside the app change it
// with history.pushState instead of reloading.

import { api } from "./api.js";
import { errorBox, fmt, h, personaHref, personaLink, replace } from "./dom.js";
import { showConsole } from "./views/console.js";
import { showCoverage } from "./views/coverage.js";
import { showNeighbourhood } from "./views/neighbourhood.js";
import { showPersona } from "./views/persona.js";
import { showRuns } from "./views/runs.js";
import { showSamples } from "./views/samples.js";

// Timings the browser test and bench/bench_web.py read (performance.now() values, ms since navigation).
window.__pgTimings = window.__pgTimings || {};

const ROUTES = [
  { pattern: /^\/$/, nav: "console", show: showConsole },
  { pattern: /^\/persona\/([^/]+)$/, nav: null, show: showPersona },
  { pattern: /^\/neighbourhood\/([^/]+)$/, nav: null, show: showNeighbourhood },
  { pattern: /^\/coverage$/, nav: "coverage", show: showCoverage },
  { pattern: /^\/runs$/, nav: "runs", show: showRuns },
  { pattern: /^\/samples$/, nav: "samples", show: showSamples },
];

const view = document.getElementById("view");
let leaving = [];
let infoPromise = null;

/** Go to an address of the app without reloading the page. */
export function navigate(href, { replaceState = false } = {}) {
  if (replaceState) history.replaceState(null, "", href);
  else history.pushState(null, "", href);
  render({ focus: true });
}

function info() {
  infoPromise ??= api.info();
  return infoPromise;
}

function showHeader(i) {
  document.getElementById("graph-name").textContent = `${i.graph} · ${i.backend}`;
  const badge = document.getElementById("mode-badge");
  badge.textContent = i.write ? "write enabled" : "read-only";
  badge.className = `badge ${i.write ? "badge-write" : "badge-read"}`;
  badge.title = i.write ? "Started with --write: the console runs writing Cypher too"
    : "Started without --write: writing Cypher is refused";
  badge.hidden = false;
  const c = i.counts || {};
  document.getElementById("counts").textContent = ["personas", "edges", "sources", "samples", "runs"]
    .filter((k) => k in c).map((k) => `${fmt(c[k])} ${k}`).join(" · ");
}

async function render({ focus = false } = {}) {
  for (const fn of leaving) fn();
  leaving = [];
  const path = location.pathname.replace(/\/+$/, "") || "/";
  const route = ROUTES.find((r) => r.pattern.test(path));
  for (const a of document.querySelectorAll("[data-nav]")) {
    if (route && a.dataset.nav === route.nav) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  }
  // A fresh root per render: a slow answer for a page already left lands in a detached element.
  const root = h("div", { class: "page" });
  view.replaceChildren(root);
  if (focus) view.focus({ preventScroll: true });
  if (!route) {
    document.title = "Not found · personagraph";
    replace(root, h("h1", {}, "Not found"), h("p", {}, `Nothing at ${path}. `, h("a", { href: "/", "data-link": true }, "Back to the console")));
    return;
  }
  const [, arg] = path.match(route.pattern);
  const ctx = {
    root,
    id: arg === undefined ? undefined : decodeURIComponent(arg),
    params: new URLSearchParams(location.search),
    // The header's numbers count the whole graph: a view that needs them waits, the others do not.
    info: () => info().catch(() => ({})),
    navigate,
    onLeave: (fn) => leaving.push(fn),
    setTitle: (title) => { document.title = `${title} · personagraph`; },
  };
  try {
    await route.show(ctx);
  } catch (err) {
    root.append(errorBox(err));
  }
}

// Same-origin links marked data-link (and any link inside the view) go through the router.
document.addEventListener("click", (event) => {
  const a = event.target.closest("a[href]");
  if (!a || event.defaultPrevented || event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) return;
  if (!a.hasAttribute("data-link") || a.target) return;
  const url = new URL(a.href, location.href);
  if (url.origin !== location.origin) return;
  event.preventDefault();
  navigate(url.pathname + url.search);
});

window.addEventListener("popstate", () => render());

// The search box: an exact id opens that persona; other text lists the personas whose description
// contains it, under the header, each a link.
const results = document.getElementById("search-results");

function closeResults() {
  results.hidden = true;
  results.replaceChildren();
}

document.getElementById("open-persona").addEventListener("submit", async (event) => {
  event.preventDefault();
  const text = event.currentTarget.elements.id.value.trim();
  if (!text) return;
  replace(results, h("p", { class: "muted" }, "Searching…"));
  results.hidden = false;
  let hits;
  try {
    hits = await api.searchPersonas(text);
  } catch (err) {
    replace(results, errorBox(err));
    return;
  }
  if (hits.length === 1 || hits.some((hit) => hit.id === text)) {
    closeResults();
    navigate(personaHref((hits.find((hit) => hit.id === text) || hits[0]).id));
    return;
  }
  replace(results,
    h("p", { class: "search-note" }, hits.length ? `${hits.length} personas whose id is or description contains “${text}”:`
      : `No persona has the id “${text}” or a description containing it.`,
    " ", h("button", { type: "button", class: "link-button", on: { click: closeResults } }, "Close")),
    hits.length ? h("ul", {}, hits.map((hit) => h("li", {}, personaLink(hit.id, hit.description),
      h("span", { class: "muted small" }, ` ${hit.status ?? ""}${Number.isInteger(hit.hop) ? ` · hop ${hit.hop}` : ""}`)))) : null);
});
results.addEventListener("click", (event) => { if (event.target.closest("a")) closeResults(); });
document.addEventListener("keydown", (event) => { if (event.key === "Escape" && !results.hidden) closeResults(); });

info().then(showHeader, (err) => {
  document.getElementById("counts").replaceChildren(errorBox(err));
});
render();
