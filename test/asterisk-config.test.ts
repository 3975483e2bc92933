/**
 * asterisk/ is a drop-in configuration for an existing Asterisk. Its files must be well-formed Asterisk
 * configuration (sections, `key = value` / `key => value`, `;` comments, pjsip templates) and must agree with
 * the controller's [asterisk] defaults: a default changed in src/config/schema.ts without the files (or the
 * other way round) fails here.
 */
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { parse as parseToml } from "smol-toml";
import { configSchema } from "../src/config/schema.js";
import { all, get, parseConf, type ConfFile, type Section } from "./asterisk-conf.js";
import { expectKeylessPlaybook } from "./keyless-playbook.js";
import { readmeSection, tomlKeys } from "./readme-section.js";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const AST_DIR = join(ROOT, "asterisk");
const defaults = configSchema.parse({}).asterisk;

// ---------------------------------------------------------------------------------------------------------
// The dialplan: `exten => <name>,<priority>,<App>(<args>)` and `same => n,<App>(<args>)`.

interface Step {
  context: string;
  exten: string;
  priority: string;
  app: string;
  args: string[];
}

function parseApp(s: string): { app: string; args: string[] } {
  const m = /^([A-Za-z][A-Za-z0-9_]*)(?:\((.*)\))?$/.exec(s.trim());
  if (!m) throw new Error(`bad application ${s}`);
  const raw = m[2] ?? "";
  let depth = 0;
  for (const c of raw) {
    if (c === "(") depth++;
    if (c === ")" && --depth < 0) throw new Error(`unbalanced ")" in ${s}`);
  }
  if (depth !== 0) throw new Error(`unbalanced "(" in ${s}`);
  return { app: m[1] as string, args: raw === "" ? [] : raw.split(",") };
}

function dialplan(conf: ConfFile): Step[] {
  const steps: Step[] = [];
  for (const ctx of conf.sections) {
    let last: Step | undefined;
    for (const e of ctx.entries) {
      if (e.key !== "exten" && e.key !== "same") continue;
      if (e.key === "exten") {
        const m = /^([^,]+),([^,]+),(.*)$/.exec(e.value);
        if (!m) throw new Error(`line ${e.line}: bad exten`);
        const exten = (m[1] as string).trim();
        const priority = (m[2] as string).trim();
        const prev = steps.some((s) => s.context === ctx.name && s.exten === exten);
        if (!prev && priority !== "1") throw new Error(`line ${e.line}: ${exten} does not start at priority 1`);
        last = { context: ctx.name, exten, priority, ...parseApp(m[3] as string) };
      } else {
        if (!last) throw new Error(`line ${e.line}: "same" without an exten before it`);
        const m = /^([^,]+),(.*)$/.exec(e.value);
        if (!m) throw new Error(`line ${e.line}: bad same`);
        last = { context: ctx.name, exten: last.exten, priority: (m[1] as string).trim(), ...parseApp(m[2] as string) };
      }
      if (!/^(\d+|n)$/.test(last.priority)) throw new Error(`line ${e.line}: bad priority ${last.priority}`);
      steps.push(last);
    }
  }
  return steps;
}

/** Does extension `exten` of a context match the dialled `number`? Literal names and `_X.`-style patterns. */
function matches(exten: string, number: string): boolean {
  if (!exten.startsWith("_")) return exten === number;
  const classes: Record<string, string> = { X: "[0-9]", Z: "[1-9]", N: "[2-9]", ".": ".+", "!": ".*" };
  const re = [...exten.slice(1)].map((c) => classes[c] ?? c.replace(/[+*?^$(){}|\\]/g, "\\$&")).join("");
  return new RegExp(`^${re}$`).test(number);
}

// ---------------------------------------------------------------------------------------------------------

const FILES = ["ari.conf", "extensions.conf", "http.conf", "modules.conf", "pjsip.conf"];
const files = readdirSync(AST_DIR).sort();
const conf = (name: string) => parseConf(readFileSync(join(AST_DIR, name), "utf8"));
const only = (c: ConfFile, name: string) => {
  const found = c.sections.filter((s) => s.name === name);
  expect(found, `exactly one [${name}]`).toHaveLength(1);
  return found[0] as Section;
};
const steps = () => dialplan(conf("extensions.conf"));
const stepsOf = (context: string, exten: string) => steps().filter((s) => s.context === context && s.exten === exten);
const pjsip = () => conf("pjsip.conf").sections.filter((s) => !s.template);
const pjsipObject = (type: string, name: string) => pjsip().find((s) => s.name === name && get(s, "type") === type);

/** The agent extensions: those that enter Stasis. */
const agents = () => steps().filter((s) => s.app === "Stasis");
/** The playbook a Stasis() argument list names (`playbook=<file>`), if any. */
const playbookArg = (args: readonly string[]) => args.find((x) => x.startsWith("playbook="))?.slice("playbook=".length);

/** Follows Goto(context,exten,1) from a dialled number until a Stasis step; returns it (or undefined). */
function route(context: string, number: string, hops = 0): Step | undefined {
  if (hops > 5) return undefined;
  const match = steps().filter((s) => s.context === context && matches(s.exten, number));
  const first = match[0];
  if (!first) return undefined;
  const own = match.filter((s) => s.exten === first.exten);
  const stasis = own.find((s) => s.app === "Stasis");
  if (stasis) return stasis;
  const go = own.find((s) => s.app === "Goto");
  if (!go) return undefined;
  const [ctx, ext, prio] = go.args;
  expect(prio).toBe("1");
  return route(ctx as string, ext as string, hops + 1);
}

/** Modules of Asterisk 23.4.1 (module show, /work/shared/fixtures/asterisk/modules-loaded.txt) used here. */
const KNOWN_MODULES = new Set(
  (
    "app_stasis bridge_simple bridge_softmix chan_audiosocket chan_pjsip chan_rtp chan_websocket codec_a_mu codec_alaw " +
    "codec_g722 codec_resample codec_ulaw res_ari res_ari_applications res_ari_asterisk res_ari_bridges " +
    "res_ari_channels res_ari_events res_ari_model res_ari_playbacks res_ari_sounds res_audiosocket " +
    "res_http_websocket res_pjsip res_pjsip_authenticator_digest res_pjsip_endpoint_identifier_ip " +
    "res_pjsip_endpoint_identifier_user res_pjsip_header_funcs res_pjsip_nat res_pjsip_outbound_authenticator_digest " +
    "res_pjsip_outbound_registration res_pjsip_refer res_pjsip_registrar res_pjsip_sdp_rtp res_pjsip_session " +
    "res_pjsip_transport_websocket res_rtp_asterisk res_srtp res_stasis res_stasis_answer res_stasis_playback " +
    "res_stasis_snoop res_websocket_client"
  )
    .split(" ")
    .map((m) => `${m}.so`),
);

// ---------------------------------------------------------------------------------------------------------

describe("the strict Asterisk configuration checker", () => {
  it.each([
    ["key = 1\n", "before any section"],
    ["[a]\njust words\n", "not a section"],
    ["[a\nk = v\n", "bad section header"],
    ["[]\n", "bad section header"],
    ["[a](b)\n", "not a template defined above"],
    ["[b]\n[a](b)\n", "not a template defined above"],
    ["[a](!,)\n", "empty template name"],
    ["#include other.conf\n[a]\n", "directive"],
    ["[a]\n;-- block\ncomment --;\n", "block comment"],
    ["; only a comment\n", "no sections"],
  ])("rejects %j", (text, message) => {
    expect(() => parseConf(text)).toThrow(message);
  });

  it("reads comments, templates, both assignment forms and escaped semicolons", () => {
    const c = parseConf("; head\n;more\n[t](!)\na = 1\n[s](t)\nb => 2 ; note\nc = x\\;y\n");
    expect(c.header).toEqual([" head", "more"]);
    const s = c.sections[1] as Section;
    expect(s.inherits).toEqual(["t"]);
    expect(s.entries.map((e) => [e.key, e.value])).toEqual([
      ["a", "1"],
      ["b", "2"],
      ["c", "x\\;y"],
    ]);
  });

  it("rejects malformed dialplan lines", () => {
    expect(() => dialplan(parseConf("[c]\nsame => n,NoOp()\n"))).toThrow("without an exten");
    expect(() => dialplan(parseConf("[c]\nexten => 1,2,NoOp()\n"))).toThrow("priority 1");
    expect(() => dialplan(parseConf("[c]\nexten => 1,1,Stasis(app\n"))).toThrow("bad application");
    expect(() => dialplan(parseConf("[c]\nexten => 1,1,Set(a=$[(1)\n"))).toThrow("unbalanced");
    expect(() => dialplan(parseConf("[c]\nexten => 1,1,NoOp()\nexten => 1,x,NoOp()\n"))).toThrow("bad priority");
  });

  it("matches dialplan patterns", () => {
    expect(matches("_X.", "15551230000")).toBe(true);
    expect(matches("_X.", "+1555")).toBe(false);
    expect(matches("_NXX", "200")).toBe(true);
    expect(matches("_NXX", "100")).toBe(false);
    expect(matches("2000", "2000")).toBe(true);
  });
});

describe("asterisk/ drop-in configuration", () => {
  it("contains the expected files and nothing else", () => {
    expect(files).toEqual(FILES);
  });

  it.each(FILES)("%s parses and its header says where it goes and why", (file) => {
    const header = conf(file).header.join("\n");
    expect(header).toContain(`Goes to: /etc/asterisk/${file}`);
    expect(header).toMatch(/Why:/);
  });

  it.each(["ari.conf", "http.conf", "modules.conf"])("%s has no section twice", (file) => {
    const names = conf(file).sections.map((s) => s.name);
    expect(names).toEqual([...new Set(names)]);
  });

  it("http.conf serves ari_url's host and port", () => {
    const url = new URL(defaults.ari_url);
    const port = url.port || (url.protocol === "https:" ? "443" : "80");
    const g = only(conf("http.conf"), "general");
    expect(get(g, "enabled")).toBe("yes");
    if (url.protocol === "https:") {
      expect(get(g, "tlsenable")).toBe("yes");
      expect(get(g, "tlsbindaddr")).toBe(`${url.hostname}:${port}`);
    } else {
      expect(get(g, "bindaddr")).toBe(url.hostname);
      expect(get(g, "bindport")).toBe(port);
    }
    expect(conf("http.conf").header.join("\n")).toContain(defaults.ari_url);
  });

  it("ari.conf enables ARI and defines ari_user, with the password the controller needs", () => {
    const c = conf("ari.conf");
    expect(get(only(c, "general"), "enabled")).toBe("yes");
    const user = only(c, defaults.ari_user);
    expect(get(user, "type")).toBe("user");
    expect(get(user, "read_only")).toBe("no");
    expect(get(user, "password_format")).toBe("plain");
    const password = get(user, "password");
    if (defaults.ari_password === "") {
      // No default password: Asterisk refuses a user without one, so the file carries a placeholder, and the
      // controller refuses to start enabled until ari_password (ACTIVE_CALL_ARI_PASSWORD) is set.
      expect(password).toBe("change-me");
      expect(configSchema.safeParse({ asterisk: { enabled: true } }).success).toBe(false);
      expect(configSchema.safeParse({ asterisk: { enabled: true, ari_password: password } }).success).toBe(true);
    } else {
      expect(password).toBe(defaults.ari_password);
    }
    const header = c.header.join("\n");
    expect(header).toContain("ari_password");
    expect(header).toContain("ACTIVE_CALL_ARI_PASSWORD");
    expect(header).toContain(`"${defaults.ari_user}"`);
  });

  it("modules.conf loads every module active-call needs, by its real name", () => {
    const m = only(conf("modules.conf"), "modules");
    expect(get(m, "autoload")).toBe("yes");
    const loads = all(m, "load");
    expect(loads).toEqual([...new Set(loads)]);
    expect(loads.filter((l) => !KNOWN_MODULES.has(l))).toEqual([]);
    expect(loads).toEqual(
      expect.arrayContaining(
        [
          "res_ari",
          "res_ari_channels",
          "res_ari_bridges",
          "res_ari_events",
          "res_ari_playbacks",
          "res_stasis",
          "app_stasis",
          "res_http_websocket",
          "chan_pjsip",
          "res_pjsip_header_funcs",
          "res_pjsip_outbound_registration",
          "res_pjsip_transport_websocket",
          "chan_rtp",
          "chan_websocket",
          "res_audiosocket",
          "chan_audiosocket",
        ].map((n) => `${n}.so`),
      ),
    );
    expect(m.entries.every((e) => e.key === "load" || e.key === "autoload")).toBe(true);
  });

  it("extensions.conf sends calls to Stasis(app) with name=value arguments and existing playbooks", () => {
    const a = agents();
    expect(a.length).toBeGreaterThan(0);
    const playbooks = new Set(readdirSync(join(ROOT, "playbooks")));
    for (const s of a) {
      const [app, ...args] = s.args;
      expect(app).toBe(defaults.app);
      for (const arg of args) expect(arg).toMatch(/^[A-Za-z_][A-Za-z0-9_]*=/);
      const pb = playbookArg(args);
      if (pb) expect(playbooks.has(pb)).toBe(true);
    }
    expect(a.some((s) => s.args.includes("playbook=hello.md"))).toBe(true);
    expect(a.some((s) => !s.args.some((x) => x.startsWith("playbook=")))).toBe(true);
  });

  it("every agent extension runs without API keys: the playbook it names resolves to local engines", async () => {
    const named = agents().flatMap((s) => playbookArg(s.args) ?? []);
    expect(named.length).toBeGreaterThan(0);
    for (const pb of named) await expectKeylessPlaybook(join(ROOT, "playbooks"), pb);
  });

  it("the agent extensions live in transfer_context, do not answer, and hang up with 503 if Stasis fails", () => {
    const ctxs = conf("extensions.conf").sections.map((s) => s.name);
    expect(ctxs).toContain(defaults.transfer_context);
    for (const s of agents()) {
      expect(s.context).toBe(defaults.transfer_context);
      const ext = stepsOf(s.context, s.exten);
      expect(ext.map((x) => x.app)).not.toContain("Answer");
      const i = ext.findIndex((x) => x.app === "Stasis");
      expect(ext[i + 1]).toMatchObject({ app: "Hangup", args: ["34"] });
    }
  });

  it("has no context twice, and no extension priority twice", () => {
    const ctxs = conf("extensions.conf").sections.map((s) => s.name);
    expect(ctxs).toEqual([...new Set(ctxs)]);
    const numbered = steps().filter((s) => s.priority !== "n").map((s) => `${s.exten}@${s.context}:${s.priority}`);
    expect(numbered).toEqual([...new Set(numbered)]);
  });

  it("pjsip.conf: typed sections, unique per type, and every reference resolves", () => {
    const c = conf("pjsip.conf");
    const templates = c.sections.filter((s) => s.template).map((s) => s.name);
    expect(templates).toEqual([...new Set(templates)]);
    const known = ["transport", "endpoint", "aor", "auth", "registration", "identify"];
    const ids = pjsip().map((s) => `${get(s, "type") ?? "?"}/${s.name}`);
    expect(ids).toEqual([...new Set(ids)]);
    const contexts = new Set(conf("extensions.conf").sections.map((s) => s.name));
    for (const s of pjsip()) {
      const type = get(s, "type") ?? "";
      expect(known, `[${s.name}] type`).toContain(type);
      const ref = (key: string, t: string) => {
        for (const v of (get(s, key) ?? "").split(",").filter(Boolean)) expect(pjsipObject(t, v.trim()), `[${s.name}] ${key} = ${v}`).toBeDefined();
      };
      ref("transport", "transport");
      ref("aors", "aor");
      ref("auth", "auth");
      ref("outbound_auth", "auth");
      if (type === "registration" || type === "identify") ref("endpoint", "endpoint");
      if (type === "endpoint") expect(contexts, `[${s.name}] context`).toContain(get(s, "context"));
    }
  });

  it("the WebRTC template makes WSS endpoints in transfer_context, reachable with dial_template", () => {
    const webrtc = pjsip().filter((s) => get(s, "type") === "endpoint" && get(s, "webrtc") === "yes");
    expect(webrtc.length).toBeGreaterThan(0);
    for (const e of webrtc) {
      expect(get(pjsipObject("transport", get(e, "transport") ?? ""), "protocol")).toBe("wss");
      expect(get(e, "context")).toBe(defaults.transfer_context);
      expect(defaults.dial_template.replace("{to}", e.name)).toBe(`PJSIP/${e.name}`);
    }
  });

  it("the upstream PBX registration's calls reach the agent", () => {
    const reg = pjsipObject("registration", "upstream-pbx");
    expect(reg).toBeDefined();
    for (const k of ["server_uri", "client_uri", "contact_user", "outbound_auth"]) expect(get(reg, k)).toBeTruthy();
    expect(get(reg, "line")).toBe("yes");
    const endpoint = pjsipObject("endpoint", get(reg, "endpoint") ?? "");
    const user = get(reg, "contact_user") ?? "";
    expect(get(reg, "client_uri")).toMatch(new RegExp(`^sip:${user}@`));
    const agent = route(get(endpoint, "context") ?? "", user);
    expect(agent?.args[0]).toBe(defaults.app);
  });

  it("the carrier's DIDs reach the agent and carry the DID; other numbers are refused", () => {
    const endpoint = pjsipObject("endpoint", "carrier");
    const context = get(endpoint, "context") ?? "";
    const dids = [...new Set(steps().filter((s) => s.context === context && /^\+?\d{6,}$/.test(s.exten)).map((s) => s.exten))];
    expect(dids.length).toBeGreaterThan(0);
    for (const did of dids) {
      expect(route(context, did)?.args[0]).toBe(defaults.app);
      expect(stepsOf(context, did)[0]).toMatchObject({ app: "Set", args: ["__ACTIVE_CALL_DID=${EXTEN}"] });
    }
    for (const s of agents()) expect(s.args).toContain("did=${ACTIVE_CALL_DID}");
    expect(route(context, "999999999")).toBeUndefined();
    expect(steps().find((s) => s.context === context && matches(s.exten, "999999999"))).toMatchObject({ app: "Hangup" });
  });
});

describe("the README section on Asterisk", () => {
  const text = readmeSection("## Drop into an existing Asterisk");

  it("exists and names what the adapter creates per call and the Stasis arguments it reads", () => {
    expect(text).toContain("## Drop into an existing Asterisk");
    expect(text).not.toContain("configuration only");
    // The ids src/pbx/asterisk/channel.ts gives the bridge and the media channel.
    expect(text).toContain("mixing bridge `ac-<call id>`");
    expect(text).toContain("externalMedia channel `ac-<call id>-m`");
    expect(text).toContain("`media=rtp|websocket|audiosocket`");
    expect(existsSync(join(ROOT, "test/e2e/asterisk.test.ts"))).toBe(true);
  });

  it("shows the defaults of the Asterisk files and of [asterisk]", () => {
    const url = new URL(defaults.ari_url);
    expect(text).toContain(defaults.ari_url);
    expect(text).toContain(`bindaddr = ${url.hostname}`);
    expect(text).toContain(`bindport = ${url.port}`);
    expect(text).toContain(`[${defaults.ari_user}]`);
    expect(text).toContain(`Stasis(${defaults.app},playbook=hello.md`);
    expect(text).toContain(`transfer_context = "${defaults.transfer_context}"`);
    expect(text).toContain("asterisk -rx 'ari show apps'");
    expect(text).toContain("curl localhost:8080/ready");
    for (const m of ["rtp", "websocket", "audiosocket"]) expect(text).toContain(`media = "${m}"`);
  });

  it("sets only [asterisk] keys that exist, with valid values", () => {
    // The config schema is strict: an unknown key or a bad value in a README block fails here, as it would at start-up.
    const blocks = [...text.matchAll(/```toml\n([\s\S]*?)```/g)].map((m) => m[1] as string);
    expect(blocks.length).toBeGreaterThan(0);
    expect(tomlKeys(text).length).toBeGreaterThan(0);
    for (const b of blocks) {
      const parsed = parseToml(b.startsWith("[") ? b : `[asterisk]\n${b}`);
      const result = configSchema.safeParse(parsed);
      expect(result.error?.issues ?? []).toEqual([]);
    }
    const endpoints = [...text.matchAll(/^default_endpoint\s*=\s*"([^"]*)"/gm)].map((m) => m[1] as string);
    for (const e of endpoints) expect(pjsipObject("endpoint", e)).toBeDefined();
  });
});
