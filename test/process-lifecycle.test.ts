/**
 * Stopping the controller the ways the README starts it: `npm start` and `npx active-call` (offline, the local
 * bin), and SIGTERM or SIGINT sent to that npm process only (as `kill <pid>`, systemd or a container runtime
 * do). Each stop must drain (no new call; a live call may go on up to `shutdown_grace_ms`), exit 0, and leave
 * no process behind. Needs `npm run build` first (npm test does it).
 */
import { existsSync, readFileSync } from "node:fs";
import { afterAll, describe, expect, it } from "vitest";
import { CallClient } from "../src/client/index.js";
import { alive, npxCache, processesWith, removeTmp, ROOT, startController, tmp, waitGone, within, writeConf, type Started } from "./controller-process.js";

afterAll(removeTmp);

type Launcher = "npm start" | "npx";

async function launch(how: Launcher, dir: string, graceMs: number, npmArgs: string[] = []): Promise<Started> {
  const conf = writeConf(dir, `[calls]\nshutdown_grace_ms = ${graceMs}\n`);
  const args = ["--conf", conf, "--http", "127.0.0.1:0", "--log-format", "json"];
  if (how === "npm start") return startController("npm", ["start", ...npmArgs, "--", ...args], { cwd: ROOT });
  // `npx active-call` in the project folder; --offline: nothing is fetched, the bin is the project's own.
  return startController("npx", [...npmArgs, "--offline", "active-call", ...args], { cwd: ROOT, env: { npm_config_cache: npxCache() } });
}

/** After the stop: the wrapper's exit code, and no process of this run left (by pid and by the unique folder). */
async function expectAllGone(s: Started, dir: string): Promise<number | string> {
  const code = await within(s.exited, 8000, "npm still running after 8 s");
  expect(await waitGone(s.listening.pid, 3000), `node pid ${s.listening.pid} survived:\n${s.output()}`).toBe(true);
  const left = processesWith(dir);
  expect(left.map((pid) => `${pid}: ${readFileSync(`/proc/${pid}/cmdline`, "utf8").replace(/\0/g, " ")}`)).toEqual([]);
  return code;
}

const linux = process.platform === "linux"; // the checks read /proc

describe.skipIf(!linux).each<Launcher>(["npm start", "npx"])("%s", (how) => {
  it("SIGTERM to npm with a live call: no new call is taken, the live one may finish, then exit 0, nothing left", async () => {
    const dir = tmp();
    const s = await launch(how, dir, 8000);
    expect(s.child.pid).not.toBe(s.listening.pid); // npm is not the controller itself
    const client = await CallClient.connect(`ws://${s.listening.addr}`);
    client.invite();
    await client.waitFor("answer");

    s.child.kill("SIGTERM");
    await s.waitForLog("shutting down");
    // Draining: the call goes on, a new one is refused (1013 = try again later), the process is up.
    const late = await CallClient.connect(`ws://${s.listening.addr}`);
    // The call is registered when the socket opens, so it may be closed before the invite goes.
    try {
      late.invite();
    } catch {
      // closed already
    }
    expect((await late.closed).code).toBe(1013);
    expect(client.events.some((e) => e.event === "hangup"), s.output()).toBe(false);
    expect(alive(s.listening.pid)).toBe(true);

    // The caller ends it within the grace: it is not cut with `shutdown`.
    client.hangup();
    expect(await client.waitFor("hangup")).toMatchObject({ reason: "client" });
    expect(await expectAllGone(s, dir)).toBe(0);
  }, 20_000);

  it("SIGINT to npm with a call that outlives shutdown_grace_ms: it ends with reason shutdown, exit 0, nothing left", async () => {
    const dir = tmp();
    const s = await launch(how, dir, 1500);
    const client = await CallClient.connect(`ws://${s.listening.addr}`);
    client.invite();
    await client.waitFor("answer");
    const t0 = Date.now();
    s.child.kill("SIGINT");
    expect(await client.waitFor("hangup")).toMatchObject({ reason: "shutdown", initiator: "system" });
    expect(Date.now() - t0).toBeGreaterThanOrEqual(1400); // the grace of 1500 ms, less timer slack
    expect(await expectAllGone(s, dir)).toBe(0);
  }, 20_000);

  it("SIGTERM to npm with no call: exits 0 at once", async () => {
    const dir = tmp();
    const s = await launch(how, dir, 8000);
    const t0 = Date.now();
    s.child.kill("SIGTERM");
    expect(await expectAllGone(s, dir)).toBe(0);
    expect(Date.now() - t0).toBeLessThan(3000);
  }, 20_000);
});

describe.skipIf(!linux || !existsSync("/bin/dash"))("a shell between npm and the controller that does not pass signals on", () => {
  // dash (Debian's /bin/sh) forks the command instead of exec-ing it and dies of the signal npm forwards (npm then
  // exits 143). The controller notices that its parent went away and stops the same way.
  it("the controller still drains and exits; nothing is left", async () => {
    const dir = tmp();
    const s = await launch("npm start", dir, 1000, ["--script-shell", "/bin/dash"]);
    const client = await CallClient.connect(`ws://${s.listening.addr}`);
    client.invite();
    await client.waitFor("answer");
    s.child.kill("SIGTERM");
    expect(await s.waitForLog("shutting down")).toMatchObject({ signal: "parent exited" });
    expect(await client.waitFor("hangup")).toMatchObject({ reason: "shutdown" });
    await expectAllGone(s, dir); // npm's own code is the shell's: 143
  }, 20_000);
});
