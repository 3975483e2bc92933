/**
 * The web console at `/` (`[http] console`): web/index.html with web/console.css and web/console.js inlined,
 * so the page is one response (see web-page.ts).
 */
import type { FastifyInstance } from "fastify";
import { WEB_DIR, inlinePage, registerPage } from "./web-page.js";

export function registerWebConsole(app: FastifyInstance): void {
  const file = (name: string): URL => new URL(name, WEB_DIR);
  registerPage(app, "/", () => inlinePage(file("index.html"), { "console.css": file("console.css"), "console.js": file("console.js") }));
}
