/**
 * One-response web pages: an HTML file whose `<link rel="stylesheet" href>` and `<script src>` tags are
 * replaced by the files' contents. With an API token set the browser opens `/page?token=…` and nothing else
 * needs it (a `<script src>` could not carry the token). Only fixed files are read: no request path reaches disk.
 */
import { readFile } from "node:fs/promises";
import type { FastifyInstance } from "fastify";

/** web/ of the package: dist/http/ -> ../../web, and src/http/ (tests through tsx) -> ../../web. */
export const WEB_DIR = new URL("../../web/", import.meta.url);
/** Built browser bundles (web/build-phone.mjs): dist/web/ from both dist/http/ and src/http/. */
export const WEB_BUILD_DIR = new URL("../../dist/web/", import.meta.url);

/** `html` with the named stylesheets and scripts inlined; a tag whose file is not in `assets` stays as it is. */
export async function inlinePage(html: URL, assets: Record<string, URL>): Promise<string> {
  const names = Object.keys(assets);
  const texts = await Promise.all([readFile(html, "utf8"), ...names.map((n) => readFile(assets[n] as URL, "utf8"))]);
  const content = new Map(names.map((n, i) => [n, texts[i + 1] as string]));
  // Replacer functions: `$` in the inlined code must not be read as a replacement pattern.
  return (texts[0] as string)
    .replace(/<link rel="stylesheet" href="([^"]+)">/g, (tag, name: string) => {
      const css = content.get(name);
      return css === undefined ? tag : `<style>\n${css}</style>`;
    })
    .replace(/<script( type="module")? src="([^"]+)"><\/script>/g, (tag, type: string | undefined, name: string) => {
      const js = content.get(name);
      return js === undefined ? tag : `<script${type ?? ""}>\n${js.replace(/<\/script/gi, "<\\/script")}</script>`;
    });
}

/** Thrown by a page's build when the page cannot exist here (e.g. not built): a 503 with the message, not a 500. */
export class PageUnavailable extends Error {}

/** Serves `build()` at `path`, built on first request; a failed build is retried on the next one. */
export function registerPage(app: FastifyInstance, path: string, build: () => Promise<string>): void {
  let page: Promise<string> | undefined;
  app.get(path, { schema: { hide: true } }, async (_req, reply) => {
    page ??= build();
    try {
      return reply.type("text/html; charset=utf-8").header("Cache-Control", "no-cache").send(await page);
    } catch (err) {
      page = undefined;
      if (err instanceof PageUnavailable) return reply.code(503).type("text/plain; charset=utf-8").send(`${err.message}\n`);
      throw err;
    }
  });
}
