/** Helpers for tests that check a README section against the controller (config files, defaults). */
import { readFileSync } from "node:fs";

const README = new URL("../README.md", import.meta.url);

/** The README section that starts at `heading` (a `## ` line), up to the next `## ` heading; "" when absent. */
export function readmeSection(heading: string): string {
  const readme = readFileSync(README, "utf8");
  const start = readme.indexOf(heading);
  if (start < 0) return "";
  const end = readme.indexOf("\n## ", start + 1);
  return readme.slice(start, end < 0 ? undefined : end);
}

/** The keys assigned in the section's ```toml blocks (throws when it has none, so a test cannot pass empty). */
export function tomlKeys(text: string): string[] {
  const blocks = [...text.matchAll(/```toml\n([\s\S]*?)```/g)].map((m) => m[1] as string);
  const keys = blocks.flatMap((b) => [...b.matchAll(/^([a-z_]+)\s*=/gm)].map((m) => m[1] as string));
  if (keys.length === 0) throw new Error("the section shows no ```toml block with keys");
  return keys;
}
