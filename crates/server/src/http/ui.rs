//! `/ui`: a small page to search the knowledge base, read results and see stats. The script is
//! served from `/ui/app.js` (the content-security policy forbids inline scripts); an API key
//! typed into the page is kept in the browser's local storage and sent as `X-API-Key`.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

const PAGE: &str = r##"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>mneme — knowledge base</title>
<style>
  body { font-family: system-ui, sans-serif; margin: 0; color: #1f2328; background: #fafbfc; }
  header { background: #24292f; color: #fff; padding: .8rem 1.5rem; display: flex; gap: 1rem; align-items: center; }
  header h1 { font-size: 1.2rem; margin: 0; flex: 1; }
  header input { padding: .3rem; border-radius: 4px; border: 0; width: 14rem; }
  main { display: grid; grid-template-columns: 1fr 18rem; gap: 1.5rem; padding: 1.5rem; max-width: 80rem; margin: auto; }
  form { display: flex; gap: .5rem; margin-bottom: 1rem; }
  form input[type=search] { flex: 1; font-size: 1.05rem; padding: .5rem; border: 1px solid #d0d7de; border-radius: 6px; }
  button { padding: .5rem 1rem; border-radius: 6px; border: 1px solid #1a7f37; background: #2da44e; color: #fff; cursor: pointer; }
  select { padding: .4rem; border-radius: 6px; }
  .result { background: #fff; border: 1px solid #d0d7de; border-radius: 6px; padding: .8rem 1rem; margin-bottom: .8rem; }
  .result h3 { margin: 0 0 .3rem; font-size: 1rem; }
  .result .meta { color: #57606a; font-size: .85rem; margin-bottom: .4rem; }
  .result pre { white-space: pre-wrap; margin: 0; font-family: inherit; max-height: 12rem; overflow: auto; }
  #status { color: #57606a; margin-bottom: .8rem; min-height: 1.2rem; }
  #status.error { color: #cf222e; }
  aside { background: #fff; border: 1px solid #d0d7de; border-radius: 6px; padding: 1rem; align-self: start; }
  aside h2 { font-size: 1rem; margin-top: 0; }
  dl { display: grid; grid-template-columns: auto auto; gap: .3rem .8rem; margin: 0; font-size: .9rem; }
  dt { color: #57606a; } dd { margin: 0; text-align: right; font-variant-numeric: tabular-nums; }
</style>
</head>
<body>
<header>
  <h1>mneme knowledge base</h1>
  <label>API key <input id="api-key" type="password" placeholder="(open server)" autocomplete="off"></label>
</header>
<main>
  <section>
    <form id="search-form">
      <input id="query" type="search" placeholder="Search the knowledge base" autofocus required maxlength="1000">
      <select id="limit" aria-label="results"><option>5</option><option selected>10</option><option>25</option><option>50</option></select>
      <button id="search" type="submit">Search</button>
    </form>
    <div id="status"></div>
    <div id="results"></div>
  </section>
  <aside>
    <h2>Stats</h2>
    <dl id="stats"></dl>
    <p><button id="refresh" type="button">Refresh</button></p>
  </aside>
</main>
<script src="/ui/app.js"></script>
</body>
</html>
"##;

const SCRIPT: &str = r##""use strict";
const $ = (id) => document.getElementById(id);
const keyInput = $("api-key");
keyInput.value = localStorage.getItem("mneme-api-key") || "";
keyInput.addEventListener("change", () => { localStorage.setItem("mneme-api-key", keyInput.value); loadStats(); });

function headers() {
  const h = { "Content-Type": "application/json" };
  if (keyInput.value) h["X-API-Key"] = keyInput.value;
  return h;
}

async function call(method, path, body) {
  const response = await fetch(path, { method, headers: headers(), body: body ? JSON.stringify(body) : undefined });
  const data = await response.json().catch(() => ({}));
  if (!response.ok) {
    const detail = typeof data.detail === "string" ? data.detail : (data.message || JSON.stringify(data.detail || data));
    throw new Error(response.status + ": " + detail);
  }
  return data;
}

function setStatus(text, error) {
  const status = $("status");
  status.textContent = text;
  status.className = error ? "error" : "";
}

function render(results) {
  const list = $("results");
  list.replaceChildren();
  for (const hit of results) {
    const item = document.createElement("article");
    item.className = "result";
    const title = document.createElement("h3");
    title.textContent = hit.rank + ". " + (hit.title || hit.name || hit.doc_id);
    const meta = document.createElement("div");
    meta.className = "meta";
    const where = (hit.heading_path && hit.heading_path.length) ? " — " + hit.heading_path.join(" › ") : "";
    meta.textContent = hit.doc_id + where + " — score " + Number(hit.final_score).toFixed(3);
    const content = document.createElement("pre");
    content.textContent = hit.content;
    item.append(title, meta, content);
    list.append(item);
  }
}

async function search(event) {
  event.preventDefault();
  const query = $("query").value.trim();
  if (!query) return;
  setStatus("Searching…");
  const started = performance.now();
  try {
    const data = await call("POST", "/api/v1/query", { query, limit: Number($("limit").value) });
    const ms = (performance.now() - started).toFixed(1);
    setStatus(data.count + " result" + (data.count === 1 ? "" : "s") + " in " + ms + " ms" + (data.cached ? " (cached)" : ""));
    render(data.results);
    loadStats();
  } catch (err) {
    setStatus(err.message, true);
    $("results").replaceChildren();
  }
}

async function loadStats() {
  const list = $("stats");
  try {
    const s = await call("GET", "/api/v1/stats");
    const rows = [
      ["documents", s.total_documents], ["chunks", s.chunks], ["terms", s.total_terms],
      ["queries", s.total_queries], ["cache hit rate", s.cache_hit_rate],
      ["cached queries", s.cached_queries + " / " + s.cache_capacity], ["last query", s.last_access_age],
    ];
    list.replaceChildren();
    for (const [name, value] of rows) {
      const dt = document.createElement("dt"); dt.textContent = name;
      const dd = document.createElement("dd"); dd.textContent = value;
      list.append(dt, dd);
    }
  } catch (err) {
    list.replaceChildren();
    const dt = document.createElement("dt"); dt.textContent = err.message;
    list.append(dt);
  }
}

$("search-form").addEventListener("submit", search);
$("refresh").addEventListener("click", loadStats);
loadStats();
"##;

/// `GET /ui`
pub async fn page() -> Response {
    let mut response = (StatusCode::OK, PAGE).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    response
}

/// `GET /ui/app.js`
pub async fn script() -> Response {
    let mut response = (StatusCode::OK, SCRIPT).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/javascript; charset=utf-8"),
    );
    response
}
