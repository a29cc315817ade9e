//! `/ui`: a small page to search the knowledge base, read results and see stats. The script is
//! served from `/ui/app.js` (the content-security policy forbids inline scripts); an API key
//! typed into the page is kept in the browser's local storage and sent as `X-API-Key`.
//!
//! Passages are markdown (headings, lists, code, emphasis, links) drawn with DOM nodes only:
//! document text is only ever assigned as text, never parsed as HTML, so a document cannot put
//! markup or script into the page (`scripts/ui-test` checks it in Chromium, the tests below
//! that the script has no HTML sink).

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
  .result .passage { max-height: 16rem; overflow: auto; line-height: 1.4; }
  .passage h4, .passage h5, .passage h6 { margin: .5rem 0 .2rem; font-size: .95rem; }
  .passage p, .passage ul, .passage ol { margin: .3rem 0; }
  .passage pre { white-space: pre-wrap; margin: .3rem 0; background: #f6f8fa; padding: .4rem; border-radius: 4px; font-size: .85rem; }
  .passage code { background: #f6f8fa; border-radius: 3px; padding: 0 .2rem; font-size: .9em; }
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
    item.append(title, meta, passage(hit.content || "", hit.path || hit.doc_id || ""));
    list.append(item);
  }
}

// Files whose text is prose (markdown, or converted with "#" headings); code stays verbatim.
const PROSE = /\.(md|markdown|txt|html?|pdf|docx)$/i;
const FENCE = /^\s*(```|~~~)/;
const ITEM = /^\s*([-*+]|\d+[.)])\s+/;
const HEADING = /^(#{1,6})\s+(.*?)(\s+#+)?\s*$/;
const TABLE = /^\s*\|/;

function element(tag, className) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  return node;
}

// One passage as DOM nodes; its text is only ever assigned as text.
function passage(text, path) {
  const box = element("div", "passage");
  const lines = text.split("\n");
  if (!PROSE.test(path)) {
    const pre = element("pre");
    pre.textContent = text;
    box.append(pre);
    return box;
  }
  let i = 0;
  while (i < lines.length) {
    const line = lines[i];
    if (FENCE.test(line)) {
      const code = [];
      i++;
      while (i < lines.length && !FENCE.test(lines[i])) code.push(lines[i++]);
      i++;
      const pre = element("pre");
      const inner = element("code");
      inner.textContent = code.join("\n");
      pre.append(inner);
      box.append(pre);
      continue;
    }
    const heading = HEADING.exec(line);
    if (heading) {
      const h = element("h" + Math.min(heading[1].length + 3, 6));
      inline(h, heading[2]);
      box.append(h);
      i++;
      continue;
    }
    if (ITEM.test(line)) {
      const list = element(/^\s*\d/.test(line) ? "ol" : "ul");
      while (i < lines.length && ITEM.test(lines[i])) {
        const li = element("li");
        inline(li, lines[i].replace(ITEM, ""));
        list.append(li);
        i++;
      }
      box.append(list);
      continue;
    }
    if (TABLE.test(line)) {
      const rows = [];
      while (i < lines.length && TABLE.test(lines[i])) rows.push(lines[i++]);
      const pre = element("pre", "table");
      pre.textContent = rows.join("\n");
      box.append(pre);
      continue;
    }
    if (!line.trim()) {
      i++;
      continue;
    }
    const words = [];
    while (i < lines.length && lines[i].trim() && !FENCE.test(lines[i]) && !HEADING.test(lines[i])
           && !ITEM.test(lines[i]) && !TABLE.test(lines[i])) {
      words.push(lines[i++].trim());
    }
    const p = element("p");
    inline(p, words.join(" "));
    box.append(p);
  }
  return box;
}

// `code`, **strong**, *emphasis* / _emphasis_ and [links](https://…) inside one block: text
// nodes and elements only. Links other than http(s) stay plain text.
const INLINE = /(`+)([^`]+?)\1|\*\*([^*]+)\*\*|__([^_]+)__|\*([^*\s][^*]*)\*|\b_([^_]+)_\b|\[([^\]]+)\]\(([^)\s]+)\)/g;

function inline(parent, text) {
  let last = 0;
  for (const m of text.matchAll(INLINE)) {
    if (m.index > last) parent.append(text.slice(last, m.index));
    let node;
    if (m[2] !== undefined) {
      node = element("code");
      node.textContent = m[2];
    } else if (m[3] !== undefined || m[4] !== undefined) {
      node = element("strong");
      inline(node, m[3] !== undefined ? m[3] : m[4]);
    } else if (m[5] !== undefined || m[6] !== undefined) {
      node = element("em");
      inline(node, m[5] !== undefined ? m[5] : m[6]);
    } else if (/^https?:\/\//i.test(m[8])) {
      node = element("a");
      node.href = m[8];
      node.rel = "noopener noreferrer";
      node.target = "_blank";
      inline(node, m[7]);
    } else {
      node = element("span");
      node.textContent = m[7];
    }
    parent.append(node);
    last = m.index + m[0].length;
  }
  if (last < text.length) parent.append(text.slice(last));
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Document text reaches the page only as text: the script has no way to parse a string
    /// as HTML (the behaviour is checked in Chromium by `scripts/ui-test`).
    #[test]
    fn the_script_never_parses_document_text_as_html() {
        for sink in [
            "innerHTML",
            "outerHTML",
            "insertAdjacentHTML",
            "document.write",
            "DOMParser",
            "createContextualFragment",
            "eval(",
            "new Function",
        ] {
            assert!(!SCRIPT.contains(sink), "app.js uses {sink}");
        }
        assert!(SCRIPT.contains("textContent") && SCRIPT.contains("passage("));
    }
}
