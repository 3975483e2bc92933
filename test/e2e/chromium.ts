/**
 * Debian's Chromium for the browser tests (playwright-core): where it is, whether the tests may skip without it
 * (only outside CI), and the flags every test launches it with (headless, quiet, fake microphone without a prompt).
 */
import { existsSync } from "node:fs";

export const CHROMIUM = "/usr/bin/chromium";
export const haveChromium = existsSync(CHROMIUM);
if (!haveChromium && process.env.CI === "true") throw new Error(`${CHROMIUM} is missing: the browser tests must run in CI`);

/** Flags for a headless run with Chromium's fake capture device as the microphone, granted without asking. */
export const CHROMIUM_ARGS: readonly string[] = [
  "--no-sandbox",
  "--disable-gpu",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
  "--use-fake-ui-for-media-stream",
  "--use-fake-device-for-media-stream",
];
