/**
 * The docker-compose lab without Docker: docker-compose.yml, .env.example, config/lab.toml, the lab's FreeSWITCH
 * and Asterisk files and the project's drop-ins must agree (ports, passwords, app names, extensions, certificate
 * paths). Everything is parsed: the compose file with `yaml`, the TOML by the controller's own loader, the
 * FreeSWITCH XML by the dialplan model the drop-in test uses, Asterisk's files by the same strict parser; the two
 * shell scripts the lab runs (make-certs.sh, the Asterisk entrypoint) run here for real, with openssl.
 */
import { execFile } from "node:child_process";
import { createPrivateKey, X509Certificate } from "node:crypto";
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { afterAll, describe, expect, it } from "vitest";
import { parse as parseYaml } from "yaml";
import { XMLParser } from "fast-xml-parser";
import { loadConfig } from "../src/config/load.js";
import { PRESETS, certificatePage, presetServer } from "../web/phone-presets.js";
import { get, parseConf } from "./asterisk-conf.js";
import { loadDialplan, route } from "./sim/freeswitch/dialplan.js";
import { sharedFixtures } from "./shared-fixtures.js";

const run = promisify(execFile);
const ROOT = fileURLToPath(new URL("..", import.meta.url));
const at = (...p: string[]) => join(ROOT, ...p);
const read = (...p: string[]) => readFileSync(at(...p), "utf8");

const temps: string[] = [];
const temp = (): string => {
  const d = mkdtempSync(join(tmpdir(), "active-call-lab-"));
  temps.push(d);
  return d;
};
afterAll(() => {
  for (const d of temps) rmSync(d, { recursive: true, force: true });
});

interface Service {
  image?: string;
  build?: unknown;
  network_mode?: string;
  entrypoint?: string[];
  environment?: Record<string, string>;
  volumes?: string[];
  depends_on?: Record<string, { condition: string }>;
}
const compose = parseYaml(read("docker-compose.yml")) as { services: Record<string, Service>; volumes: Record<string, unknown> };
const svc = (name: string): Service => compose.services[name] ?? expect.fail(`no service ${name}`);

/** .env.example as name -> value (comments and blank lines skipped). */
const envExample: Record<string, string> = Object.fromEntries(
  read(".env.example")
    .split("\n")
    .filter((l) => /^[A-Z_][A-Z0-9_]*=/.test(l))
    .map((l) => [l.slice(0, l.indexOf("=")), l.slice(l.indexOf("=") + 1)]),
);

/** `${NAME}`, `${NAME:-default}`, `${NAME:?message}` in a compose string. */
const composeVars = (s: string): { name: string; op: string | undefined; rest: string }[] =>
  [...s.matchAll(/\$\{([A-Z_][A-Z0-9_]*)(?:(:-|:\?)([^}]*))?\}/g)].map((m) => ({ name: m[1] as string, op: m[2], rest: m[3] ?? "" }));

/** The value a compose string takes with .env.example as the environment. */
const interpolate = (s: string): string =>
  s.replace(/\$\{([A-Z_][A-Z0-9_]*)(?:(:-|:\?)([^}]*))?\}/g, (_m, name: string, op: string | undefined, rest: string | undefined) => {
    const v = envExample[name];
    if (v !== undefined && v !== "") return v;
    if (op === ":-") return rest ?? "";
    throw new Error(`compose needs ${name}, which .env.example leaves empty`);
  });

/** A bind mount `./src:/target[:ro]` or a named volume `name:/target[:ro]`. */
const mounts = (s: Service) =>
  (s.volumes ?? []).map((v) => {
    const [source, target, mode] = v.split(":") as [string, string, string | undefined];
    return { source, target, ro: mode === "ro", bind: source.startsWith("./") };
  });
const mountOf = (s: Service, target: string) => mounts(s).find((m) => m.target === target) ?? expect.fail(`no mount at ${target}`);

const xml = new XMLParser({ ignoreAttributes: false, attributeNamePrefix: "", isArray: (name) => name === "param" || name === "user" });
const params = (list: { name: string; value: string }[]): Map<string, string[]> => {
  const m = new Map<string, string[]>();
  for (const p of list) m.set(p.name, [...(m.get(p.name) ?? []), p.value]);
  return m;
};
const one = (m: Map<string, string[]>, name: string): string => (m.get(name) ?? expect.fail(`no param ${name}`))[0] as string;
/** The environment variable an `env-set` of `global` reads, in a FreeSWITCH file. */
const envSetOf = (text: string, global: string): string | undefined =>
  new RegExp(`<X-PRE-PROCESS\\s+cmd="env-set"\\s+data="${global}=([A-Z_][A-Z0-9_]*)"`).exec(text)?.[1];

async function labConfig(env: Record<string, string> = {}) {
  const base = Object.fromEntries(Object.entries(envExample).filter(([, v]) => v !== ""));
  return (await loadConfig({ confPath: at("config/lab.toml"), env: { ...base, ...env }, cwd: temp() })).config;
}

const FS_CONF = "/usr/local/freeswitch/conf";
let fsConfDir: string | undefined;
/** FreeSWITCH's conf dir as the lab container sees it: the image's vars.xml (stock), the lab's files, the project's. */
function freeswitchConfDir(): string {
  if (fsConfDir) return fsConfDir;
  const dir = temp();
  cpSync(join(sharedFixtures("freeswitch", "vanilla-conf"), "vars.xml"), join(dir, "vars.xml"));
  for (const m of mounts(svc("freeswitch")).filter((x) => x.bind)) {
    expect(m.target.startsWith(`${FS_CONF}/`), m.target).toBe(true);
    const dest = join(dir, m.target.slice(FS_CONF.length + 1));
    mkdirSync(join(dest, ".."), { recursive: true });
    cpSync(at(m.source), dest, { recursive: true });
  }
  return (fsConfDir = dir);
}

// Characters sed would read as syntax: Asterisk's entrypoint must carry them through unchanged.
const ARI = "ari&p|a\\ss/1";
const SIP = "sip|&\\/2";
/** /etc/asterisk as lab/asterisk/start.sh renders it, rendered once (openssl and the script take about a second). */
let asteriskOnce: ReturnType<typeof renderAsterisk> | undefined;
const renderedAsterisk = () => (asteriskOnce ??= renderAsterisk());
async function renderAsterisk() {
  const etc = temp();
  const certs = temp();
  await run("sh", [at("lab/make-certs.sh")], { env: { ...process.env, CERTS_DIR: certs } });
  await run("sh", [at("lab/asterisk/start.sh")], {
    env: { ...process.env, AST_ETC: etc, LAB_RENDER_ONLY: "1", ACTIVE_CALL_ASTERISK_DIR: at("asterisk"), LAB_ASTERISK_DIR: at("lab/asterisk"), LAB_CERTS_DIR: certs, ACTIVE_CALL_ARI_PASSWORD: ARI, LAB_SIP_PASSWORD: SIP },
  });
  return Object.assign((name: string) => parseConf(readFileSync(join(etc, name), "utf8")), { etc });
}

describe("docker-compose.yml", () => {
  it("has the four services, all on the host's network, the PBX images pinned to a version", () => {
    expect(Object.keys(compose.services).sort()).toEqual(["asterisk", "certs", "controller", "freeswitch"]);
    for (const [name, s] of Object.entries(compose.services)) expect(s.network_mode, name).toBe("host");
    for (const name of ["freeswitch", "asterisk"]) {
      const image = interpolate(svc(name).image ?? "");
      expect(image, name).toMatch(/^[a-z0-9./-]+:[0-9][\w.-]*$/);
      expect(image).not.toMatch(/:latest$/);
    }
    // The default in the file and the one .env.example offers are the same image.
    expect(composeVars(svc("freeswitch").image ?? "")[0]?.rest).toBe(envExample.FREESWITCH_IMAGE);
    expect(composeVars(svc("asterisk").image ?? "")[0]?.rest).toBe(envExample.ASTERISK_IMAGE);
    expect(svc("controller").build).toBe(".");
    expect(svc("certs").image).toBe(svc("controller").image);
  });

  it("uses exactly the variables .env.example lists, and refuses to start without each password", () => {
    const text = read("docker-compose.yml").split("\n").filter((l) => !l.trimStart().startsWith("#")).join("\n");
    const used = new Set(composeVars(text).map((v) => v.name));
    expect([...used].sort()).toEqual(Object.keys(envExample).sort());
    for (const name of ["ACTIVE_CALL_ESL_PASSWORD", "ACTIVE_CALL_ARI_PASSWORD", "LAB_SIP_PASSWORD"]) {
      const uses = composeVars(text).filter((v) => v.name === name);
      expect(uses.length, name).toBeGreaterThan(0);
      for (const u of uses) expect(u.op, name).toBe(":?");
    }
    expect(read(".gitignore").split("\n")).toContain(".env");
  });

  it("mounts only files and folders that exist, read-only into the PBXs", () => {
    for (const [name, s] of Object.entries(compose.services)) {
      for (const m of mounts(s)) {
        if (m.bind) expect(existsSync(at(m.source)), `${name}: ${m.source}`).toBe(true);
        else expect(Object.keys(compose.volumes), `${name}: volume ${m.source}`).toContain(m.source);
        if (name === "freeswitch" || name === "asterisk") expect(m.ro, `${name}: ${m.target}`).toBe(true);
      }
    }
    const conf = svc("controller").environment?.ACTIVE_CALL_CONF ?? "";
    expect(mountOf(svc("controller"), conf).source).toBe("./config/lab.toml");
    // The PBXs start after the certificate exists.
    for (const name of ["freeswitch", "asterisk"]) expect(svc(name).depends_on?.certs?.condition).toBe("service_completed_successfully");
  });
});

describe("config/lab.toml", () => {
  it("loads with the controller's own loader, both PBXs on, secrets taken from the environment", async () => {
    const c = await labConfig({ ACTIVE_CALL_ESL_PASSWORD: "esl-secret", ACTIVE_CALL_ARI_PASSWORD: "ari-secret" });
    expect(c.freeswitch.enabled).toBe(true);
    expect(c.asterisk.enabled).toBe(true);
    expect(c.freeswitch.esl_password).toBe("esl-secret");
    expect(c.asterisk.ari_password).toBe("ari-secret");
    expect(c.handler.default).toBe("hello.md");
    expect(existsSync(at("playbooks", c.handler.default))).toBe(true);
    // No secret is written in the file itself.
    expect(read("config/lab.toml")).not.toMatch(/change-me|ClueCon/);
  });

  it("fails loud, naming the key, when a password is missing", async () => {
    const env = Object.fromEntries(Object.entries(envExample).filter(([k, v]) => v !== "" && k !== "ACTIVE_CALL_ARI_PASSWORD"));
    await expect(loadConfig({ confPath: at("config/lab.toml"), env, cwd: temp() })).rejects.toThrow(/ari_password/);
  });

  it("passes every environment variable it reads through the controller service", () => {
    const text = read("config/lab.toml");
    const env = svc("controller").environment ?? {};
    for (const m of text.matchAll(/\$\{([A-Z_][A-Z0-9_]*)/g)) expect(Object.keys(env), m[1]).toContain(m[1]);
  });
});

describe("the lab's FreeSWITCH", () => {
  const fs = svc("freeswitch");
  const dialplan = loadDialplan(freeswitchConfDir());

  it("routes 7700 from context default to park with hello.md, and 7701 to the controller's outbound socket", async () => {
    const c = await labConfig();
    const park = route(dialplan, { context: "default", destination: "7700", caller: "1000" });
    expect(park.final?.app).toBe("park");
    expect(park.variables.active_call).toBe("true");
    expect(park.variables.send_silence_when_idle).toBe("-1");
    expect(park.variables.active_call_playbook).toBe("hello.md");
    const socket = route(dialplan, { context: "default", destination: "7701", caller: "1000" });
    expect(socket.final?.app).toBe("socket");
    expect(socket.final?.data).toBe(`${c.freeswitch.outbound_listen} async full`);
    expect(dialplan.warnings).toEqual([]);
    // A number nobody mapped is not taken by the agent.
    expect(route(dialplan, { context: "default", destination: "7702", caller: "1000" }).final).toBeUndefined();
  });

  it("listens for ESL where the controller connects, with the password both read from ACTIVE_CALL_ESL_PASSWORD", async () => {
    const c = await labConfig();
    const text = read("lab/freeswitch/autoload_configs/event_socket.conf.xml");
    const lab = params(xml.parse(text).configuration.settings.param);
    const dropIn = params(xml.parse(read("freeswitch/autoload_configs/event_socket.conf.xml")).configuration.settings.param);
    expect(one(lab, "listen-ip")).toBe(c.freeswitch.esl_host);
    expect(Number(one(lab, "listen-port"))).toBe(c.freeswitch.esl_port);
    expect(one(lab, "apply-inbound-acl")).toBe(one(dropIn, "apply-inbound-acl"));
    expect(one(lab, "password")).toBe("$${lab_esl_password}");
    const envName = envSetOf(text, "lab_esl_password");
    expect(envName).toBe("ACTIVE_CALL_ESL_PASSWORD");
    expect(fs.environment?.[envName as string]).toBe(svc("controller").environment?.[envName as string]);
    expect(mountOf(fs, `${FS_CONF}/autoload_configs/event_socket.conf.xml`).source).toBe("./lab/freeswitch/autoload_configs/event_socket.conf.xml");
  });

  it("has the SIP profile the controller names, with WSS on 7443 and its certificate in the certs volume", async () => {
    const c = await labConfig();
    const profile = xml.parse(read("lab/freeswitch/sip_profiles/lab.xml")).profile;
    expect(profile.name).toBe(c.freeswitch.sip_profile);
    const p = params(profile.settings.param);
    expect(one(p, "wss-binding")).toBe(":7443");
    expect(one(p, "context")).toBe("default");
    expect(one(p, "auth-calls")).toBe("true");
    const certs = mounts(fs).find((m) => m.source === "lab-certs") ?? expect.fail("no lab-certs mount");
    expect(one(p, "tls-cert-dir")).toBe(certs.target);
  });

  it("registers users 1000-1003 with LAB_SIP_PASSWORD, not the stock 1234", () => {
    const text = read("lab/freeswitch/directory/lab.xml");
    const users = xml.parse(text).include.domain.groups.group.users.user as { id: string; params: { param: { name: string; value: string }[] } }[];
    expect(users.map((u) => u.id)).toEqual(["1000", "1001", "1002", "1003"]);
    for (const u of users) expect(one(params(u.params.param), "password")).toBe("$${lab_sip_password}");
    const envName = envSetOf(text, "lab_sip_password");
    expect(envName).toBe("LAB_SIP_PASSWORD");
    expect(Object.keys(fs.environment ?? {})).toContain(envName);
  });
});

describe("the lab's certificate (lab/make-certs.sh with openssl)", () => {
  it("is for LAB_HOST, localhost and 127.0.0.1, its key matches, wss.pem holds both, and a second run keeps it", async () => {
    const dir = temp();
    const env = { ...process.env, CERTS_DIR: dir, LAB_HOST: "lab.example.test" };
    await run("sh", [at("lab/make-certs.sh")], { env });
    const cert = new X509Certificate(readFileSync(join(dir, "lab.crt")));
    expect(cert.subjectAltName?.split(", ").sort()).toEqual(["DNS:lab.example.test", "DNS:localhost", "IP Address:127.0.0.1"]);
    expect(cert.checkPrivateKey(createPrivateKey(readFileSync(join(dir, "lab.key"))))).toBe(true);
    const pem = readFileSync(join(dir, "wss.pem"), "utf8");
    expect(pem).toContain(readFileSync(join(dir, "lab.crt"), "utf8"));
    expect(pem).toContain(readFileSync(join(dir, "lab.key"), "utf8"));
    await run("sh", [at("lab/make-certs.sh")], { env: { ...env, LAB_HOST: "other.test" } });
    expect(new X509Certificate(readFileSync(join(dir, "lab.crt"))).fingerprint256).toBe(cert.fingerprint256);
  });

  it("names localhost once when LAB_HOST is localhost (the default)", async () => {
    const dir = temp();
    await run("sh", [at("lab/make-certs.sh")], { env: { ...process.env, CERTS_DIR: dir, LAB_HOST: "localhost" } });
    expect(new X509Certificate(readFileSync(join(dir, "lab.crt"))).subjectAltName?.split(", ").sort()).toEqual(["DNS:localhost", "IP Address:127.0.0.1"]);
  });

  it("takes an IPv4 address as an IP subjectAltName", async () => {
    const dir = temp();
    await run("sh", [at("lab/make-certs.sh")], { env: { ...process.env, CERTS_DIR: dir, LAB_HOST: "192.168.1.20" } });
    expect(new X509Certificate(readFileSync(join(dir, "lab.crt"))).subjectAltName).toContain("IP Address:192.168.1.20");
  });
});

describe("the lab's Asterisk (lab/asterisk/start.sh renders /etc/asterisk)", () => {
  const ast = svc("asterisk");
  const rendered = renderedAsterisk;

  it("runs the script the compose file names, with the folders it mounts", () => {
    expect(ast.entrypoint).toEqual(["/bin/sh", "/lab/start.sh"]);
    expect(mountOf(ast, "/lab").source).toBe("./lab/asterisk");
    expect(mountOf(ast, "/active-call/asterisk").source).toBe("./asterisk");
    expect(mountOf(ast, ast.environment?.LAB_CERTS_DIR ?? "").source).toBe("lab-certs");
  });

  it("puts the controller's ARI password and user into ari.conf, and ARI where lab.toml's ari_url points", async () => {
    const conf = await rendered();
    const c = await labConfig({ ACTIVE_CALL_ARI_PASSWORD: ARI });
    const user = conf("ari.conf").sections.find((s) => s.name === c.asterisk.ari_user);
    expect(get(user, "type")).toBe("user");
    expect(get(user, "password")).toBe(c.asterisk.ari_password);
    const http = conf("http.conf").sections.find((s) => s.name === "general");
    const url = new URL(c.asterisk.ari_url);
    expect(get(http, "bindaddr")).toBe(url.hostname);
    expect(get(http, "bindport")).toBe(url.port);
    expect(get(http, "tlsenable")).toBe("yes");
    expect(get(http, "tlsbindaddr")).toBe("0.0.0.0:8089");
  });

  it("gives 7001 (WebRTC, /phone) and 7002 (UDP) the lab password, on ports FreeSWITCH does not use", async () => {
    const conf = await rendered();
    const pjsip = conf("pjsip.conf").sections.filter((s) => !s.template);
    const of = (type: string, name: string) => pjsip.find((s) => s.name === name && get(s, "type") === type);
    expect(get(of("endpoint", "7001"), "webrtc")).toBe("yes");
    expect(get(of("endpoint", "7001"), "transport")).toBe("transport-wss");
    for (const u of ["7001", "7002"]) {
      expect(get(of("auth", u), "password"), u).toBe(SIP);
      expect(get(of("auth", u), "username"), u).toBe(u);
      expect(get(of("endpoint", u), "context"), u).toBe("default");
    }
    const udp = get(of("transport", "transport-udp"), "bind") ?? "";
    const fsProfile = params(xml.parse(read("lab/freeswitch/sip_profiles/lab.xml")).profile.settings.param);
    expect(udp.split(":")[1]).not.toBe(one(fsProfile, "sip-port"));
    // The upstream-PBX and carrier registrations of the drop-in (example hosts) are not in the lab.
    expect(pjsip.filter((s) => get(s, "type") === "registration")).toEqual([]);
  });

  it("copies the drop-in's dialplan, whose 9000 and 9001 enter the app lab.toml registers", async () => {
    const conf = await rendered();
    const c = await labConfig();
    const ext = conf("extensions.conf");
    const def = ext.sections.find((s) => s.name === "default") ?? expect.fail("no [default]");
    const stasis = def.entries.filter((e) => /Stasis\(/.test(e.value)).map((e) => /Stasis\(([^,)]+)/.exec(e.value)?.[1]);
    expect(stasis.length).toBeGreaterThanOrEqual(2);
    for (const app of stasis) expect(app).toBe(c.asterisk.app);
    const extens = def.entries.filter((e) => e.key === "exten").map((e) => e.value.split(",")[0]);
    expect(extens).toEqual(expect.arrayContaining(["9000", "9001"]));
    // The certificate for WSS on 8089 is where http.conf looks for it.
    const tls = get(conf("http.conf").sections.find((s) => s.name === "general"), "tlscertfile") ?? "";
    expect(tls.startsWith("/etc/asterisk/")).toBe(true);
    expect(readFileSync(join(conf.etc, tls.slice("/etc/asterisk/".length)), "utf8")).toContain("BEGIN CERTIFICATE");
  });

  it("refuses to start without the passwords", async () => {
    await expect(run("sh", [at("lab/asterisk/start.sh")], { env: { PATH: process.env.PATH, AST_ETC: temp(), LAB_RENDER_ONLY: "1" } })).rejects.toMatchObject({
      stderr: expect.stringMatching(/ACTIVE_CALL_ARI_PASSWORD/),
    });
  });
});

describe("the /phone page's presets (web/phone-presets.js) agree with the lab", () => {
  it("FreeSWITCH: the profile's WSS port, a directory user, and the numbers the dialplan routes to the agent", async () => {
    const fsp = PRESETS.freeswitch;
    const profile = params(xml.parse(read("lab/freeswitch/sip_profiles/lab.xml")).profile.settings.param);
    expect(fsp.path).toBe("");
    expect(`:${fsp.port}`).toBe(one(profile, "wss-binding"));
    const users = (xml.parse(read("lab/freeswitch/directory/lab.xml")).include.domain.groups.group.users.user as { id: string }[]).map((u) => u.id);
    expect(users).toContain(fsp.user);
    const c = await labConfig();
    const dialplan = loadDialplan(freeswitchConfDir());
    for (const e of fsp.extensions) {
      const r = route(dialplan, { context: "default", destination: e.number, caller: fsp.user });
      // The agent: parked for the controller (active_call=true), or handed to its outbound socket.
      const agent = (r.final?.app === "park" && r.variables.active_call === "true") || (r.final?.app === "socket" && r.final.data === `${c.freeswitch.outbound_listen} async full`);
      expect(agent, `${e.number}: ${JSON.stringify(r.final)}`).toBe(true);
    }
  });

  it("Asterisk: TLS port and /ws of http.conf, the WebRTC endpoint with INFO DTMF, and 9000/9001 in its context", async () => {
    const ap = PRESETS.asterisk;
    const conf = await renderedAsterisk();
    const http = conf("http.conf").sections.find((s) => s.name === "general");
    expect(get(http, "tlsenable")).toBe("yes");
    expect(get(http, "tlsbindaddr")?.split(":")[1]).toBe(String(ap.port));
    // res_http_websocket serves SIP over WebSocket at /ws on the HTTP server's ports.
    expect(ap.path).toBe("/ws");
    const pjsip = conf("pjsip.conf").sections.filter((s) => !s.template);
    const endpoint = pjsip.find((s) => s.name === ap.user && get(s, "type") === "endpoint");
    expect(get(endpoint, "webrtc")).toBe("yes");
    // The page sends DTMF as SIP INFO; Asterisk takes INFO digits only with dtmf_mode info.
    expect(get(endpoint, "dtmf_mode")).toBe("info");
    const context = get(endpoint, "context");
    const ctx = conf("extensions.conf").sections.find((s) => s.name === context) ?? expect.fail(`no [${context}]`);
    // Extensions whose priorities (`exten` and the `same` lines after it) reach Stasis().
    const stasis = new Set<string>();
    let exten = "";
    for (const e of ctx.entries) {
      if (e.key === "exten") exten = e.value.split(",")[0] as string;
      if ((e.key === "exten" || e.key === "same") && /Stasis\(/.test(e.value)) stasis.add(exten);
    }
    for (const e of ap.extensions) expect(stasis.has(e.number), e.number).toBe(true);
  });

  it("builds the addresses the README gives, and the page to open to accept the certificate", () => {
    expect(presetServer(PRESETS.freeswitch, "lab.example.test")).toBe("wss://lab.example.test:7443");
    expect(presetServer(PRESETS.asterisk, "192.168.1.20")).toBe("wss://192.168.1.20:8089/ws");
    expect(presetServer(PRESETS.asterisk, "::1")).toBe("wss://[::1]:8089/ws");
    expect(certificatePage("wss://192.168.1.20:8089/ws")).toBe("https://192.168.1.20:8089/ws");
    expect(certificatePage("ws://localhost:5066")).toBeUndefined();
    expect(read("README.md")).toContain("wss://<host>:7443");
    expect(read("README.md")).toContain("wss://<host>:8089/ws");
  });
});
