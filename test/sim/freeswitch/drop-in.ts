/**
 * The stock FreeSWITCH 1.10.12 configuration (shared/fixtures/freeswitch/vanilla-conf) with the project's
 * freeswitch/dialplan files copied where the README says (dialplan/*.xml, dialplan/default/*.xml,
 * dialplan/public/*.xml), loaded the way FreeSWITCH does (./dialplan.ts). Tests route calls through it to learn
 * what the switch hands the controller: the final application and the channel variables at that point.
 */
import { cpSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { sharedFixtures } from "../../shared-fixtures.js";
import { loadDialplan, route, type Dialplan, type RouteInput } from "./dialplan.js";

const FS_DIR = fileURLToPath(new URL("../../../freeswitch", import.meta.url));
/** FreeSWITCH's own conf_dir (a package install), so that routes from different temp dirs compare equal. */
const CORE = { globals: { conf_dir: "/etc/freeswitch" } };

function filesUnder(dir: string): string[] {
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile())
    .map((e) => relative(FS_DIR, join(e.parentPath, e.name)));
}

const tempDirs: string[] = [];
process.once("exit", () => {
  for (const d of tempDirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

/** A temp copy of vanilla-conf, with the drop-in's dialplan files in it when `dropIn`; removed at exit. */
export function stockConfDir(opts: { dropIn: boolean; defaultPassword?: string }): string {
  const dir = mkdtempSync(join(tmpdir(), "fs-conf-"));
  tempDirs.push(dir);
  cpSync(sharedFixtures("freeswitch", "vanilla-conf"), dir, { recursive: true });
  if (opts.dropIn) {
    for (const f of filesUnder(join(FS_DIR, "dialplan"))) {
      mkdirSync(dirname(join(dir, f)), { recursive: true });
      cpSync(join(FS_DIR, f), join(dir, f));
    }
  }
  if (opts.defaultPassword !== undefined) {
    const vars = join(dir, "vars.xml");
    writeFileSync(vars, readFileSync(vars, "utf8").replace("default_password=1234", `default_password=${opts.defaultPassword}`));
  }
  return dir;
}

const loaded = new Map<string, Dialplan>();

/** The stock dialplan, with or without the drop-in, loaded once per variant. */
export function stockDialplan(opts: { dropIn: boolean; defaultPassword?: string }): Dialplan {
  const key = `${opts.dropIn}:${opts.defaultPassword ?? ""}`;
  let dp = loaded.get(key);
  if (!dp) {
    dp = loadDialplan(stockConfDir(opts), CORE);
    loaded.set(key, dp);
  }
  return dp;
}

export interface DropInRoute {
  /** The application that took the call (park, socket …). */
  app: string;
  data: string;
  /** destination_number when it was taken (the DID is kept across the transfer into active_call). */
  destination: string;
  /** Channel variables the dialplan set (what the controller reads from the channel). */
  variables: Record<string, string>;
}

/** Routes a call through the stock configuration with the drop-in, as an installed switch would (default_password changed). */
export function routeThroughDropIn(input: RouteInput): DropInRoute {
  const r = route(stockDialplan({ dropIn: true, defaultPassword: "not-1234" }), input);
  if (!r.final) throw new Error(`${input.context}/${input.destination} was hung up by the dialplan (${r.hangupCause ?? "?"})`);
  return {
    app: r.final.app,
    data: r.final.data,
    destination: r.trace[r.trace.length - 1]?.destination ?? input.destination,
    variables: r.variables,
  };
}
