/**
 * The lab softphone at `/phone` (`[http] console`): web/phone.html with console.css, phone.css and the JsSIP
 * bundle that `npm run build` writes to dist/web/phone.js, inlined into one response (see web-page.ts).
 */
import { access } from "node:fs/promises";
import type { FastifyInstance } from "fastify";
import { PageUnavailable, WEB_BUILD_DIR, WEB_DIR, inlinePage, registerPage } from "./web-page.js";

export function registerWebPhone(app: FastifyInstance): void {
  const file = (name: string): URL => new URL(name, WEB_DIR);
  const bundle = new URL("phone.js", WEB_BUILD_DIR);
  registerPage(app, "/phone", async () => {
    try {
      await access(bundle);
    } catch {
      throw new PageUnavailable(`the phone page is not built (${bundle.pathname} is missing): run npm run build`);
    }
    return inlinePage(file("phone.html"), { "console.css": file("console.css"), "phone.css": file("phone.css"), "phone.js": bundle });
  });
}
