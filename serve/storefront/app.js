// aisle storefront: search, product and cart pages rendered from the public JSON API.
// No build step, no framework: the state lives in the URL (shareable, the back button works),
// text is always set as text (never as HTML), and every control is a real form control.
"use strict";

const API = "/api/v1";
const main = document.getElementById("main");
const SORTS = [["relevance", "Relevance"], ["price_asc", "Price: low to high"],
               ["price_desc", "Price: high to low"], ["rating", "Customer rating"],
               ["newest", "Newest"]];
const PAGE_SIZE = 24;
// the search API pages through its first 10,000 results (page * page_size <= 10,000)
const MAX_PAGES = Math.floor(10000 / PAGE_SIZE);
const LOW_STOCK = 5;
let timers = [];  // countdowns of the page shown

// -- small helpers -----------------------------------------------------------------------
function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else if (k === "class") el.className = v;
    else if (k === "dataset") Object.assign(el.dataset, v);
    else el.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

function fill(el, ...children) {  // replaceChildren, leaving out null/false (the DOM would print them)
  el.replaceChildren(...children.flat().filter((c) => c !== null && c !== undefined && c !== false));
  return el;
}

function img(attrs) {  // an image that turns into a quiet placeholder when it cannot load
  return h("img", {...attrs, onerror: (e) => {
    const ph = h("div", {class: (attrs.class || "") + " thumb none", role: "img", "aria-label": attrs.alt || "no image"}, "no image");
    e.target.replaceWith(ph);
  }});
}

function money(amount, currency) {
  return new Intl.NumberFormat("en-US", {style: "currency", currency: currency || "USD"})
    .format(amount);
}
const cents = (c, currency) => money(c / 100, currency);

function stars(avg, count) {
  const full = Math.round(avg || 0);
  return h("span", {class: "stars", "aria-label": `${(avg || 0).toFixed(1)} out of 5 stars, ${count} reviews`},
           "★".repeat(full) + "☆".repeat(5 - full), h("span", {class: "count"}, ` (${count})`));
}

function stockBadge(status, available) {
  if (status === "OUT_OF_STOCK") return h("span", {class: "badge out"}, "Out of stock");
  if (available !== null && available !== undefined && available > 0 && available <= LOW_STOCK)
    return h("span", {class: "badge low"}, `Only ${available} left`);
  if (status === "IN_STOCK" || status === "LOW_STOCK") return h("span", {class: "badge in"}, "In stock");
  return null;
}

function newKey() {
  return (crypto.randomUUID ? crypto.randomUUID()
          : Date.now().toString(36) + Math.random().toString(36).slice(2)).replace(/[^\w-]/g, "");
}

// -- a shopper's session and what it does with results --------------------------------------
// The session id (cookie `aisle_session`, 30 days) keeps a shopper in one arm of a ranker
// experiment; clicks on results and add-to-carts of a product reached from a search go back
// to the search API (`POST /api/v1/events`), credited to the arm that showed them.
const SESSION_COOKIE = "aisle_session";
(function ensureSession() {
  if (document.cookie.split("; ").some((c) => c.startsWith(SESSION_COOKIE + "="))) return;
  document.cookie = `${SESSION_COOKIE}=${newKey()}; path=/; max-age=${30 * 86400}; SameSite=Lax`;
})();

function sendEvent(type, searchId, productId, position) {
  if (!searchId) return;
  fetch(API + "/events", {method: "POST", keepalive: true, credentials: "same-origin",
    headers: {"Content-Type": "application/json"},
    body: JSON.stringify({type, search_id: searchId, product_id: String(productId), position})})
    .catch(() => {});  // an event lost is a count lost, never a shopper's problem
}

const CREDIT_MS = 3600 * 1000;  // a search's results are credited for an hour (its impression)

function cameFrom(productId) {  // the search result this product was opened from, lately
  try {
    const from = JSON.parse(sessionStorage.getItem("aisle_from_" + productId));
    return from && Date.now() - from.at < CREDIT_MS ? from : null;
  } catch (e) { return null; }
}

function resultClicked(productId, searchId, position) {
  try { sessionStorage.setItem("aisle_from_" + productId, JSON.stringify({searchId, position, at: Date.now()})); } catch (e) { /* private mode */ }
  sendEvent("click", searchId, productId, position);
}

class ApiError extends Error {
  constructor(status, body) {
    super((body && body.error && body.error.message) || `HTTP ${status}`);
    this.status = status;
    this.body = body;
  }
  get code() { return this.body && this.body.error && this.body.error.code; }
  get fields() { return (this.body && this.body.error && this.body.error.fields) || {}; }
}

async function api(path, options = {}) {
  const init = {credentials: "same-origin", ...options,
                headers: {"Accept": "application/json", ...(options.headers || {})}};
  if (options.json !== undefined) {
    init.body = JSON.stringify(options.json);
    init.headers["Content-Type"] = "application/json";
  }
  const r = await fetch(API + path, init);
  const body = await r.json().catch(() => null);
  if (!r.ok) throw new ApiError(r.status, body);
  return body;
}

// The API's errors are {"error": {"code", "message", "fields": {"q": "String should have at
// most 500 characters"}}}: the fields' reasons are what a shopper can act on ("request is
// invalid" is not), said in words.
const FIELD_NAMES = {
  q: "Your search", page: "The page number", page_size: "The page size",
  price_min: "The lowest price", price_max: "The highest price", brand: "The brand filter",
  color: "The color filter", size: "The size filter", category: "The category",
  rating_min: "The rating filter", sort: "The sort order", coupon: "The coupon",
  code: "The coupon code", quantity: "The quantity", variant_id: "The item",
  product_id: "The product", expected_total_cents: "The total shown", cart: "The cart",
};

function fieldName(key) {
  if (FIELD_NAMES[key]) return FIELD_NAMES[key];
  const attr = /^attr\.(.+)$/.exec(key);
  if (attr) return `The ${attr[1]} filter`;
  const words = key.replace(/\.\d+(\.|$)/g, " ").replace(/[._]+/g, " ").trim();
  return words ? "The " + words : "The request";
}

function sentence(text) {  // "at most 500 cents" -> "At most $5.00."
  const t = String(text || "").trim().replace(/\b(\d+) cents\b/g, (_, n) => cents(Number(n)));
  return t ? t[0].toUpperCase() + t.slice(1) + (/[.!?]$/.test(t) ? "" : ".") : "";
}

function fieldReasons(e) {  // each field's reason, in words: "Your search should have at most ..."
  if (!(e instanceof ApiError)) return [];
  return Object.entries(e.fields).map(([key, why]) => {
    const reason = String(why).trim().replace(/^(String|Input|Value|List|Integer|Number)\s+(?=should\b)/i, "");
    return /^should\b/.test(reason) ? sentence(`${fieldName(key)} ${reason}`)
                                     : sentence(`${fieldName(key)}: ${reason}`);
  });
}

function errorText(e) {  // one line (a toast): the fields' reasons, else the message
  const reasons = fieldReasons(e);
  if (reasons.length) return reasons.join(" ");
  return e instanceof ApiError ? sentence(e.message) : "Something went wrong: please try again.";
}

function errorPage(e, path) {
  const known = e instanceof ApiError;
  const title = known && e.status === 404 ? (path.startsWith("/product/") ? "Product not found" : "Not found")
    : known && (e.status === 422 || e.status === 400) ? "This page cannot be shown"
    : known && (e.status === 429 || e.status >= 500) ? "The shop is busy" : "Something went wrong";
  document.title = `${title} · aisle`;
  const reasons = fieldReasons(e);
  const said = known && !(reasons.length && e.code === "validation_failed") ? sentence(e.message)
    : known ? null : "The page could not be loaded.";
  fill(main, h("section", {class: "error-page", id: "error-page"},
    h("h1", {tabindex: "-1"}, title),
    h("div", {role: "alert"},
      said ? h("p", {class: "error", id: "error-message"}, said) : null,
      reasons.length ? h("ul", {class: "error", id: "error-reasons"}, reasons.map((r) => h("li", {}, r))) : null),
    h("p", {},
      h("a", {href: "/", "data-link": true, id: "back-to-shop"}, "Back to the shop"),
      known && [400, 404, 422].includes(e.status) ? null
        : [" ", h("button", {type: "button", class: "secondary", onclick: () => route({navigated: true})}, "Try again")])));
}

function focusHeading() {  // a new page: its heading has the focus (a screen reader says it)
  const heading = document.getElementById("count") || main.querySelector("h1");
  if (heading && !heading.hasAttribute("tabindex")) heading.setAttribute("tabindex", "-1");
  (heading || main).focus({preventScroll: true});
}

function toast(text) {
  const t = document.getElementById("toast");
  t.textContent = text;
  t.hidden = false;
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => { t.hidden = true; }, 3500);
}

// Navigation keeps a keyboard user's place: the control that changed the page has the focus
// again once it is redrawn (a facet, the sort; a pager link: the results' heading), and Back
// returns to where the page was scrolled.
if ("scrollRestoration" in history) history.scrollRestoration = "manual";

function go(url, replace = false, control = null) {
  const from = control || document.activeElement;  // a facet names itself (a tap on its label)
  // a pager or a chip: the results' heading; the search box (a new search): the top
  const focus = from && from.closest && from.closest(".pager, .chips") ? "count"
    : (from && from !== document.body && from !== input && from.id) || null;
  if (!replace) history.replaceState({...(history.state || {}), scrollY: window.scrollY}, "");
  history[replace ? "replaceState" : "pushState"]({}, "", url);
  route({focus, navigated: true});
}

document.addEventListener("click", (e) => {
  const a = e.target.closest("a[data-link]");
  if (!a || e.metaKey || e.ctrlKey || e.shiftKey || e.button !== 0) return;
  e.preventDefault();
  go(a.getAttribute("href"));
});
window.addEventListener("popstate", (e) => route({scrollY: (e.state && e.state.scrollY) || 0}));

// -- search box with typeahead -------------------------------------------------------------
const form = document.getElementById("search-form");
const input = document.getElementById("q");
const list = document.getElementById("suggestions");
let suggestTimer = null, suggestSeq = 0, active = -1;

function closeSuggestions() {
  clearTimeout(suggestTimer);
  suggestSeq++;  // a request still on its way answers nobody: the list stays closed
  list.hidden = true;
  fill(list);
  input.setAttribute("aria-expanded", "false");
  input.removeAttribute("aria-activedescendant");
  active = -1;
}

function submitSearch(q) {
  closeSuggestions();
  filtersOpen = false;  // a new search starts with its results (on a phone, the filters folded)
  go("/search?" + new URLSearchParams({q}).toString());
}

form.addEventListener("submit", (e) => { e.preventDefault(); submitSearch(input.value.trim()); });
input.addEventListener("input", () => {
  clearTimeout(suggestTimer);
  const q = input.value;
  // the suggest API takes 1-100 characters: past them nothing is asked
  if (q.trim().length < 2 || q.length > 100) { closeSuggestions(); return; }
  const seq = ++suggestSeq;
  suggestTimer = setTimeout(async () => {
    try {
      const got = await api("/products/suggest?" + new URLSearchParams({q, limit: 8}));
      if (seq !== suggestSeq || input.value !== q || document.activeElement !== input) return;
      fill(list, ...got.suggestions.map((s, i) => h("li", {
        id: `sg-${i}`, role: "option", "aria-selected": "false",
        onmousedown: (e) => { e.preventDefault(); input.value = s.text; submitSearch(s.text); },
      }, s.text)));
      list.hidden = got.suggestions.length === 0;
      input.setAttribute("aria-expanded", String(!list.hidden));
      active = -1;
    } catch (e) { closeSuggestions(); }
  }, 150);
});
input.addEventListener("keydown", (e) => {
  const items = [...list.children];
  if (list.hidden || !items.length) return;
  if (e.key === "ArrowDown" || e.key === "ArrowUp") {
    e.preventDefault();
    active = (active + (e.key === "ArrowDown" ? 1 : -1) + items.length) % items.length;
    items.forEach((li, i) => li.setAttribute("aria-selected", String(i === active)));
    input.setAttribute("aria-activedescendant", items[active].id);
    input.value = items[active].textContent;
  } else if (e.key === "Escape") {
    closeSuggestions();
  }
});
input.addEventListener("blur", () => setTimeout(closeSuggestions, 100));

// -- routing -----------------------------------------------------------------------------
// Only the latest navigation draws: each one aborts the fetches of the one before it, and a
// page checks `nav.check()` after every wait, so a slow answer of an older navigation (a search,
// a product) never draws over the newer page nor touches the history (its URL).
let navSeq = 0;
let navAbort = null;

class StaleNavigation extends Error {}

function newNav() {
  if (navAbort) navAbort.abort();
  const controller = navAbort = new AbortController();
  const seq = ++navSeq;
  return {
    signal: controller.signal,
    get live() { return seq === navSeq; },
    check() { if (seq !== navSeq) throw new StaleNavigation(); },
  };
}

async function route(opts = {}) {
  timers.forEach(clearInterval);
  timers = [];
  const nav = newNav();
  const path = location.pathname;
  const params = new URLSearchParams(location.search);
  for (const key of MULTI) {  // brand=HP&brand=Lenovo (a link from elsewhere) is one list, as the API reads it
    const all = params.getAll(key);
    if (all.length > 1) params.set(key, all.join(","));
  }
  try {
    if (path === "/cart") await cartPage(nav, opts.notice);
    else if (path.startsWith("/product/")) await productPage(decodeURIComponent(path.slice(9)), nav);
    else await searchPage(params, nav);
  } catch (e) {
    if (!nav.live) return;  // a newer navigation draws the page (its fetches were aborted)
    errorPage(e, path);
    if (!(e instanceof ApiError)) console.error(e);
  }
  if (!nav.live) return;
  if (opts.scrollY !== undefined) {
    window.scrollTo(0, opts.scrollY);
  } else if (opts.focus) {
    const el = opts.focus !== "count" && document.getElementById(opts.focus);
    if (el) el.focus();
    if (!el || document.activeElement !== el) {  // gone, or hidden: the results' heading
      window.scrollTo(0, 0);
      focusHeading();
    }
  } else {
    window.scrollTo(0, 0);
    if (opts.navigated) focusHeading();
  }
  refreshCartCount();
}

// -- search page ---------------------------------------------------------------------------
const MULTI = ["brand", "color", "size"];
// Whether the filters are open on a narrow screen (folded behind the Filters button): kept
// while the shopper filters, sorts and pages (each redraws the page), folded on a new search.
let filtersOpen = false;
const SINGLE = ["category", "price", "rating_min"];

function searchQuery(params) {
  const out = new URLSearchParams();
  for (const k of ["q", "category", "brand", "color", "size", "rating_min", "sort"]) {
    if (params.get(k)) out.set(k, params.get(k));
  }
  const price = params.get("price");
  if (price) {
    const [lo, hi] = price.split("-");
    out.set("price_min", lo);
    // a range's facet counts prices from lo up to, not including, hi (hi starts the next
    // range); price_max includes its own value, so the range ends a cent below hi
    if (hi) out.set("price_max", (Number(hi) - 0.01).toFixed(2));
  }
  out.set("page", params.get("page") || "1");
  out.set("page_size", String(PAGE_SIZE));
  return out;
}

// List filters (brand=, color=, size=) are comma lists in which a comma inside a value is
// written `\,` and a backslash `\\` (brand "Smith, Jones & Co" is `Smith\, Jones & Co`).
function splitList(raw) {
  const values = [];
  let part = "";
  for (let i = 0; i < (raw || "").length; i++) {
    const c = raw[i];
    if (c === "\\") part += i + 1 < raw.length ? raw[++i] : c;
    else if (c === ",") { values.push(part); part = ""; }
    else part += c;
  }
  values.push(part);
  return values.map((v) => v.trim()).filter(Boolean);
}

function joinList(values) {
  return values.map((v) => v.replace(/\\/g, "\\\\").replace(/,/g, "\\,")).join(",");
}

// Brands are filtered case- and space-insensitively (the API's brand_key), and their facet
// shows one spelling: brand=NIKE is the "Nike" box, ticked, and unticking it drops either.
function sameValue(key) {
  const brandKey = (v) => v.toLowerCase().split(/\s+/).filter(Boolean).join(" ");
  return key === "brand" ? (a, b) => brandKey(a) === brandKey(b) : (a, b) => a === b;
}

function withParam(params, key, value, multi) {
  const next = new URLSearchParams(params);
  next.delete("page");
  if (multi) {
    const have = splitList(next.get(key));
    const same = sameValue(key);
    const set = have.some((x) => same(x, value)) ? have.filter((x) => !same(x, value)) : [...have, value];
    if (set.length) next.set(key, joinList(set)); else next.delete(key);
  } else if (next.get(key) === value) {
    next.delete(key);
  } else {
    next.set(key, value);
  }
  return "/search?" + next.toString();
}

function priceKey(label) {  // "$25-$50" -> "25-50", "$1000+" -> "1000-"
  const m = label.replace(/\$/g, "").match(/^([\d.]+)(?:-([\d.]+)|\+)$/);
  return m ? `${m[1]}-${m[2] || ""}` : null;
}

// A facet's checkbox id: one per group and value, the same on every redraw (the focus goes back
// to it by id). Letters and digits stay; any other character is written `_<hex code>_`, so two
// values never share an id ("black/white" and "black white", "Grün" and "Grön").
function facetId(name, value) {
  return `f-${name}-` + String(value).replace(/[^A-Za-z0-9]/g, (c) => `_${c.charCodeAt(0).toString(16)}_`);
}

function facetGroup(title, name, items, params, multi) {
  if (!items.length) return null;
  const chosen = multi ? splitList(params.get(name)) : [params.get(name)];
  const same = sameValue(name);
  return h("fieldset", {},
    h("legend", {}, title),
    items.map((it) => {
      const id = facetId(name, it.value);
      return h("label", {for: id},
        h("input", {type: "checkbox", id, checked: chosen.some((c) => c !== null && same(c, it.value)),
                    onchange: (e) => go(withParam(params, name, it.value, multi), false, e.currentTarget)}),
        it.label, h("span", {class: "count"}, it.count));
    }));
}

async function searchPage(params, nav) {
  input.value = params.get("q") || "";
  fill(main, h("p", {"aria-busy": "true"}, "Searching…"));
  const res = await api("/products/search?" + searchQuery(params).toString(), {signal: nav.signal});
  nav.check();
  document.title = params.get("q") ? `${params.get("q")} · aisle` : "aisle";
  const f = res.facets;
  const facets = h("aside", {class: "facets", id: "facets", "aria-label": "Filters", dataset: {open: String(filtersOpen)}},
    facetGroup("Category", "category", f.categories.map((c) => ({value: c.id, label: c.name, count: c.count})), params, false),
    facetGroup("Brand", "brand", f.brands.map((b) => ({value: b.name, label: b.name, count: b.count})), params, true),
    facetGroup("Price", "price", f.price_ranges.map((p) => ({value: priceKey(p.range), label: p.range, count: p.count}))
      .filter((p) => p.value), params, false),
    facetGroup("Rating", "rating_min", f.ratings.map((r) => ({value: String(r.min), label: r.label, count: r.count})), params, false),
    ...Object.entries(f.attributes || {}).filter(([n]) => n === "color" || n === "size").map(([n, vals]) =>
      facetGroup(n[0].toUpperCase() + n.slice(1), n, vals.map((v) => ({value: v.value, label: v.value, count: v.count})), params, true)));
  const notices = [];
  if (res.did_you_mean) {
    const q = res.did_you_mean;
    notices.push(h("p", {class: "notice", id: "did-you-mean"}, "Did you mean ",
      h("a", {href: "/search?" + new URLSearchParams({q}), "data-link": true}, q), "?"));
  }
  if (res.relaxed) notices.push(h("p", {class: "notice", id: "relaxed"}, RELAXED[res.relaxed] ||
    "No results matched every word: showing the closest ones."));
  if (res.widened) notices.push(h("p", {class: "notice", id: "widened"},
    `Only ${res.widened.inferred_filter_matches} result${res.widened.inferred_filter_matches === 1 ? "" : "s"} ` +
    `matched what we read from your words (a color, a price…): ${res.widened.more_results} more are shown without it.`));
  const chips = await activeFilters(params);
  nav.check();
  const sort = h("select", {id: "sort", onchange: (e) => {
    const next = new URLSearchParams(params); next.set("sort", e.target.value); next.delete("page");
    go("/search?" + next.toString());
  }}, SORTS.map(([v, label]) => h("option", {value: v, selected: (params.get("sort") || "relevance") === v}, label)));
  const first = (res.page - 1) * res.page_size;
  const grid = h("ul", {class: "grid", id: "results", "aria-label": "Results"},
                 res.results.map((r, i) => resultCard(r, res.search_id, first + i + 1)));
  const pages = Math.min(Math.ceil(res.total / PAGE_SIZE), MAX_PAGES);
  const capped = res.total > MAX_PAGES * PAGE_SIZE
    ? h("p", {class: "notice", id: "capped"},
        `Showing the first ${(MAX_PAGES * PAGE_SIZE).toLocaleString()} of ${res.total.toLocaleString()} ` +
        "results: refine your search (more words, or filters) to see the others.")
    : null;
  fill(main, h("div", {class: "layout"}, facets, h("section", {"aria-labelledby": "count"},
    h("div", {class: "toolbar"},
      h("h1", {id: "count", tabindex: "-1", style: "font-size:1.05rem;margin:0"},
        `${res.total.toLocaleString()} result${res.total === 1 ? "" : "s"}`,
        params.get("q") ? ` for “${params.get("q")}”` : ""),
      h("button", {class: "filters-toggle secondary", id: "filters-toggle", "aria-controls": "facets",
                   "aria-expanded": String(filtersOpen), onclick: (e) => {
                     filtersOpen = facets.dataset.open !== "true";
                     facets.dataset.open = String(filtersOpen);
                     e.currentTarget.setAttribute("aria-expanded", String(filtersOpen));
                   }}, "Filters"),
      h("label", {}, "Sort by ", sort)),
    chips,
    notices,
    res.results.length ? grid : res.total > 0
      ? h("p", {id: "no-results"}, "No results on this page. ",
          h("a", {href: withPage(params, 1), "data-link": true}, "Back to the first page"))
      : h("p", {id: "no-results"}, "Nothing found. Try other words or fewer filters."),
    pager(params, res.page, pages),
    capped)));
}

function withPage(params, page) {
  const next = new URLSearchParams(params);
  next.set("page", String(page));
  return "/search?" + next.toString();
}

let categoryNames = null;  // category id -> "A > B" (the tree, read once)
async function categoryLabel(value) {
  if (!categoryNames) {
    categoryNames = api("/categories").then((got) => {
      const names = new Map();
      const walk = (nodes) => nodes.forEach((c) => {
        names.set(String(c.category_id), c.path.join(" › ") || c.name);
        walk(c.children || []);
      });
      walk(got.categories || []);
      return names;
    }).catch(() => new Map());
  }
  const id = String(value).replace(/^CAT_/i, "");
  return (await categoryNames).get(id) || value;
}

function priceLabel(key) {  // "25-50" -> "$25 – $50", "1000-" -> "$1000 and up"
  const [lo, hi] = key.split("-");
  return hi ? `$${lo} – $${hi}` : `$${lo} and up`;
}

// The filters in force, each a button that removes it (a category filter's facet lists its
// subcategories, so this is the way back out of it), and "Clear filters".
async function activeFilters(params) {
  const chips = [];
  for (const key of ["category", ...MULTI, "price", "rating_min"]) {
    const raw = params.get(key);
    if (!raw) continue;
    const multi = MULTI.includes(key);
    for (const value of multi ? splitList(raw) : [raw]) {
      const label = key === "category" ? `Category: ${await categoryLabel(value)}`
        : key === "price" ? `Price: ${priceLabel(value)}`
        : key === "rating_min" ? `${value}★ & up`
        : key === "brand" ? value : `${key[0].toUpperCase() + key.slice(1)}: ${value}`;
      chips.push(h("button", {type: "button", class: "chip secondary", "aria-label": `Remove filter ${label}`,
                              onclick: () => go(withParam(params, key, value, multi))}, label, " ×"));
    }
  }
  if (!chips.length) return null;
  const kept = new URLSearchParams();
  for (const k of ["q", "sort"]) if (params.get(k)) kept.set(k, params.get(k));
  chips.push(h("a", {href: "/search?" + kept.toString(), "data-link": true, id: "clear-filters"}, "Clear filters"));
  return h("div", {class: "chips", id: "active-filters", "aria-label": "Filters in force"}, chips);
}

const RELAXED = {
  fuzzy: "No exact matches: showing results for close spellings of your words.",
  inferred_filters_dropped: "Nothing matched what we read from your words (a color, a price…): " +
    "showing every match of the words instead.",
};

function resultCard(r, searchId, position) {
  const deal = (r.badges || []).find((b) => /deal/i.test(b));
  const url = `/product/${r.product_id}`;
  const st = {status: r.in_stock ? "IN_STOCK" : "OUT_OF_STOCK", available: r.available};
  const clicked = searchId ? () => resultClicked(r.product_id, searchId, position) : null;
  return h("li", {class: "card", dataset: {productId: r.product_id}},
    h("a", {href: url, "data-link": true, tabindex: "-1", "aria-hidden": "true", onclick: clicked},
      r.thumbnail_url ? img({class: "thumb", src: r.thumbnail_url, alt: "", loading: "lazy"})
                      : h("div", {class: "thumb none"}, "no image")),
    h("a", {class: "title", href: url, "data-link": true, onclick: clicked}, r.title),
    h("div", {class: "price"}, money(r.price.amount, r.price.currency),
      r.price.was ? h("span", {class: "was"}, money(r.price.was, r.price.currency)) : null),
    h("div", {}, deal ? h("span", {class: "badge deal"}, "Deal") : null,
      (r.badges || []).filter((b) => !/deal/i.test(b)).slice(0, 2).map((b) => h("span", {class: "badge"}, b.replace(/_/g, " ")))),
    stars(r.rating.avg, r.rating.count),
    h("div", {class: "stock"}, stockBadge(st.status, st.available)));
}

function pager(params, page, pages) {
  if (pages <= 1) return null;
  const link = (p, label) => {
    const next = new URLSearchParams(params); next.set("page", String(p));
    // a page number is named "Page N"; Previous and Next by the words they show
    return h("a", {href: "/search?" + next.toString(), "data-link": true,
                   "aria-label": label ? null : `Page ${p}`}, label || String(p));
  };
  const items = [];
  const gap = () => h("span", {class: "gap", "aria-hidden": "true"}, "…");
  const from = Math.max(1, page - 2), to = Math.min(pages, page + 2);
  if (page > 1) items.push(link(page - 1, "‹ Previous"));
  if (from > 1) items.push(link(1), from > 2 ? gap() : null);
  for (let p = from; p <= to; p++) {
    items.push(p === page ? h("span", {"aria-current": "page"}, String(p)) : link(p));
  }
  if (to < pages) items.push(to < pages - 1 ? gap() : null, link(pages));
  if (page < pages) items.push(link(page + 1, "Next ›"));
  return h("nav", {class: "pager", "aria-label": "Pages"}, items);
}

// -- product page ----------------------------------------------------------------------------
async function productPage(id, nav) {
  fill(main, h("p", {"aria-busy": "true"}, "Loading…"));
  const p = await api(`/products/${encodeURIComponent(id)}`, {signal: nav.signal});
  nav.check();
  const path = location.pathname;
  document.title = `${p.title} · aisle`;
  const params = new URLSearchParams(location.search);
  const options = optionNames(p.variants);
  let current = p.variants.find((v) => v.variant_id === params.get("variant")) ||
    p.variants.find((v) => v.variant_id === p.buy_box.variant_id) || p.variants[0];

  const big = h("img", {id: "main-image", alt: p.title, onerror: () => { big.hidden = true; }});
  const thumbs = h("div", {class: "thumbs"});
  const priceBox = h("div", {class: "price", id: "price"});
  const stock = h("div", {id: "stock"});
  const seller = h("p", {id: "seller"});
  const qty = h("input", {id: "qty", type: "number", min: "1", max: "20", value: "1", style: "width:4em"});
  const add = h("button", {id: "add-to-cart", onclick: () => {
    const n = Number(qty.value);
    if (!Number.isInteger(n) || n < 1 || n > 20) {  // never a unit the shopper did not ask for
      toast("Quantity: a whole number from 1 to 20");
      qty.focus();
      return;
    }
    addToCart(current, n, p.product_id);
  }}, "Add to cart");
  const picker = h("div", {class: "options", id: "variants"});

  function showImages(urls) {
    const all = urls.length ? urls : p.images;
    if (!all.length) {
      big.hidden = true;
      fill(thumbs, h("div", {class: "thumb none", role: "img", "aria-label": "no image"}, "no image"));
      return;
    }
    big.hidden = false;
    big.src = all[0];
    fill(thumbs, ...all.slice(0, 8).map((u, i) => h("button", {
      type: "button", "aria-label": `Image ${i + 1}`, "aria-pressed": String(i === 0),
      onclick: (e) => {
        big.src = u;
        thumbs.querySelectorAll("button").forEach((b) => b.setAttribute("aria-pressed", "false"));
        e.currentTarget.setAttribute("aria-pressed", "true");
      }}, img({src: u, alt: ""}))));
  }

  function show(v) {
    current = v;
    const pr = v.price;
    fill(priceBox, money(pr.amount, pr.currency),
      pr.was ? h("span", {class: "was"}, money(pr.was, pr.currency)) : null,
      pr.was || (v.buy_box.winner && v.buy_box.winner.deal_id)
        ? h("span", {class: "badge deal", style: "margin-left:8px"}, "Deal") : null);
    // an add takes from the buy box winner's units: its offer's stock, else the variant's
    const inv = (v.buy_box.winner && v.buy_box.winner.inventory) || v.inventory || {};
    const hint = Number.parseInt(inv.quantity_hint, 10);
    fill(stock, stockBadge(inv.status, Number.isNaN(hint) ? null : hint) ||
                          h("span", {class: "badge"}, "Stock unknown"));
    const s = (v.buy_box.winner && v.buy_box.winner.seller) || p.seller;
    fill(seller, "Sold by ", h("strong", {}, s.name),
      s.rating ? ` (${Number(s.rating).toFixed(1)} ★)` : "");
    add.disabled = inv.status === "OUT_OF_STOCK" || !v.buy_box.winner;
    showImages(v.images || []);
    picker.querySelectorAll("input").forEach((el) => {
      el.checked = v.attributes[el.name] === el.value;
      const others = {...v.attributes, [el.name]: el.value};
      el.disabled = !p.variants.some((x) => options.every((o) => x.attributes[o] === others[o]));
    });
    // the variant in the URL (shareable), while this page is the one shown
    if (p.variants.length > 1 && nav.live && location.pathname === path) {
      const next = new URLSearchParams(location.search);
      next.set("variant", v.variant_id);
      history.replaceState(history.state, "", `${path}?${next}`);
    }
  }

  for (const name of options) {
    const values = [...new Set(p.variants.map((v) => v.attributes[name]).filter(Boolean))];
    picker.append(h("fieldset", {}, h("legend", {}, name[0].toUpperCase() + name.slice(1)),
      values.map((val) => h("label", {},
        h("input", {type: "radio", name, value: val, onchange: () => {
          const want = {...current.attributes, [name]: val};
          const match = p.variants.find((x) => options.every((o) => x.attributes[o] === want[o])) ||
                        p.variants.find((x) => x.attributes[name] === val);
          if (match) show(match);
        }}), h("span", {}, val)))));
  }

  const r = p.reviews_summary || {avg: 0, count: 0};
  const dist = r.distribution || {};
  const total = Object.values(dist).reduce((a, b) => a + Number(b), 0) || r.count || 0;
  const bars = h("ul", {class: "bars", id: "rating-bars"}, [5, 4, 3, 2, 1].map((n) => {
    const c = Number(dist[n] || dist[String(n)] || 0);
    const pct = total ? Math.round((100 * c) / total) : 0;
    return h("li", {}, `${n} star`, h("span", {class: "bar", role: "img", "aria-label": `${pct}% of reviews give ${n} stars`},
      h("i", {style: `width:${pct}%`})), `${pct}%`);
  }));
  const related = h("section", {class: "related", "aria-labelledby": "related-h"});

  fill(main, 
    h("nav", {"aria-label": "Breadcrumb", style: "margin-bottom:8px;color:var(--muted)"},
      (p.category_path || []).join(" › ")),
    h("article", {class: "product", dataset: {productId: p.product_id}},
      h("div", {class: "gallery"}, big, thumbs),
      h("div", {},
        h("h1", {style: "font-size:1.4rem;margin-top:0", tabindex: "-1"}, p.title),
        p.brand ? h("p", {style: "color:var(--muted);margin:0"}, p.brand) : null,
        stars(r.avg, r.count),
        priceBox, stock, seller, picker,
        h("p", {}, h("label", {for: "qty"}, "Quantity "), qty, " ", add),
        h("h2", {style: "font-size:1.05rem"}, "Reviews"),
        h("p", {id: "rating-summary"}, `${Number(r.avg || 0).toFixed(1)} out of 5 · ${r.count} reviews`),
        bars,
        p.description ? h("details", {}, h("summary", {}, "Description"), h("p", {}, p.description)) : null)),
    related);
  show(current);
  loadRelated(p.related_products || [], related, nav);
}

function optionNames(variants) {
  const names = new Set();
  for (const v of variants) for (const k of Object.keys(v.attributes || {})) names.add(k);
  // only attributes that tell variants apart are choices
  return [...names].filter((n) => new Set(variants.map((v) => v.attributes[n])).size > 1 ||
                                  (variants.length === 1 && (n === "color" || n === "size")));
}

async function loadRelated(ids, section, nav) {
  if (!ids.length) return;
  const pages = await Promise.all(ids.slice(0, 6).map((id) => api(`/products/${id}`, {signal: nav.signal}).catch(() => null)));
  if (!nav.live) return;
  const cards = pages.filter(Boolean).map((p) => resultCard({
    product_id: p.product_id, title: p.title, price: p.price, badges: p.badges || [],
    rating: {avg: Number(p.reviews_summary.avg || 0), count: p.reviews_summary.count || 0},
    thumbnail_url: (p.images || [])[0], in_stock: p.variants.some((v) => v.inventory.status !== "OUT_OF_STOCK"),
  }));
  if (cards.length) fill(section, h("h2", {id: "related-h", style: "font-size:1.1rem"}, "Related products"),
                                            h("ul", {class: "grid"}, cards));
}

// -- cart ----------------------------------------------------------------------------------
// Whether this browser has a cart (its token is an httpOnly cookie the page cannot see):
// "1" yes, "0" no (pages then do not ask: every page view was a 404 in the console), unset:
// not known yet (asked once, as for a shopper whose cart predates the flag).
const CART_FLAG = "aisle_has_cart";
function cartFlag(value) {
  try {
    if (value !== undefined) localStorage.setItem(CART_FLAG, value);
    return localStorage.getItem(CART_FLAG);
  } catch (e) { return null; }  // no storage: ask every time
}

async function myCart(signal) {  // the cart, or null when this browser has none
  if (cartFlag() === "0") return null;
  try {
    const cart = await api("/cart", {signal});
    cartFlag("1");
    return cart;
  } catch (e) {
    if (e.status !== 404) throw e;
    cartFlag("0");
    return null;
  }
}

async function ensureCart() {  // an open cart: this browser's, or a new one (after a checkout)
  const cart = await myCart();
  if (cart && cart.status === "OPEN") return cart;
  const made = await api("/cart", {method: "POST"});
  cartFlag("1");
  return made;
}

async function addToCart(variant, quantity, productId) {
  const button = document.getElementById("add-to-cart");
  button.disabled = true;
  const key = newKey();
  try {
    await ensureCart();
    let cart;
    for (let attempt = 0; ; attempt++) {  // the same key on a retry: held once
      try {
        cart = await api("/cart/items", {method: "POST", headers: {"Idempotency-Key": key},
                                          json: {variant_id: variant.variant_id, quantity}});
        break;
      } catch (e) {
        if (!(e.status >= 500 && attempt < 2)) throw e;
      }
    }
    setCartCount(cart);
    const from = cameFrom(productId);
    if (from) sendEvent("add_to_cart", from.searchId, productId, from.position);
    toast(`Added to cart: held for you for ${Math.round(holdSeconds(cart, variant.variant_id) / 60)} minutes`);
  } catch (e) {
    toast(e.code === "insufficient_stock" ? "Not enough stock left" : errorText(e));
  } finally {
    button.disabled = false;
  }
}

function holdSeconds(cart, variantId) {
  const line = cart.lines.find((l) => l.variant_id === String(variantId));
  return line ? Math.max(0, (Date.parse(line.expires_at) - Date.now()) / 1000) : 0;
}

// The newest count wins: a GET of the cart sent before an add and answered after it does not
// put the old count back.
let countSeq = 0;
function setCartCount(cart, seq = ++countSeq) {
  if (seq !== countSeq) return;
  const n = cart && cart.status === "OPEN" ? cart.lines.reduce((a, l) => a + l.quantity, 0) : 0;
  document.getElementById("cart-count").textContent = String(n);
}

async function refreshCartCount() {
  const seq = ++countSeq;
  let cart = null;
  try { cart = await myCart(); } catch (e) { cart = null; }
  setCartCount(cart, seq);
}

// After a change of the cart on its page: the cart drawn again (a newer navigation than the
// one that made the change, which may have been replaced meanwhile by another change's
// redraw: the last change still draws last), unless the shopper has left the page.
function redrawCart(opts = {}) {
  if (location.pathname === "/cart") route(opts);
}

function countdown(el, until) {
  const tick = () => {
    const s = Math.max(0, Math.round((Date.parse(until) - Date.now()) / 1000));
    el.textContent = s > 0 ? `held for ${Math.floor(s / 60)}:${String(s % 60).padStart(2, "0")}`
                           : "hold expired";
    if (s === 0) el.classList.add("error");
  };
  tick();
  timers.push(setInterval(tick, 1000));
}

// `notice`: what the page says once (a checkout refused: the cart changed), given by the
// redraw that follows the refusal.
async function cartPage(nav, notice = null) {
  const cart = await myCart(nav.signal);
  nav.check();
  document.title = "Cart · aisle";
  if (!cart || (cart.status === "OPEN" && !cart.lines.length)) {
    fill(main, h("h1", {}, "Your cart"),
      notice ? h("p", {class: "notice", id: "cart-notice", role: "alert"}, notice) : null,
      cart && cart.expired.length ? h("p", {class: "notice"}, "Some holds ran out and were removed.") : null,
      h("p", {id: "empty-cart"}, "Your cart is empty. ", h("a", {href: "/", "data-link": true}, "Keep shopping")));
    return;
  }
  if (cart.status === "CHECKED_OUT") { showOrder(cart.order); return; }
  const q = cart.quote;
  const priced = Object.fromEntries(((q && q.lines) || []).map((l) => [l.variant_id, l]));
  const rows = cart.lines.map((l) => {
    const p = priced[l.variant_id];
    const left = h("span", {class: "countdown"});
    countdown(left, l.expires_at);
    // explicit roles: a phone lays the rows out as blocks (app.css), and they stay a table
    return h("tr", {role: "row", dataset: {variantId: l.variant_id}},
      h("td", {role: "cell", class: "hide-sm"}, l.image_url ? img({src: l.image_url, alt: "", style: "width:56px;height:56px;object-fit:contain"}) : null),
      h("td", {role: "cell", class: "item"}, h("a", {href: `/product/${l.product_id}`, "data-link": true}, l.title),
        h("div", {style: "color:var(--muted);font-size:.85rem"}, Object.entries(l.attributes).map(([k, v]) => `${k}: ${v}`).join(", ")),
        left),
      h("td", {role: "cell", class: "num qty", dataset: {label: "Qty"}}, l.quantity),
      h("td", {role: "cell", class: "num unit", dataset: {label: "Unit"}}, p ? cents(p.unit_cents, q.currency) : "–"),
      // the line's price before the coupon (unit x quantity): the coupon is the summary's
      h("td", {role: "cell", class: "num line-total", dataset: {label: "Total"}}, p ? cents(lineSubtotal(p), q.currency) : "–"),
      h("td", {role: "cell", class: "remove"}, h("button", {class: "secondary", "aria-label": `Remove ${l.title}`, onclick: async (e) => {
        e.target.disabled = true;
        try { await api(`/cart/items/${l.variant_id}`, {method: "DELETE"}); } catch (err) { toast(errorText(err)); }
        redrawCart();
      }}, "Remove")));
  });
  const couponInput = h("input", {id: "coupon", name: "coupon", value: cart.coupon || "", maxlength: "64",
                                  autocomplete: "off", style: "width:10em"});
  const couponError = h("p", {class: "error", id: "coupon-error", role: "alert"});
  // a coupon that stopped applying (a line removed took the cart below its minimum spend):
  // the cart is priced without it, says why, and cannot be checked out until it is removed
  const couponProblem = cart.coupon_error
    ? h("p", {class: "error", id: "coupon-problem"}, sentence(cart.coupon_error)) : null;
  const removeCoupon = cart.coupon ? h("button", {type: "button", class: "secondary", id: "remove-coupon",
    onclick: async (e) => {
      const button = e.currentTarget;
      button.disabled = true;
      couponError.textContent = "";
      try {
        await api("/cart/coupon", {method: "DELETE"});
        redrawCart({focus: "coupon"});
      } catch (err) {
        if (nav.live) { couponError.textContent = errorText(err); button.disabled = false; }
        else toast(errorText(err));
      }
    }}, "Remove coupon") : null;
  const couponForm = h("form", {id: "coupon-form", onsubmit: async (e) => {
    e.preventDefault();
    couponError.textContent = "";
    try {
      if (couponInput.value.trim()) await api("/cart/coupon", {method: "PUT", json: {code: couponInput.value.trim()}});
      else await api("/cart/coupon", {method: "DELETE"});
      redrawCart();
    } catch (err) {
      const why = (err instanceof ApiError && (err.fields.coupon || err.fields.code)) || errorText(err);
      if (nav.live) couponError.textContent = why;
      else toast(why);
    }
  }}, h("label", {for: "coupon"}, "Coupon "), couponInput, " ", h("button", {class: "secondary", type: "submit"}, "Apply"),
     removeCoupon ? [" ", removeCoupon] : null);
  const listTotal = q ? q.lines.reduce((a, l) => a + listCents(l) * l.quantity, 0) : 0;
  const summary = h("div", {class: "summary", id: "summary"},
    q ? h("dl", {},
      h("dt", {}, "Items at list price"), h("dd", {id: "sum-list"}, cents(listTotal, q.currency)),
      h("dt", {}, "Deals"), h("dd", {id: "sum-deals"}, cents(q.subtotal_cents - listTotal, q.currency)),
      h("dt", {}, "Coupon" + (q.coupon ? ` ${q.coupon}` : cart.coupon_error ? ` ${cart.coupon} (does not apply)` : "")),
      h("dd", {id: "sum-coupon"}, cents(q.discount_cents ? -q.discount_cents : 0, q.currency)),
      h("dt", {class: "total"}, "Total"), h("dd", {class: "total", id: "sum-total"}, cents(q.total_cents, q.currency)))
      : h("p", {class: "error"}, cart.quote_error || "No price right now."),
    couponForm, couponProblem, couponError,
    h("button", {id: "checkout", disabled: !q || !!cart.coupon_error,
                 "aria-describedby": cart.coupon_error ? "coupon-problem" : null, onclick: async (e) => {
      const button = e.currentTarget;
      button.disabled = true;
      try {
        // the total shown: a cart whose total changed since (a seller's price, another tab's
        // add) is not bought (409 cart_changed), and the shopper sees the new one first
        const order = await api("/cart/checkout", {method: "POST", json: {expected_total_cents: q.total_cents}});
        if (nav.live) showOrder(order);
        refreshCartCount();
      } catch (err) {
        if (location.pathname !== "/cart") return;
        if (!(err instanceof ApiError) || err.status >= 500) {
          // no answer (the connection dropped) or a failure: whether the order was placed
          // is for the cart to say (a checked-out cart shows its order); a retry is safe
          redrawCart({focus: "checkout", notice: "The shop did not confirm your order: " +
                      "here is your cart as it is now (checking out again never charges twice)."});
          return;
        }
        if (err.code === "cart_changed" || err.status === 409 || err.fields.coupon) {
          // the cart is not as shown (a new total, holds run out, a coupon that does not
          // apply): drawn again as it is now, saying why, for a second click
          const now = err.body && err.body.error && err.body.error.total_cents;
          redrawCart({focus: "checkout", notice: err.code !== "cart_changed" ? errorText(err)
            : "Your cart changed: please check the new total" +
              (typeof now === "number" ? ` (${cents(now, q.currency)}, it was ${cents(q.total_cents, q.currency)})` : "") +
              ", then check out again."});
          return;
        }
        toast(errorText(err));
        button.disabled = false;
      }
    }}, "Check out"));
  fill(main, h("h1", {}, "Your cart"),
    notice ? h("p", {class: "notice", id: "cart-notice", role: "alert"}, notice) : null,
    cart.expired.length ? h("p", {class: "notice"}, "Some holds ran out and were removed.") : null,
    h("div", {class: "cart-scroll"}, h("table", {class: "cart", id: "cart-lines", role: "table", "aria-label": "Items in your cart"},
      h("thead", {role: "rowgroup"}, h("tr", {role: "row"},
        h("th", {role: "columnheader", class: "hide-sm"}, h("span", {class: "sr-only"}, "Image")),
        h("th", {role: "columnheader"}, "Item"), h("th", {role: "columnheader", class: "num"}, "Qty"),
        h("th", {role: "columnheader", class: "num"}, "Unit"), h("th", {role: "columnheader", class: "num"}, "Total"),
        h("th", {role: "columnheader"}, h("span", {class: "sr-only"}, "Remove")))),
      h("tbody", {role: "rowgroup"}, rows))),
    summary);
}

function lineSubtotal(line) {  // a quoted line's price after deals, before the coupon
  return typeof line.subtotal_cents === "number" ? line.subtotal_cents : line.unit_cents * line.quantity;
}

function listCents(line) {  // the unit's list price: the first step of its breakdown
  const first = (line.breakdown || [])[0];
  return first && typeof first.unit_cents === "number" ? first.unit_cents : line.unit_cents;
}

function showOrder(order) {
  document.title = "Order placed · aisle";
  fill(main, h("h1", {}, "Thank you!"),
    h("p", {id: "order"}, "Order ", h("strong", {id: "order-id"}, order.order_id), " is placed: ",
      h("strong", {id: "order-total"}, cents(order.total_cents, order.currency)), "."),
    h("ul", {}, order.lines.map((l) => h("li", {}, `${l.quantity} × ${l.title}`))),
    h("p", {}, h("a", {href: "/", "data-link": true}, "Keep shopping")));
}

route();
