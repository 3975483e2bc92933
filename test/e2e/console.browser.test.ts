/**
 * The web console in a real browser: Debian's Chromium (headless, through playwright-core) opens the page served by
 * the real controller, captures a WAV file as its microphone (Chromium's fake capture device, which loops the file),
 * calls the hello.md playbook over /call and hangs up. Local engines only (flite, pocketsphinx, scripted LLM).
 *
 * Skipped when /usr/bin/chromium is missing, except in CI (CI=true), where a missing browser fails the run.
 */
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { chromium, type BrowserContext, type Page } from "playwright-core";
import { encodeWav } from "../../src/audio/index.js";
import { CHROMIUM, CHROMIUM_ARGS, haveChromium } from "./chromium.js";
import { fliteSpeech, silence, startServer, type TestServer } from "./harness.js";


const RATE = 16000;
const WAIT = { timeout: 30_000, polling: 100 } as const;

interface ConsoleEvent {
  event: string;
  text?: string;
  reason?: string;
  [k: string]: unknown;
}
interface ConsoleHooks {
  state: string;
  events: ConsoleEvent[];
  transcript: { who: string; text: string; playId?: string }[];
  receivedAudioBytes: number;
  receivedAudioPeak: number;
  sentAudioFrames: number;
  scheduledSources: number;
  micError: string | null;
}

/** Everything a test opened, closed in afterEach even when an assertion failed. */
const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()!().catch(() => undefined);
});

async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), "active-call-browser-"));
  cleanups.push(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

async function server(overrides: Record<string, unknown> = {}): Promise<TestServer> {
  const s = await startServer(overrides);
  cleanups.push(() => s.stop());
  return s;
}

/** The fake microphone: `lead` silence, the caller's words, `tail` silence (Chromium loops the file). */
async function captureWav(dir: string, text: string, leadMs: number, tailMs: number): Promise<string> {
  const speech = fliteSpeech(text, RATE);
  const pcm = new Int16Array(silence(leadMs, RATE).length + speech.length + silence(tailMs, RATE).length);
  pcm.set(speech, silence(leadMs, RATE).length);
  const path = join(dir, "caller.wav");
  await writeFile(path, encodeWav(pcm, RATE));
  return path;
}

interface Browser {
  context: BrowserContext;
  page: Page;
  /** Page console errors and uncaught exceptions. */
  errors: string[];
}

async function openBrowser(wavPath: string): Promise<Browser> {
  const userDataDir = await tempDir();
  const context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: CHROMIUM,
    headless: true,
    args: [...CHROMIUM_ARGS, "--disable-quic", `--use-file-for-fake-audio-capture=${wavPath}`, "--autoplay-policy=no-user-gesture-required"],
  });
  cleanups.push(() => context.close());
  const page = context.pages()[0] ?? (await context.newPage());
  const errors: string[] = [];
  page.on("console", (msg) => {
    if (msg.type() === "error") errors.push(`console: ${msg.text()}`);
  });
  page.on("pageerror", (err) => errors.push(`pageerror: ${err.message}`));
  return { context, page, errors };
}

// Page-side code is passed as strings: this project's tsconfig has no DOM lib.
const hooks = (page: Page): Promise<ConsoleHooks> => page.evaluate<ConsoleHooks>("JSON.parse(JSON.stringify(window.__console))");
const PLAYBOOKS_LOADED = `document.getElementById("playbook").value === "hello.md"`;

/** Waits for `fn(window.__console)`; on timeout, fails with the hooks seen so far. */
async function waitFor(page: Page, what: string, fn: string, timeout: number = WAIT.timeout): Promise<void> {
  try {
    await page.waitForFunction(`(() => { const c = window.__console; return c && (${fn}); })()`, undefined, { timeout, polling: WAIT.polling });
  } catch (err) {
    const h = await hooks(page).catch(() => undefined);
    const events = h?.events.map((e) => (e.text !== undefined ? `${e.event}(${JSON.stringify(e.text)})` : e.reason ? `${e.event}(${e.reason})` : e.event));
    throw new Error(
      `timed out waiting for ${what}: ${(err as Error).message.split("\n")[0]}\n` +
        `state=${h?.state} received=${h?.receivedAudioBytes}B peak=${h?.receivedAudioPeak} sent=${h?.sentAudioFrames} micError=${h?.micError}\n` +
        `events: ${events?.join(", ")}\ntranscript: ${JSON.stringify(h?.transcript)}`,
    );
  }
}

describe.skipIf(!haveChromium)("web console in Chromium", () => {
  it("calls hello.md with the microphone, hears the greeting, is answered, hangs up", { timeout: 90_000 }, async () => {
    const s = await server();
    // ~6 s of silence so the greeting is over before the caller speaks (no barge-in), ~4 s after before the loop.
    const wav = await captureWav(await tempDir(), "please transfer me to billing", 6000, 4000);
    const { page, errors } = await openBrowser(wav);

    await page.goto(`${s.baseUrl}/`);
    await page.waitForFunction(PLAYBOOKS_LOADED, undefined, WAIT);
    await page.getByRole("button", { name: "Call", exact: true }).click();

    await waitFor(page, "state active", `c.state === "active"`);
    await waitFor(page, "the greeting audio", `c.receivedAudioBytes > 16000 && c.receivedAudioPeak > 1000`);

    await waitFor(page, "a non-empty asrFinal", `c.events.some((e) => e.event === "asrFinal" && typeof e.text === "string" && e.text.trim() !== "")`, 45_000);
    const atAsr = await hooks(page);
    const asrIndex = atAsr.events.findIndex((e) => e.event === "asrFinal" && typeof e.text === "string" && e.text.trim() !== "");
    const bytesAtAsr = atAsr.receivedAudioBytes;
    expect(atAsr.micError).toBeNull();
    expect(atAsr.sentAudioFrames).toBeGreaterThan(0);

    // The reply: text after that asrFinal (llmDelta, or an agent transcript entry) and more agent audio.
    await waitFor(
      page,
      "the agent's reply text",
      `c.events.slice(${asrIndex + 1}).some((e) => e.event === "llmDelta" || e.event === "llmFinal") || ` +
        `c.transcript.slice(c.transcript.findIndex((t) => t.who === "caller") + 1).some((t) => t.who === "agent" && t.text)`,
    );
    await waitFor(page, "the agent's reply audio", `c.receivedAudioBytes > ${bytesAtAsr + 16000}`);

    await page.getByRole("button", { name: "Hang up", exact: true }).click();
    await waitFor(page, "the hangup event", `c.events.some((e) => e.event === "hangup") && c.state === "ended"`);

    const end = await hooks(page);
    const hangup = end.events.find((e) => e.event === "hangup");
    expect(hangup?.reason).toBe("client");
    expect(end.state).toBe("ended");
    expect(end.transcript.some((t) => t.who === "caller" && t.text.trim() !== "")).toBe(true);
    expect(end.events.filter((e) => e.event === "error")).toEqual([]);
    expect(errors).toEqual([]);
  });

  it("with an API token: / is 401, /?token= loads, lists playbooks and connects a call", { timeout: 60_000 }, async () => {
    const s = await server({ http: { token: "s3cret" } });
    expect((await fetch(`${s.baseUrl}/`)).status).toBe(401);

    const wav = await captureWav(await tempDir(), "hello", 1000, 1000);
    const { page, errors } = await openBrowser(wav);
    const res = await page.goto(`${s.baseUrl}/?token=s3cret`);
    expect(res?.status()).toBe(200);
    await page.waitForFunction(PLAYBOOKS_LOADED, undefined, WAIT);
    const options = await page.evaluate<string[]>(`[...document.querySelectorAll("#playbook option")].map((o) => o.value)`);
    expect(options).toContain("hello.md");

    await page.getByRole("button", { name: "Call", exact: true }).click();
    await waitFor(page, "state active", `c.state === "active"`);

    await page.getByRole("button", { name: "Hang up", exact: true }).click();
    await waitFor(page, "state ended", `c.state === "ended"`);
    expect(errors).toEqual([]);
  });
});
