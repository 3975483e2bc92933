/**
 * The web console at `/` (`[http] console`): web/index.html with web/console.css and web/console.js inlined,
 * so the page is one response. With an API token set, the browser opens `/?token=…` and nothing else needs it
 * (a `<script src>` could not carry the token). Only these fixed files are read: no request path reaches disk.
 */
import { readFile } from "node:fs/promises";
import type { FastifyInstance } from "fastify";

/** web/ of the package: dist/http/ -> ../../web, and src/http/ (tests through tsx) -> ../../web. */
const WEB_DIR = new URL("../../web/", import.meta.url);

async function buildPage(): Promise<string> {
  const [html, css, js] = await Promise.all(["index.html", "console.css", "console.js"].map((f) => readFile(new URL(f, WEB_DIR), "utf8")));
  // Replacer functions: `$` in the inlined code must not be read as a replacement pattern.
  return (html as string)
    .replace(/<link rel="stylesheet" href="console\.css">/, () => `<style>\n${css as string}</style>`)
    .replace(/<script type="module" src="console\.js"><\/script>/, () => `<script type="module">\n${(js as string).replace(/<\/script/gi, "<\\/script")}</script>`);
}

export function registerWebConsole(app: FastifyInstance): void {
  let page: Promise<string> | undefined;
  app.get("/", { schema: { hide: true } }, async (_req, reply) => {
    page ??= buildPage();
    try {
      return reply.type("text/html; charset=utf-8").header("Cache-Control", "no-cache").send(await page);
    } catch (err) {
      page = undefined;
      throw err;
    }
  });
}
