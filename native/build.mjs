// Builds the TinySilero native addon (native/build/Release/tinysilero.node) with the node-gyp that npm ships.
// Run by the root package's "install" script (npm never gates the root project's own scripts) and by
// `npm run build:native`. Offline by design: headers come from --nodedir (npm_config_nodedir, else the prefix of
// the running node, e.g. /usr/include/node), never from a download.
// A failed build is not fatal: TinySilero then runs its pure TypeScript forward pass (same results, slower) and
// logs that once. Set ACTIVE_CALL_NATIVE_STRICT=1 to make a failed build fail the install instead.
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const env = process.env;
const strict = env.ACTIVE_CALL_NATIVE_STRICT === "1";

function findNodeGyp() {
  const candidates = [];
  if (env.npm_config_node_gyp) candidates.push(env.npm_config_node_gyp);
  if (env.npm_execpath) candidates.push(join(dirname(env.npm_execpath), "..", "node_modules", "node-gyp", "bin", "node-gyp.js"));
  const prefix = resolve(dirname(process.execPath), "..");
  candidates.push(join(prefix, "lib", "node_modules", "npm", "node_modules", "node-gyp", "bin", "node-gyp.js"));
  candidates.push(join(here, "..", "node_modules", "node-gyp", "bin", "node-gyp.js"));
  return candidates.find((p) => existsSync(p));
}

function findNodeDir() {
  const candidates = [env.npm_config_nodedir, resolve(dirname(process.execPath), "..")].filter(Boolean);
  return candidates.find((d) => existsSync(join(d, "include", "node", "node_api.h")));
}

function giveUp(message) {
  process.stderr.write(`tinysilero: native addon not built (${message}); the TypeScript forward pass will be used\n`);
  process.exit(strict ? 1 : 0);
}

const gyp = findNodeGyp();
if (!gyp) giveUp("node-gyp not found: it ships with npm");
const nodedir = findNodeDir();
if (!nodedir) giveUp("Node.js headers not found: set npm_config_nodedir to the folder that holds include/node");

const args = [gyp, "rebuild", `--nodedir=${nodedir}`, "--release"];
const result = spawnSync(process.execPath, args, { cwd: here, stdio: ["ignore", "inherit", "inherit"] });
if (result.error) giveUp(result.error.message);
if (result.status !== 0) giveUp(`node-gyp exited with ${result.status}`);
process.stdout.write(`tinysilero: native addon built (${join(here, "build", "Release", "tinysilero.node")})\n`);
