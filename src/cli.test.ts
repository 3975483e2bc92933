import { describe, expect, it } from "vitest";
import { parseCli } from "./cli.js";
import { AppError } from "./errors.js";

const run = (...argv: string[]) => {
  const c = parseCli(argv);
  if (c.kind !== "run") throw new Error(`expected run, got ${c.kind}`);
  return c;
};
const usageError = (...argv: string[]) => {
  try {
    parseCli(argv);
  } catch (err) {
    expect(err).toBeInstanceOf(AppError);
    expect((err as AppError).code).toBe("USAGE");
    return (err as AppError).message;
  }
  throw new Error("expected a usage error");
};

describe("parseCli", () => {
  it("recognises help, version and run", () => {
    expect(parseCli(["--help"]).kind).toBe("help");
    expect(parseCli(["-h"]).kind).toBe("help");
    expect(parseCli(["-v"]).kind).toBe("version");
    expect(parseCli(["version"]).kind).toBe("version");
    expect(run().overrides).toEqual([]);
    expect(run("run", "--print-config").printConfig).toBe(true);
  });

  it("maps --http, with a bare port meaning all interfaces", () => {
    expect(run("--http", "9090").overrides).toEqual([{ path: ["http", "addr"], value: "0.0.0.0:9090", source: "--http" }]);
    expect(run("--http=127.0.0.1:1").overrides[0]?.value).toBe("127.0.0.1:1");
  });

  it("turns an http(s) --handler into a webhook", () => {
    expect(run("--handler", "https://app.example.com/in").overrides).toEqual([
      { path: ["handler", "type"], value: "webhook", source: "--handler" },
      { path: ["handler", "url"], value: "https://app.example.com/in", source: "--handler" },
    ]);
  });

  it("turns a .md --handler into the default playbook and its folder, unless --playbooks is given", () => {
    expect(run("--handler", "agents/support.md").overrides).toEqual([
      { path: ["handler", "type"], value: "playbook", source: "--handler" },
      { path: ["handler", "default"], value: "support.md", source: "--handler" },
      { path: ["paths", "playbooks"], value: "agents", source: "--handler" },
    ]);
    const o = run("--handler", "agents/support.md", "--playbooks", "/srv/pb").overrides;
    expect(o.filter((x) => x.path.join(".") === "paths.playbooks")).toEqual([{ path: ["paths", "playbooks"], value: "/srv/pb", source: "--playbooks" }]);
    expect(usageError("--handler", "support.txt")).toBe("--handler expects an http(s) URL or a .md playbook");
  });

  it("parses --esl [password@]host[:port]", () => {
    expect(run("--esl", "pw@10.0.0.5:8022").overrides).toEqual([
      { path: ["freeswitch", "enabled"], value: true, source: "--esl" },
      { path: ["freeswitch", "esl_host"], value: "10.0.0.5", source: "--esl" },
      { path: ["freeswitch", "esl_port"], value: 8022, source: "--esl" },
      { path: ["freeswitch", "esl_password"], value: "pw", source: "--esl" },
    ]);
    expect(run("--esl", "fs.local").overrides).toHaveLength(2);
    const msg = usageError("--esl", "secret@host:99999");
    expect(msg).toMatch(/^--esl: expects \[password@\]host\[:port\]/);
    expect(msg).not.toContain("secret");
  });

  it("moves ARI credentials out of the URL", () => {
    expect(run("--ari", "http://ari:p%40ss@pbx:8088/").overrides).toEqual([
      { path: ["asterisk", "enabled"], value: true, source: "--ari" },
      { path: ["asterisk", "ari_user"], value: "ari", source: "--ari" },
      { path: ["asterisk", "ari_password"], value: "p@ss", source: "--ari" },
      { path: ["asterisk", "ari_url"], value: "http://pbx:8088", source: "--ari" },
    ]);
    expect(usageError("--ari", "ftp://x")).toBe("--ari: expects an http or https URL");
  });

  it("maps the simple flags to their keys", () => {
    const o = run("--ari-app", "agent", "--ari-media", "websocket", "--token", "t", "--log-level", "debug", "--log-format", "json", "--esl-listen", "0.0.0.0:8084", "--conf", "x.toml");
    expect(Object.fromEntries(o.overrides.map((x) => [x.path.join("."), x.value]))).toEqual({
      "asterisk.app": "agent",
      "asterisk.media": "websocket",
      "http.token": "t",
      "log.level": "debug",
      "log.format": "json",
      "freeswitch.outbound_listen": "0.0.0.0:8084",
    });
    expect(o.confPath).toBe("x.toml");
  });

  it("hands subcommands their own arguments, taking --conf out", () => {
    expect(parseCli(["vad", "a.wav", "--conf", "c.toml", "--json"])).toEqual({ kind: "subcommand", name: "vad", argv: ["a.wav", "--json"], confPath: "c.toml" });
    expect(parseCli(["vad", "--conf=c.toml", "--engine", "onnx"])).toEqual({ kind: "subcommand", name: "vad", argv: ["--engine", "onnx"], confPath: "c.toml" });
    expect(parseCli(["vad", "a.wav"])).toEqual({ kind: "subcommand", name: "vad", argv: ["a.wav"], confPath: undefined });
    expect(parseCli(["simulate", "p.md", "--text", "hi", "--conf", "c.toml", "--offline"])).toEqual({
      kind: "subcommand",
      name: "simulate",
      argv: ["p.md", "--text", "hi", "--offline"],
      confPath: "c.toml",
    });
    expect(usageError("vad", "a.wav", "--conf")).toBe("--conf needs a value");
  });

  it("names the flag in usage errors", () => {
    expect(usageError("--bogus")).toBe("unknown flag --bogus (see --help)");
    expect(usageError("--http")).toMatch(/^--http/);
    expect(usageError("--http", "")).toBe("--http needs a value");
    expect(usageError("--print-config=yes")).toMatch(/--print-config/);
    expect(usageError("stray")).toMatch(/unknown command "stray"/);
    expect(usageError("run", "extra")).toBe('unexpected argument "extra"');
  });
});
