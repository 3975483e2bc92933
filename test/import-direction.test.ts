/**
 * The layering rule of DESIGN.md is enforced by dependency-cruiser in `npm run lint`. This checks that the
 * rule really fails on an upward import (and passes on a downward one), so CI cannot silently stop guarding it.
 */
import { spawnSync } from "node:child_process";
import { cpSync, mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const DEPCRUISE = join(ROOT, "node_modules/.bin/depcruise");

function cruise(files: Record<string, string>) {
  const dir = mkdtempSync(join(tmpdir(), "ac-layers-"));
  cpSync(join(ROOT, ".dependency-cruiser.cjs"), join(dir, ".dependency-cruiser.cjs"));
  writeFileSync(join(dir, "tsconfig.json"), JSON.stringify({ compilerOptions: { module: "NodeNext", moduleResolution: "NodeNext" } }));
  for (const [name, text] of Object.entries(files)) {
    mkdirSync(join(dir, name, ".."), { recursive: true });
    writeFileSync(join(dir, name), text);
  }
  return spawnSync(DEPCRUISE, ["src", "--config", ".dependency-cruiser.cjs"], { cwd: dir, encoding: "utf8" });
}

describe("import direction", () => {
  it("passes when imports point down", () => {
    const r = cruise({
      "src/errors.ts": "export const x = 1;\n",
      "src/audio/g711.ts": 'import { x } from "../errors.js";\nexport const y = x;\n',
      "src/http/app.ts": 'import { y } from "../audio/g711.js";\nexport const z = y;\n',
      "src/main.ts": 'import { z } from "./http/app.js";\nconsole.log(z);\n',
    });
    expect(r.status, r.stdout + r.stderr).toBe(0);
  });

  it("fails on an upward import, naming the rule and the files", () => {
    const r = cruise({
      "src/http/app.ts": "export const z = 1;\n",
      "src/audio/g711.ts": 'import { z } from "../http/app.js";\nexport const y = z;\n',
    });
    expect(r.status).not.toBe(0);
    expect(r.stdout).toContain("no-upward-import-from-audio");
    expect(r.stdout).toContain("src/audio/g711.ts");
  });

  it("fails when anything imports main.ts", () => {
    const r = cruise({
      "src/main.ts": "export const m = 1;\n",
      "src/http/app.ts": 'import { m } from "../main.js";\nexport const z = m;\n',
    });
    expect(r.status).not.toBe(0);
    expect(r.stdout).toContain("nothing-imports-main");
  });
});
