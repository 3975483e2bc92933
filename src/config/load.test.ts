import { mkdtemp, readFile, writeFile, mkdir } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { ConfigError, loadConfig } from "./load.js";
import { knownKeys } from "./issues.js";
import { configSchema } from "./schema.js";
import { parseTomlDocument } from "./toml.js";

async function dirWith(files: Record<string, string>): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), "ac-config-"));
  for (const [name, text] of Object.entries(files)) {
    await mkdir(join(dir, name, ".."), { recursive: true });
    await writeFile(join(dir, name), text);
  }
  return dir;
}

async function problems(files: Record<string, string>, env: Record<string, string> = {}, confPath = "c.toml"): Promise<ConfigError> {
  const cwd = await dirWith(files);
  const err = await loadConfig({ confPath, env, cwd }).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(ConfigError);
  return err as ConfigError;
}

describe("loadConfig", () => {
  it("uses the built-in defaults with no file", async () => {
    const cwd = await dirWith({});
    const { config, file } = await loadConfig({ env: {}, cwd });
    expect(file).toBeUndefined();
    expect(config.http.addr).toBe("0.0.0.0:8080");
    expect(config.freeswitch.esl_port).toBe(8021);
    expect(config.calls.shutdown_grace_ms).toBe(10000);
    expect(config.defaults.vad).toEqual({ type: "tinysilero", threshold: 0.5, minSpeechMs: 250, minSilenceMs: 100, speechPadMs: 30 });
    expect(config.defaults.llm).toEqual({ provider: "auto", model: "gpt-4o-mini" });
    expect(config.log.format).toBeUndefined();
  });

  it("reads ./config/active-call.toml when no path is given", async () => {
    const cwd = await dirWith({ "config/active-call.toml": '[http]\naddr = "127.0.0.1:9000"\n' });
    const { config, file } = await loadConfig({ env: {}, cwd });
    expect(config.http.addr).toBe("127.0.0.1:9000");
    expect(file).toBe(join(cwd, "config/active-call.toml"));
  });

  it("fails when an explicit file is missing", async () => {
    const err = await problems({}, {}, "missing.toml");
    expect(err.problems[0]).toMatch(/^missing\.toml: cannot read the config file: ENOENT/);
    expect(err.exitCode).toBe(1);
  });

  it("names file, line, column and key for an unknown key, with a suggestion", async () => {
    const err = await problems({ "c.toml": '[http]\naddr = "0.0.0.0:1"\n\n[freeswitch]\nesl_host = "x"\n  esl_pasword = "y"\n' });
    expect(err.problems).toEqual(['c.toml:6:3: unknown key "esl_pasword" in [freeswitch]; did you mean "esl_password"?']);
  });

  it("reports an unknown section and an unknown key without a close match", async () => {
    const err = await problems({ "c.toml": '[htp]\naddr = "x"\n[http]\nfrobnicate = 1\n' });
    expect(err.problems).toEqual([
      'c.toml:1:1: unknown key "htp"; did you mean "http"?',
      'c.toml:4:1: unknown key "frobnicate" in [http]',
    ]);
  });

  it("names the value's position and the expected type for a wrong type", async () => {
    const err = await problems({ "c.toml": '[calls]\nmax_concurrent = "ten"\n[log]\nlevel = "loud"\n[freeswitch]\nesl_port = 70000\n' });
    expect(err.problems).toEqual([
      'c.toml:2:18: "max_concurrent" in [calls] must be a number, got "ten"',
      'c.toml:4:9: "level" in [log] must be one of "trace", "debug", "info", "warn", "error"; got "loud"',
      'c.toml:6:12: "esl_port" in [freeswitch] must be ≤ 65535, got 70000',
    ]);
  });

  it("rejects a fractional integer and a bad host:port", async () => {
    const err = await problems({ "c.toml": '[http]\naddr = "8080"\n[calls]\nws_output_lead_ms = 1.5\n' });
    expect(err.problems[0]).toMatch(/^c\.toml:2:8: "addr" in \[http\] must be "host:port"/);
    expect(err.problems[1]).toMatch(/^c\.toml:4:21: "ws_output_lead_ms" in \[calls\] must be an integer/);
  });

  it("reports TOML syntax errors with their position", async () => {
    const err = await problems({ "c.toml": '[http]\naddr = = 1\nx = 2\n' });
    expect(err.problems[0]).toMatch(/^c\.toml:2:\d+: TOML syntax error: /);
  });

  it("validates handler rules: an invalid regex is fatal and names the rule", async () => {
    const err = await problems({ "c.toml": '[[handler.rules]]\ncallee = "^100$"\nplaybook = "a.md"\n\n[[handler.rules]]\ncaller = "(+44"\nplaybook = "b.md"\n' });
    expect(err.problems).toEqual(['c.toml:6:10: "caller" in [[handler.rules]] #2 must be a valid JavaScript regular expression, got "(+44"']);
  });

  it("expands ${NAME} and ${NAME:-default}, keeps $${ literal, and names the key of an unset variable", async () => {
    const cwd = await dirWith({ "c.toml": '[http]\ntoken = "${TOK}"\npublic_url = "${URL:-https://a.example}"\n[handler]\nheaders = { X = "$${literal}" }\n' });
    const { config } = await loadConfig({ confPath: "c.toml", env: { TOK: "s3cret-token" }, cwd });
    expect(config.http.token).toBe("s3cret-token");
    expect(config.http.public_url).toBe("https://a.example");
    expect(config.handler.headers).toEqual({ X: "${literal}" });

    const err = await problems({ "c.toml": '[asterisk]\n\nari_password = "${ARI_PW}"\n' });
    expect(err.problems).toEqual([
      'c.toml:3:16: "ari_password" in [asterisk]: environment variable ARI_PW is not set; use ${ARI_PW:-value} to give a default',
    ]);
  });

  it("applies defaults < file < environment < flags", async () => {
    const cwd = await dirWith({ "c.toml": '[http]\naddr = "127.0.0.1:1000"\ntoken = "from-file"\n[log]\nlevel = "warn"\n' });
    const env = { ACTIVE_CALL_HTTP: "127.0.0.1:2000", ACTIVE_CALL_TOKEN: "from-env", OPENAI_API_KEY: "sk-test", OPENAI_MODEL: "gpt-x" };
    const { config } = await loadConfig({
      confPath: "c.toml",
      env,
      cwd,
      overrides: [{ path: ["http", "addr"], value: "127.0.0.1:3000", source: "--http" }],
    });
    expect(config.http.addr).toBe("127.0.0.1:3000");
    expect(config.http.token).toBe("from-env");
    expect(config.log.level).toBe("warn");
    expect(config.providers.openai.api_key).toBe("sk-test");
    expect(config.defaults.llm.model).toBe("gpt-x");
  });

  it("loads ./.env without overriding the process environment", async () => {
    const cwd = await dirWith({ ".env": "ACTIVE_CALL_TOKEN=dotenv-token\nOPENAI_API_KEY=sk-dotenv\nPLAYBOOK_ONLY=x\n" });
    const { config, env, secrets } = await loadConfig({ env: { OPENAI_API_KEY: "sk-process" }, cwd });
    expect(config.http.token).toBe("dotenv-token");
    expect(config.providers.openai.api_key).toBe("sk-process");
    expect(env.PLAYBOOK_ONLY).toBe("x");
    expect(secrets).toEqual(expect.arrayContaining(["dotenv-token", "sk-process"]));
  });

  it("blames the flag, with exit code 2, when a flag value is invalid", async () => {
    const cwd = await dirWith({});
    const err = await loadConfig({ env: {}, cwd, overrides: [{ path: ["log", "level"], value: "loud", source: "--log-level" }] }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as ConfigError).exitCode).toBe(2);
    expect((err as ConfigError).problems[0]).toMatch(/^--log-level: "level" in \[log\] must be one of/);
  });

  it("blames the environment variable when its value is invalid", async () => {
    const err = await problems({}, { ACTIVE_CALL_HTTP: "nowhere" }, "");
    expect(err.problems[0]).toMatch(/^ACTIVE_CALL_HTTP: "addr" in \[http\] must be "host:port"/);
    expect(err.exitCode).toBe(1);
  });

  it("accepts playbook aliases under [defaults] and rejects both names of a pair", async () => {
    const cwd = await dirWith({ "c.toml": "[defaults.vad]\nvoiceThreshold = 0.6\nmaxBufferDurationSecs = 12\n[defaults.tts]\nspeaker = \"slt\"\n" });
    const { config } = await loadConfig({ confPath: "c.toml", env: {}, cwd });
    expect(config.defaults.vad.threshold).toBe(0.6);
    expect(config.defaults.vad.maxSpeechMs).toBe(12000);
    expect(config.defaults.tts.voice).toBe("slt");

    const err = await problems({ "c.toml": "[defaults.tts]\nvoice = \"a\"\nspeaker = \"b\"\nsamplerate = 11025\n" });
    expect(err.problems).toEqual([
      "c.toml:3:1: tts.speaker and tts.voice are both set in [defaults.tts]; keep one",
      'c.toml:4:14: "samplerate" in [defaults.tts] must be one of 8000, 16000, 24000, 48000; got 11025',
    ]);
  });

  it("needs an ARI password when Asterisk is enabled and a URL for a webhook handler", async () => {
    const err = await problems({ "c.toml": '[asterisk]\nenabled = true\n[handler]\ntype = "webhook"\n' });
    expect(err.problems).toEqual([
      'c.toml:1:1: "ari_password" in [asterisk] is required when [asterisk] enabled = true (set ACTIVE_CALL_ARI_PASSWORD)',
      'c.toml:3:1: "url" in [handler] must not be empty when type is "webhook"',
    ]);
  });
});

describe("config/active-call.example.toml", () => {
  const examplePath = new URL("../../config/active-call.example.toml", import.meta.url);

  it("loads without errors", async () => {
    const cwd = await dirWith({});
    const { config } = await loadConfig({ confPath: examplePath.pathname, env: {}, cwd });
    expect(config.handler.default).toBe("hello.md");
  });

  it("documents every key of every section", async () => {
    const text = await readFile(examplePath, "utf8");
    const doc = parseTomlDocument(text);
    // A key documented as a comment (`# url = …`) inside its section also counts.
    const commented = (path: string[]) => {
      const header = `[${path.slice(0, -1).join(".")}]`;
      const start = text.indexOf(`\n${header}\n`);
      const end = text.indexOf("\n[", start + 1);
      const section = start < 0 ? "" : text.slice(start, end < 0 ? undefined : end);
      return new RegExp(`^#\\s*${path[path.length - 1]}\\s*=`, "m").test(section);
    };
    const missing: string[] = [];
    const visit = (path: string[]) => {
      for (const key of knownKeys(configSchema, path)) {
        const here = [...path, key];
        // [defaults.*] tables hold playbook sections: their fields are documented in the playbook spec.
        if (path[0] === "defaults") continue;
        if (key === "rules") continue; // [[handler.rules]] is shown as a commented-out example
        if (knownKeys(configSchema, here).length > 0) visit(here);
        else if (!doc.keyAt(here) && !commented(here)) missing.push(here.join("."));
      }
    };
    visit([]);
    for (const section of knownKeys(configSchema, ["defaults"])) {
      if (!doc.keyAt(["defaults", section])) missing.push(`defaults.${section}`);
    }
    expect(missing).toEqual([]);
  });
});
