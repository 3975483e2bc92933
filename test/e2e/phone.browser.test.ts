/**
 * The /phone softphone in a real browser: Debian's Chromium (headless, through playwright-core) opens the page
 * served by the real controller and registers, calls, sends DTMF, mutes and hangs up against a fake PBX that
 * speaks SIP over secure WebSocket with the lab's own certificate (lab/make-certs.sh) and checks the digest for
 * real (test/sim/sip/sip-ws-peer.ts). Chromium's fake capture device is the microphone.
 *
 * Skipped when /usr/bin/chromium is missing, except in CI (CI=true), where a missing browser fails the run.
 * UPDATE_SCREENSHOT=1 rewrites docs/phone.png (the README's picture) from the call in progress.
 */
import { execFile } from "node:child_process";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { chromium, type Page } from "playwright-core";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { SipWsPeer } from "../sim/sip/sip-ws-peer.js";
import { CHROMIUM, CHROMIUM_ARGS, haveChromium } from "./chromium.js";
import { startServer, type TestServer } from "./harness.js";


const PASSWORD = "lab-secret-1";
const WAIT = { timeout: 20_000, polling: 100 } as const;

const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()!().catch(() => undefined);
});

let certs: { cert: string; key: string; dir: string };
let server: TestServer;
beforeAll(async () => {
  const dir = await mkdtemp(join(tmpdir(), "active-call-phone-"));
  await promisify(execFile)("sh", [new URL("../../lab/make-certs.sh", import.meta.url).pathname], { env: { ...process.env, CERTS_DIR: dir, LAB_HOST: "127.0.0.1" } });
  certs = { dir, cert: await readFile(join(dir, "lab.crt"), "utf8"), key: await readFile(join(dir, "lab.key"), "utf8") };
  server = await startServer();
});
afterAll(async () => {
  await server?.stop();
  if (certs) await rm(certs.dir, { recursive: true, force: true });
});

async function peer(): Promise<{ peer: SipWsPeer; url: string }> {
  const p = new SipWsPeer({ cert: certs.cert, key: certs.key, users: { "1000": PASSWORD }, numbers: ["7700", "7701"] });
  const port = await p.start();
  cleanups.push(() => p.stop());
  return { peer: p, url: `wss://127.0.0.1:${port}` };
}

/** A TCP port with nothing listening on it. */
async function closedPort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, "127.0.0.1", r));
  const port = (s.address() as { port: number }).port;
  await new Promise((r) => s.close(r));
  return port;
}

async function openPhone(query = ""): Promise<{ page: Page; errors: string[] }> {
  const userDataDir = await mkdtemp(join(tmpdir(), "active-call-browser-"));
  cleanups.push(() => rm(userDataDir, { recursive: true, force: true }));
  const context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: CHROMIUM,
    headless: true,
    viewport: { width: 1100, height: 760 },
    // The lab's certificate is self-signed: --ignore-certificate-errors stands in for the user accepting it once.
    args: [...CHROMIUM_ARGS, "--ignore-certificate-errors"],
  });
  cleanups.push(() => context.close());
  const page = context.pages()[0] ?? (await context.newPage());
  const errors: string[] = [];
  page.on("pageerror", (err) => errors.push(`pageerror: ${err.message}`));
  await page.goto(`${server.baseUrl}/phone${query}`);
  return { page, errors };
}

const text = (page: Page, id: string): Promise<string> => page.locator(`#${id}`).innerText();
const waitText = (page: Page, id: string, re: RegExp): Promise<unknown> =>
  page.waitForFunction(`${re.toString()}.test(document.getElementById(${JSON.stringify(id)}).textContent)`, undefined, WAIT);

async function register(page: Page, url: string, password: string): Promise<void> {
  await page.locator("#server").fill(url);
  await page.locator("#password").fill(password);
  await page.getByRole("button", { name: "Register", exact: true }).click();
}

describe.skipIf(!haveChromium)("/phone in Chromium", () => {
  it("the presets: FreeSWITCH wss://<host>:7443 as 1000 dialling 7700, Asterisk wss://<host>:8089/ws as 7001 dialling 9000", async () => {
    const { page, errors } = await openPhone();
    expect(await page.locator("#pbx").inputValue()).toBe("freeswitch");
    expect(await page.locator("#server").inputValue()).toBe("wss://127.0.0.1:7443");
    expect(await page.locator("#user").inputValue()).toBe("1000");
    expect(await page.locator("#domain").inputValue()).toBe("127.0.0.1");
    expect(await page.locator("#target").inputValue()).toBe("7700");
    expect(await page.locator("#cert-link").getAttribute("href")).toBe("https://127.0.0.1:7443/");
    await page.locator("#pbx").selectOption("asterisk");
    expect(await page.locator("#server").inputValue()).toBe("wss://127.0.0.1:8089/ws");
    expect(await page.locator("#user").inputValue()).toBe("7001");
    expect(await page.locator("#target").inputValue()).toBe("9000");
    expect(await text(page, "extension-hint")).toContain("9001");
    expect(await page.locator("#cert-link").getAttribute("href")).toBe("https://127.0.0.1:8089/ws");
    // Nothing can be called before registering.
    expect(await page.getByRole("button", { name: "Call", exact: true }).isDisabled()).toBe(true);
    expect(errors).toEqual([]);
  }, 30_000);

  it("registers through the digest challenge, calls 7700 (407, 100/180/200, ACK), sends DTMF 5 as INFO, mutes, hangs up with BYE", async () => {
    const { peer: pbx, url } = await peer();
    const { page, errors } = await openPhone();
    await register(page, url, PASSWORD);
    await waitText(page, "reg-state", /^registered as 1000@127\.0\.0\.1$/);
    const regs = pbx.of("REGISTER");
    expect(regs[0]?.headers["authorization"]).toBeUndefined();
    expect(regs[1]?.headers["authorization"]).toMatch(/^Digest .*username="1000"/);
    expect(pbx.auth).toEqual([{ user: "1000", method: "REGISTER", ok: true }]);

    await page.getByRole("button", { name: "Call", exact: true }).click();
    await waitText(page, "call-state", /^in call with 7700$/);
    const invites = pbx.of("INVITE");
    expect(invites).toHaveLength(2);
    expect(invites[0]?.uri).toBe("sip:7700@127.0.0.1");
    expect(invites[1]?.headers["proxy-authorization"]).toMatch(/username="1000"/);
    expect(pbx.auth.at(-1)).toEqual({ user: "1000", method: "INVITE", ok: true });
    const offer = invites[1]?.body ?? "";
    expect(invites[1]?.headers["content-type"]).toBe("application/sdp");
    expect(offer).toMatch(/^m=audio \d+ UDP\/TLS\/RTP\/SAVPF /m);
    expect(offer).toMatch(/^a=fingerprint:sha-256 ([0-9A-F]{2}:){31}[0-9A-F]{2}\r?$/m);
    expect(offer).toMatch(/^a=ice-ufrag:\S+/m);
    expect(offer).toMatch(/^a=candidate:/m);
    expect(offer).toMatch(/^a=setup:actpass/m);
    expect(offer).not.toMatch(/^m=video/m);
    // The answer's audio track is what the page plays: the <audio> element holds it.
    expect(await page.evaluate<number>(`document.getElementById("remote").srcObject?.getAudioTracks().length ?? 0`)).toBe(1);
    // One ACK for the 407 (same transaction), one for the 200.
    await expect.poll(() => pbx.of("ACK").length, WAIT).toBe(2);
    if (process.env.UPDATE_SCREENSHOT === "1") await page.screenshot({ path: new URL("../../docs/phone.png", import.meta.url).pathname });

    await page.getByRole("button", { name: "5", exact: true }).click();
    await expect.poll(() => pbx.of("INFO").length, WAIT).toBe(1);
    const info = pbx.of("INFO")[0];
    expect(info?.headers["content-type"]).toBe("application/dtmf-relay");
    expect(info?.body).toMatch(/^Signal=5\r?\nDuration=160/);

    const micEnabled = (): Promise<boolean[]> =>
      page.evaluate<boolean[]>("window.activeCallPhone.session.connection.getSenders().filter((s) => s.track).map((s) => s.track.enabled)");
    expect(await micEnabled()).toEqual([true]);
    await page.getByRole("button", { name: "Mute", exact: true }).click();
    expect(await micEnabled()).toEqual([false]);
    expect(await page.locator("#mute").getAttribute("aria-pressed")).toBe("true");
    await page.getByRole("button", { name: "Unmute" }).click();
    expect(await micEnabled()).toEqual([true]);

    await page.getByRole("button", { name: "Hang up" }).click();
    await expect.poll(() => pbx.of("BYE").length, WAIT).toBe(1);
    await waitText(page, "call-state", /^ended \(you hung up\)$/);
    expect(pbx.of("BYE")[0]?.headers["call-id"]).toBe(invites[1]?.headers["call-id"]);
    expect(await page.getByRole("button", { name: "Call", exact: true }).isDisabled()).toBe(false);
    expect(errors).toEqual([]);
  }, 60_000);

  it("a number the PBX does not route: the call fails with 404, the page says so and can call again", async () => {
    const { peer: pbx, url } = await peer();
    const { page, errors } = await openPhone();
    await register(page, url, PASSWORD);
    await waitText(page, "reg-state", /^registered as /);
    await page.locator("#target").fill("7999");
    await page.getByRole("button", { name: "Call", exact: true }).click();
    await waitText(page, "call-state", /^failed \(/);
    expect(pbx.of("INVITE").at(-1)?.uri).toBe("sip:7999@127.0.0.1");
    expect(await text(page, "error")).toMatch(/^Call failed: .*\(404 Not Found\)$/);
    expect(await page.getByRole("button", { name: "Call", exact: true }).isDisabled()).toBe(false);
    expect(await page.getByRole("button", { name: "Hang up" }).isDisabled()).toBe(true);
    expect(errors).toEqual([]);
  }, 30_000);

  it("a wrong password: the digest fails (403) and the page says to check the password", async () => {
    const { peer: pbx, url } = await peer();
    const { page } = await openPhone();
    await register(page, url, "not-the-password");
    await waitText(page, "reg-state", /^registration failed$/);
    expect(pbx.auth).toEqual([{ user: "1000", method: "REGISTER", ok: false }]);
    const error = await text(page, "error");
    expect(error).toContain("403 Forbidden");
    expect(error).toContain("check the user and the password");
    expect(await page.getByRole("button", { name: "Call", exact: true }).isDisabled()).toBe(true);
  }, 30_000);

  it("no PBX at the address: the page names it and says how to accept the certificate", async () => {
    const port = await closedPort();
    const { page } = await openPhone();
    await register(page, `wss://127.0.0.1:${port}`, PASSWORD);
    await waitText(page, "error", /Cannot connect/);
    const error = await text(page, "error");
    expect(error).toContain(`wss://127.0.0.1:${port}`);
    expect(error).toContain(`open https://127.0.0.1:${port}/ once, accept it`);
    expect(await page.locator("#cert-link").getAttribute("href")).toBe(`https://127.0.0.1:${port}/`);
  }, 30_000);

  it("bad input is refused before anything is sent, naming the field", async () => {
    const { page } = await openPhone();
    await page.locator("#server").fill("https://127.0.0.1:7443");
    await page.getByRole("button", { name: "Register", exact: true }).click();
    expect(await text(page, "error")).toMatch(/^WebSocket: give a ws:\/\/ or wss:\/\/ address/);
    await page.locator("#server").fill("wss://127.0.0.1:7443");
    await page.getByRole("button", { name: "Register", exact: true }).click();
    expect(await text(page, "error")).toMatch(/^Password: /);
    expect(await text(page, "reg-state")).toBe("not registered");
  }, 30_000);
});

describe("GET /phone", () => {
  it("is one page (the JsSIP bundle inlined), and asks for the API token like every route when one is set", async () => {
    const open = await fetch(`${server.baseUrl}/phone`);
    expect(open.status).toBe(200);
    const html = await open.text();
    expect(html).not.toMatch(/<script[^>]* src=/);
    expect(html).not.toMatch(/<link rel="stylesheet"/);
    expect(html).toContain("JsSIP");
    const guarded = await startServer({ http: { token: "phone-token" } });
    cleanups.push(() => guarded.stop());
    expect((await fetch(`${guarded.baseUrl}/phone`)).status).toBe(401);
    expect((await fetch(`${guarded.baseUrl}/phone?token=phone-token`)).status).toBe(200);
  }, 30_000);
});
