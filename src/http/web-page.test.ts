import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import Fastify from "fastify";
import { afterEach, describe, expect, it } from "vitest";
import { PageUnavailable, inlinePage, registerPage } from "./web-page.js";

const dirs: string[] = [];
afterEach(async () => {
  for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true });
});

async function files(entries: Record<string, string>): Promise<Record<string, URL>> {
  const dir = await mkdtemp(join(tmpdir(), "web-page-"));
  dirs.push(dir);
  const out: Record<string, URL> = {};
  for (const [name, text] of Object.entries(entries)) {
    await writeFile(join(dir, name), text);
    out[name] = pathToFileURL(join(dir, name));
  }
  return out;
}

describe("inlinePage", () => {
  it("inlines the named stylesheets and scripts, keeps `$` patterns and other tags, and cannot be closed early by </script>", async () => {
    const f = await files({
      "page.html": '<link rel="stylesheet" href="a.css">\n<script src="b.js"></script>\n<script type="module" src="c.js"></script>\n<script src="other.js"></script>',
      "a.css": "a { color: red }",
      "b.js": 'const s = "$&$1"; const t = "</script>";',
      "c.js": "export {};",
    });
    const html = await inlinePage(f["page.html"] as URL, { "a.css": f["a.css"] as URL, "b.js": f["b.js"] as URL, "c.js": f["c.js"] as URL });
    expect(html).toBe('<style>\na { color: red }</style>\n<script>\nconst s = "$&$1"; const t = "<\\/script>";</script>\n<script type="module">\nexport {};</script>\n<script src="other.js"></script>');
  });
});

describe("registerPage", () => {
  it("answers 503 with the reason when the page cannot be built, and builds again on the next request", async () => {
    const app = Fastify();
    let builds = 0;
    registerPage(app, "/p", async () => {
      builds++;
      if (builds === 1) throw new PageUnavailable("the page is not built: run npm run build");
      return "<p>ok</p>";
    });
    const first = await app.inject({ url: "/p" });
    expect(first.statusCode).toBe(503);
    expect(first.body).toBe("the page is not built: run npm run build\n");
    const second = await app.inject({ url: "/p" });
    expect(second.statusCode).toBe(200);
    expect(second.headers["content-type"]).toBe("text/html; charset=utf-8");
    expect(second.body).toBe("<p>ok</p>");
    await app.inject({ url: "/p" });
    expect(builds).toBe(2);
    await app.close();
  });
});
