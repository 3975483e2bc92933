#!/usr/bin/env node
// Entry point of the `active-call` command: runs the compiled composition root.
// `npm ci` builds dist/ (the "prepare" script); run `npm run build` after editing src/.
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";

const main = new URL("../dist/main.js", import.meta.url);
if (!existsSync(fileURLToPath(main))) {
  process.stderr.write("active-call: dist/ is missing; run `npm run build` (npm ci does it) first\n");
  process.exit(2);
}
await import(main.href);
