/**
 * The controller's Dockerfile, parsed (dockerfile-ast, the parser of the Docker language server) rather than
 * grepped: the hadolint rules that matter (pinned bases, non-root, no apt caches or recommends), a HEALTHCHECK on
 * the controller's /health at its real port, COPY sources that exist and are not ignored, and the local engines
 * the keyless playbooks spawn. No Docker runs here, so this is what keeps the file true to the code.
 */
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { Copy, DockerfileParser, type Instruction } from "dockerfile-ast";
import { describe, expect, it } from "vitest";
import { configSchema, parseHostPort } from "../src/config/schema.js";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const dockerfile = DockerfileParser.parse(readFileSync(join(ROOT, "Dockerfile"), "utf8"));
const instructions = dockerfile.getInstructions();
const defaults = configSchema.parse({});
const ignored = readFileSync(join(ROOT, ".dockerignore"), "utf8")
  .split("\n")
  .map((l) => l.trim())
  .filter((l) => l !== "" && !l.startsWith("#"));

const args = (i: Instruction) => i.getArguments().map((a) => a.getValue());
/** COPY --from=<stage>, or undefined for a COPY from the build context. */
const copyFrom = (i: Instruction) => (i instanceof Copy ? (i.getFromFlag()?.getValue() ?? undefined) : undefined);
/** Instructions of the last stage (what the image runs). */
function finalStage(): Instruction[] {
  const from = dockerfile.getFROMs().at(-1)!;
  return instructions.filter((i) => i.getRange().start.line > from.getRange().start.line);
}
/** Shell words of every `apt-get install` in these RUN instructions. */
function aptInstalls(list: Instruction[]): string[][] {
  return list
    .filter((i) => i.getKeyword() === "RUN")
    .flatMap((i) => args(i).join(" ").split("&&").map((c) => c.trim().split(/\s+/)))
    .filter((w) => w[0] === "apt-get" && w[1] === "install");
}

describe("Dockerfile", () => {
  it("every base image is pinned to a release (no latest, no bare name)", () => {
    const froms = dockerfile.getFROMs();
    expect(froms.length).toBeGreaterThanOrEqual(2); // multi-stage: build tools stay out of the image
    for (const f of froms) {
      expect(f.getImageTag(), f.getImage() ?? "").toMatch(/^\d+\.\d+\.\d+-/);
      expect(f.getImageName()).toBe("node");
      expect(Number(f.getImageTag()?.split(".")[0])).toBe(20);
    }
  });

  it("runs as a non-root user in the final stage", () => {
    const users = finalStage().filter((i) => i.getKeyword() === "USER");
    expect(users.length).toBeGreaterThan(0);
    expect(args(users.at(-1)!)[0]).not.toMatch(/^(root|0)(:|$)/);
  });

  it("apt installs take no recommends and leave no package lists behind", () => {
    const runs = instructions.filter((i) => i.getKeyword() === "RUN" && args(i).includes("apt-get"));
    expect(runs.length).toBeGreaterThan(0);
    for (const r of runs) {
      const text = args(r).join(" ");
      expect(text).toContain("apt-get update");
      expect(text).toContain("rm -rf /var/lib/apt/lists/*");
    }
    for (const words of aptInstalls(instructions)) {
      expect(words).toContain("-y");
      expect(words).toContain("--no-install-recommends");
    }
  });

  it("the image carries the local engines the keyless playbooks spawn", () => {
    const pkgs = aptInstalls(finalStage()).flatMap((w) => w.slice(2).filter((x) => !x.startsWith("-")));
    // [providers.flite|espeak] binary are the Debian packages' commands; pocketsphinx's model is pocketsphinx-en-us.
    for (const p of [defaults.providers.flite.binary, defaults.providers.espeak.binary, "pocketsphinx", "pocketsphinx-en-us"]) expect(pkgs).toContain(p);
    expect(defaults.providers.pocketsphinx.hmm.startsWith("/usr/share/pocketsphinx/")).toBe(true);
  });

  it("HEALTHCHECK asks /health on the controller's HTTP port, which is exposed", () => {
    const port = parseHostPort(defaults.http.addr)!.port;
    const hc = finalStage().find((i) => i.getKeyword() === "HEALTHCHECK");
    expect(hc).toBeDefined();
    expect(args(hc!).join(" ")).toContain(`http://127.0.0.1:${port}/health`);
    const exposed = finalStage()
      .filter((i) => i.getKeyword() === "EXPOSE")
      .flatMap(args)
      .map(Number);
    expect(exposed).toContain(port);
    expect(exposed).toContain(parseHostPort(defaults.asterisk.audiosocket_listen)!.port);
  });

  it("COPY sources from the build context exist and are not excluded by .dockerignore", () => {
    const copies = instructions.filter((i) => i.getKeyword() === "COPY" && copyFrom(i) === undefined);
    expect(copies.length).toBeGreaterThan(0);
    for (const c of copies) {
      for (const src of args(c).slice(0, -1)) {
        expect(existsSync(join(ROOT, src)), src).toBe(true);
        expect(ignored, src).not.toContain(src);
      }
    }
  });

  it("the stage that runs copies the built addon, dist and the entry point from the build stage", () => {
    const fromBuild = finalStage()
      .filter((i) => i.getKeyword() === "COPY" && copyFrom(i) === "build")
      .map((i) => args(i)[0]);
    for (const p of ["/app/dist", "/app/bin", "/app/node_modules", "/app/native/build/Release/tinysilero.node"]) expect(fromBuild).toContain(p);
    const entry = finalStage().find((i) => i.getKeyword() === "ENTRYPOINT");
    expect(JSON.parse(args(entry!).join(" "))).toEqual(["node", JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")).bin["active-call"]]);
  });

  it(".dockerignore keeps dependencies, builds, secrets and call data out of the context", () => {
    for (const p of ["node_modules", "dist", ".env", "data", "native/**/build", "config/active-call.toml"]) expect(ignored).toContain(p);
  });
});
