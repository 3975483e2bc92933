/**
 * `GET /docs`: a small self-contained page (no CDN, no external assets: the controller often runs offline) that
 * fetches `/openapi.json` and lists every path and method with its summary, parameters and schemas.
 */
import type { FastifyInstance } from "fastify";

export const DOCS_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>active-call API</title>
<style>
  :root { color-scheme: light dark; --fg:#1b1f24; --bg:#fff; --muted:#667; --line:#d8dde3; --code:#f3f5f7; }
  @media (prefers-color-scheme: dark) { :root { --fg:#e6e6e6; --bg:#15171a; --muted:#9aa; --line:#333a42; --code:#1f2329; } }
  body { font: 15px/1.5 system-ui, sans-serif; color: var(--fg); background: var(--bg); margin: 0 auto; max-width: 60rem; padding: 1rem 1.5rem 4rem; }
  h1 { margin-bottom: .2rem; } .muted { color: var(--muted); }
  nav a { margin-right: .6rem; white-space: nowrap; }
  section.op { border: 1px solid var(--line); border-radius: 6px; margin: 1rem 0; padding: .6rem 1rem; }
  .method { display: inline-block; min-width: 4.5rem; font-weight: 700; font-family: ui-monospace, monospace; }
  .GET { color: #1a7f37; } .POST { color: #0969da; } .PUT { color: #9a6700; } .DELETE { color: #cf222e; } .WS { color: #8250df; }
  code, pre { font-family: ui-monospace, monospace; font-size: 13px; background: var(--code); border-radius: 4px; }
  code { padding: 0 .25rem; } pre { padding: .5rem .75rem; overflow-x: auto; }
  table { border-collapse: collapse; margin: .3rem 0; } td, th { border-bottom: 1px solid var(--line); padding: .2rem .6rem; text-align: left; vertical-align: top; }
  h3 { font-size: 1rem; margin: .6rem 0 .2rem; } .tag { font-size: 12px; border: 1px solid var(--line); border-radius: 9px; padding: 0 .4rem; margin-left: .4rem; }
</style>
</head>
<body>
<h1 id="title">active-call API</h1>
<p class="muted" id="subtitle">Loading <code>/openapi.json</code>…</p>
<nav id="nav"></nav>
<main id="ops"></main>
<script>
"use strict";
const esc = (s) => String(s).replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);
const el = (html) => { const t = document.createElement("template"); t.innerHTML = html.trim(); return t.content.firstChild; };
let doc;
function deref(schema) {
  let s = schema, guard = 0;
  while (s && s.$ref && guard++ < 20) {
    const parts = s.$ref.replace(/^#\\//, "").split("/");
    s = parts.reduce((o, k) => (o ? o[k] : undefined), doc);
  }
  return s || {};
}
function typeOf(s) {
  s = deref(s);
  if (s.enum) return s.enum.map((v) => JSON.stringify(v)).join(" | ");
  if (s.const !== undefined) return JSON.stringify(s.const);
  for (const k of ["anyOf", "oneOf"]) if (s[k]) return s[k].map(typeOf).join(" | ");
  if (s.allOf) return s.allOf.map(typeOf).join(" & ");
  if (s.type === "array") return typeOf(s.items || {}) + "[]";
  if (Array.isArray(s.type)) return s.type.join(" | ");
  return s.type || "any";
}
function fields(schema, depth) {
  const s = deref(schema);
  if (depth > 6) return "";
  const target = s.type === "array" ? deref(s.items || {}) : s;
  const props = target.properties;
  if (!props) {
    const extra = target.additionalProperties && typeof target.additionalProperties === "object" ? " of " + esc(typeOf(target.additionalProperties)) : "";
    return "<code>" + esc(typeOf(s)) + "</code>" + extra + (s.description ? " — " + esc(s.description) : "");
  }
  const req = new Set(target.required || []);
  let rows = "";
  for (const [name, p] of Object.entries(props)) {
    const d = deref(p);
    const constraints = ["minimum", "maximum", "minLength", "maxLength", "pattern", "default", "format"].filter((k) => d[k] !== undefined && !(typeof d[k] === "number" && Math.abs(d[k]) >= 9007199254740991)).map((k) => k + ": " + esc(JSON.stringify(d[k]))).join(", ");
    const nested = (d.properties || (d.type === "array" && deref(d.items || {}).properties)) ? fields(d, depth + 1) : "";
    rows += "<tr><td><code>" + esc(name) + "</code>" + (req.has(name) ? "" : "?") + "</td><td><code>" + esc(typeOf(d)) + "</code></td><td>" +
      esc(d.description || "") + (constraints ? ' <span class="muted">' + constraints + "</span>" : "") + nested + "</td></tr>";
  }
  return (s.type === "array" ? "array of:" : "") + "<table><tr><th>field</th><th>type</th><th>notes</th></tr>" + rows + "</table>";
}
function content(c) {
  let out = "";
  for (const [type, media] of Object.entries(c || {})) out += '<div class="muted">' + esc(type) + "</div>" + fields(media.schema || {}, 0);
  return out;
}
function render() {
  document.getElementById("title").textContent = doc.info.title + " " + doc.info.version;
  document.getElementById("subtitle").innerHTML = esc(doc.info.description || "") + ' <span class="muted">(OpenAPI ' + esc(doc.openapi) + ', <a href="' + esc(specUrl) + '">openapi.json</a>)</span>';
  const nav = document.getElementById("nav"), ops = document.getElementById("ops");
  let n = 0;
  for (const path of Object.keys(doc.paths || {}).sort()) {
    for (const [method, op] of Object.entries(doc.paths[path])) {
      if (!["get", "put", "post", "delete", "patch", "head", "options"].includes(method)) continue;
      const id = "op" + n++;
      const ws = op["x-websocket"] === true;
      const label = ws ? "WS" : method.toUpperCase();
      nav.appendChild(el('<a href="#' + id + '"><span class="method ' + label + '" style="min-width:0">' + label + "</span> " + esc(path) + "</a>"));
      let html = '<section class="op" id="' + id + '"><div><span class="method ' + label + '">' + label + "</span> <code>" + esc(path) + "</code>" +
        (op.tags || []).map((t) => '<span class="tag">' + esc(t) + "</span>").join("") + "</div>";
      if (op.summary) html += "<p>" + esc(op.summary) + "</p>";
      if (op.description) html += '<p class="muted">' + esc(op.description) + "</p>";
      if (ws) html += '<p class="muted">WebSocket endpoint: open it with a GET Upgrade request (<code>x-websocket</code>).</p>';
      const params = op.parameters || [];
      if (params.length) {
        html += "<h3>Parameters</h3><table><tr><th>name</th><th>in</th><th>type</th><th>notes</th></tr>";
        for (const p0 of params) {
          const p = deref(p0);
          html += "<tr><td><code>" + esc(p.name) + "</code>" + (p.required ? "" : "?") + "</td><td>" + esc(p.in) + "</td><td><code>" + esc(typeOf(p.schema || {})) + "</code></td><td>" + esc(p.description || (p.schema && p.schema.description) || "") + "</td></tr>";
        }
        html += "</table>";
      }
      if (op.requestBody) html += "<h3>Request body</h3>" + content(deref(op.requestBody).content);
      const responses = op.responses || {};
      if (Object.keys(responses).length) {
        html += "<h3>Responses</h3>";
        for (const [code, r0] of Object.entries(responses)) {
          const r = deref(r0);
          html += "<div><b>" + esc(code) + "</b> " + esc(r.description || "") + "</div>" + content(r.content);
        }
      }
      ops.appendChild(el(html + "</section>"));
    }
  }
}
const token = new URLSearchParams(location.search).get("token");
const specUrl = "openapi.json" + (token ? "?token=" + encodeURIComponent(token) : "");
fetch(specUrl, { headers: { accept: "application/json" } })
  .then((r) => { if (!r.ok) throw new Error("HTTP " + r.status); return r.json(); })
  .then((d) => { doc = d; render(); })
  .catch((e) => { document.getElementById("subtitle").textContent = "Could not load openapi.json: " + e.message + (token ? "" : " (add ?token=… if the API needs one)"); });
</script>
</body>
</html>
`;

/** `GET /docs`: the page above. */
export function registerDocsRoute(app: FastifyInstance): void {
  app.get("/docs", { schema: { summary: "Readable API documentation (this page renders /openapi.json)", tags: ["meta"] } }, async (_request, reply) => {
    void reply.type("text/html; charset=utf-8").header("cache-control", "no-cache");
    return DOCS_HTML;
  });
}
