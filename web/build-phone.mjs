// Bundles the /phone page's script (web/phone.js and JsSIP) into dist/web/phone.js, one browser file the
// controller inlines into the page. Part of `npm run build`.
import { join } from "node:path";
import { build } from "esbuild";

await build({
  entryPoints: [join(import.meta.dirname, "phone.js")],
  outfile: join(import.meta.dirname, "..", "dist", "web", "phone.js"),
  bundle: true,
  format: "iife",
  platform: "browser",
  target: ["chrome100", "firefox100", "safari15"],
  minify: true,
  // JsSIP's and its dependencies' licence notices stay in the bundle.
  legalComments: "eof",
  logLevel: "warning",
});
