// The explorer's shell: the header (graph name, read-only/write badge, counts), the persona search
// box, and a router on location.pathname. The server answers every page address with this same
// index.html, so /persona/<id> is a real, bookmarkable address; links inside the app change it
// with history.pushState instead of reloading.

import { api } from "./api.js";
import { errorBox, fmt, replace, h } from "./dom.js";
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

document.getElementById("open-persona").addEventListener("submit", (event) => {
  event.preventDefault();
  const input = event.currentTarget.elements.id;
  const id = input.value.trim();
  if (id) navigate(`/persona/${encodeURIComponent(id)}`);
});

info().then(showHeader, (err) => {
  document.getElementById("counts").replaceChildren(errorBox(err));
});
render();
