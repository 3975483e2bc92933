/**
 * freeswitch/ is a drop-in configuration for an existing FreeSWITCH. Its files must be well-formed XML (FreeSWITCH
 * refuses to load the whole configuration otherwise) and must agree with the controller's [freeswitch] defaults:
 * a default changed in src/config/schema.ts without the XML (or the other way round) fails here.
 */
import { readdirSync, readFileSync } from "node:fs";
import { join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { configSchema, parseHostPort } from "../src/config/schema.js";
import { expectKeylessPlaybook } from "./keyless-playbook.js";
import { readmeSection, tomlKeys } from "./readme-section.js";
import { route, type Dialplan, type RouteResult } from "./sim/freeswitch/dialplan.js";
import { stockDialplan } from "./sim/freeswitch/drop-in.js";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const FS_DIR = join(ROOT, "freeswitch");
const defaults = configSchema.parse({}).freeswitch;

// ---------------------------------------------------------------------------------------------------------
// A small strict XML parser: elements, attributes, comments, text, an optional XML declaration. No DTDs,
// no processing instructions other than the declaration, no CDATA (none of FreeSWITCH's files need them).

interface XmlElement {
  name: string;
  attrs: Record<string, string>;
  children: XmlElement[];
  comments: string[];
}

interface XmlDoc {
  root: XmlElement;
  /** Comments before the root element. */
  leadingComments: string[];
}

const NAME = /^[A-Za-z_][A-Za-z0-9_.:-]*/;
const ENTITY = /^&(?:lt|gt|amp|quot|apos|#[0-9]+|#x[0-9A-Fa-f]+);/;

function parseXml(text: string): XmlDoc {
  let i = 0;
  const lineOf = (pos: number) => text.slice(0, pos).split("\n").length;
  const fail = (msg: string, pos = i): never => {
    throw new Error(`line ${lineOf(pos)}: ${msg}`);
  };
  const checkText = (s: string, start: number) => {
    for (let k = s.indexOf("&"); k >= 0; k = s.indexOf("&", k + 1)) {
      if (!ENTITY.test(s.slice(k))) fail("bare '&' (write &amp;)", start + k);
    }
    if (s.includes("<")) fail("'<' in text", start + s.indexOf("<"));
  };
  const comment = (): string => {
    const end = text.indexOf("-->", i + 4);
    if (end < 0) fail("unclosed comment");
    const body = text.slice(i + 4, end);
    // XML forbids "--" inside a comment; FreeSWITCH's parser ends the comment at the first "--".
    if (body.includes("--") || body.endsWith("-")) fail("'--' inside a comment", i);
    i = end + 3;
    return body;
  };
  const skipSpace = () => {
    while (i < text.length && /\s/.test(text[i] as string)) i++;
  };

  const element = (): XmlElement => {
    i++; // "<"
    const name = NAME.exec(text.slice(i))?.[0] ?? fail("bad element name");
    i += name.length;
    const el: XmlElement = { name, attrs: {}, children: [], comments: [] };
    for (;;) {
      const before = i;
      skipSpace();
      if (text.startsWith("/>", i)) {
        i += 2;
        return el;
      }
      if (text[i] === ">") {
        i++;
        break;
      }
      if (i === before) fail(`expected whitespace, '>' or '/>' in <${name}>`);
      const attr = NAME.exec(text.slice(i))?.[0] ?? fail(`bad attribute in <${name}>`);
      i += attr.length;
      skipSpace();
      if (text[i] !== "=") fail(`attribute ${attr} without '='`);
      i++;
      skipSpace();
      const quote = text[i];
      if (quote !== '"' && quote !== "'") fail(`attribute ${attr} value not quoted`);
      const end = text.indexOf(quote as string, i + 1);
      if (end < 0) fail(`unterminated value of ${attr}`);
      const value = text.slice(i + 1, end);
      checkText(value, i + 1);
      if (attr in el.attrs) fail(`duplicate attribute ${attr} in <${name}>`);
      el.attrs[attr] = value;
      i = end + 1;
    }
    for (;;) {
      const next = text.indexOf("<", i);
      if (next < 0) fail(`<${name}> is never closed`);
      checkText(text.slice(i, next), i);
      i = next;
      if (text.startsWith("<!--", i)) el.comments.push(comment());
      else if (text.startsWith("</", i)) {
        i += 2;
        const close = NAME.exec(text.slice(i))?.[0] ?? fail("bad closing tag");
        if (close !== name) fail(`</${close}> closes <${name}>`);
        i += close.length;
        skipSpace();
        if (text[i] !== ">") fail(`bad closing tag </${close}`);
        i++;
        return el;
      } else if (text.startsWith("<!", i) || text.startsWith("<?", i)) fail("DTD, CDATA or processing instruction");
      else el.children.push(element());
    }
  };

  if (text.startsWith("\uFEFF")) i = 1;
  if (text.startsWith("<?xml", i)) {
    const end = text.indexOf("?>", i);
    if (end < 0) fail("unclosed XML declaration");
    i = end + 2;
  }
  const leadingComments: string[] = [];
  let root: XmlElement | undefined;
  for (;;) {
    skipSpace();
    if (i >= text.length) break;
    if (text.startsWith("<!--", i)) {
      const c = comment();
      if (!root) leadingComments.push(c);
    } else if (text[i] === "<" && NAME.test(text.slice(i + 1))) {
      if (root) fail("more than one root element");
      root = element();
    } else fail("unexpected content outside the root element");
  }
  if (!root) throw new Error("no root element");
  return { root, leadingComments };
}

function* walk(el: XmlElement): Generator<XmlElement> {
  yield el;
  for (const c of el.children) yield* walk(c);
}

// ---------------------------------------------------------------------------------------------------------

function xmlFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = join(dir, e.name);
    if (e.isDirectory()) return xmlFiles(p);
    return /\.xml(\.snippet)?$/.test(e.name) ? [p] : [];
  });
}

const files = xmlFiles(FS_DIR).map((p) => relative(FS_DIR, p).split("\\").join("/")).sort();
const doc = (rel: string) => parseXml(readFileSync(join(FS_DIR, rel), "utf8"));
const params = (el: XmlElement) =>
  Object.fromEntries([...walk(el)].filter((e) => e.name === "param").map((e) => [e.attrs.name, e.attrs.value]));

interface Extension {
  name: string;
  file: string;
  context: string;
  expression: string;
  actions: { app: string; data: string }[];
}

/**
 * Every dialplan extension in freeswitch/dialplan/: in a <context> of its own file (dialplan/active_call.xml), or
 * in the context a stock file includes it into (dialplan/<context>/*.xml).
 */
function extensions(): Extension[] {
  return files
    .filter((f) => f.startsWith("dialplan/"))
    .flatMap((file) => {
      const root = doc(file).root;
      const inContexts = root.children.filter((c) => c.name === "context");
      const groups =
        inContexts.length > 0 ? inContexts.map((c) => ({ context: c.attrs.name ?? "", el: c })) : [{ context: file.split("/")[1] as string, el: root }];
      return groups.flatMap(({ context, el }) =>
        [...walk(el)]
        .filter((e) => e.name === "extension")
        .map((ext) => {
          const cond = ext.children.find((c) => c.name === "condition");
          return {
            name: ext.attrs.name ?? "",
            file,
            context,
            expression: cond?.attrs.expression ?? "",
            actions: (cond?.children ?? [])
              .filter((a) => a.name === "action")
              .map((a) => ({ app: a.attrs.application ?? "", data: a.attrs.data ?? "" })),
          };
        }),
      );
    });
}

// ---------------------------------------------------------------------------------------------------------
// The stock FreeSWITCH 1.10.12 configuration (../shared/fixtures/freeswitch/vanilla-conf) with our freeswitch/dialplan
// files copied where the README says (dialplan/*.xml, dialplan/default/*.xml, dialplan/public/*.xml), loaded and
// routed the way FreeSWITCH does (test/sim/freeswitch/dialplan.ts).

const stockWithDropIn = (defaultPassword?: string): Dialplan => stockDialplan({ dropIn: true, defaultPassword });
const stockOnly = (): Dialplan => stockDialplan({ dropIn: false });

/** Index of the executed application `app data` (-1 when it did not run). */
const ran = (r: RouteResult, app: string, data = "") => r.executed.findIndex((e) => e.app === app && e.data === data);

// ---------------------------------------------------------------------------------------------------------

describe("the strict XML checker", () => {
  it.each([
    ["<a><b></a></b>", "closes"],
    ["<a><b/>", "never closed"],
    ["<a/><b/>", "more than one root"],
    ["<a x='1' x='2'/>", "duplicate attribute"],
    ['<a x="1 & 2"/>', "bare '&'"],
    ["<a>1 & 2</a>", "bare '&'"],
    ["<a x=1/>", "not quoted"],
    ['<a x="1"y="2"/>', "expected whitespace"],
    ["<!-- a -- b --><a/>", "inside a comment"],
    ["<a><!-- unclosed </a>", "unclosed comment"],
    ["text<a/>", "outside the root"],
    ["<a/>trailing", "outside the root"],
    ["", "no root element"],
  ])("rejects %j", (xml, message) => {
    expect(() => parseXml(xml)).toThrow(message);
  });

  it("accepts declarations, comments, entities and self-closing tags", () => {
    const d = parseXml('<?xml version="1.0"?>\n<!-- head -->\n<a k="&lt;&amp;&#65;"><b/><!-- c --><c>t</c></a>\n');
    expect(d.leadingComments).toEqual([" head "]);
    expect(d.root.attrs.k).toBe("&lt;&amp;&#65;");
    expect(d.root.children.map((c) => c.name)).toEqual(["b", "c"]);
  });
});

describe("freeswitch/ drop-in configuration", () => {
  it("contains the expected files", () => {
    expect(files).toEqual(
      expect.arrayContaining([
        "autoload_configs/event_socket.conf.xml",
        "autoload_configs/modules.conf.xml.snippet",
        "dialplan/active_call.xml",
        "dialplan/default/50_active_call.xml",
        "dialplan/public/50_active_call.xml",
        "sip_profiles/external/carrier.xml",
        "sip_profiles/external/upstream-pbx.xml",
        "sip_profiles/internal.xml.snippet",
      ]),
    );
  });

  it.each(files)("%s is well-formed and its header says where it goes", (file) => {
    const d = doc(file);
    const header = d.leadingComments[0] ?? "";
    const target = file.replace(/\.snippet$/, "");
    expect(header).toContain(`Goes to: <conf>/${target}`);
    expect(header).toMatch(/Why:/);
  });

  it("event_socket.conf.xml matches esl_host, esl_port and esl_password", () => {
    const d = doc("autoload_configs/event_socket.conf.xml");
    expect(d.root.name).toBe("configuration");
    expect(d.root.attrs.name).toBe("event_socket.conf");
    const p = params(d.root);
    expect(p["listen-ip"]).toBe(defaults.esl_host);
    expect(p["listen-port"]).toBe(String(defaults.esl_port));
    expect(p.password).toBe(defaults.esl_password);
    expect(p["apply-inbound-acl"]).toBe("loopback.auto");
    expect(d.leadingComments[0]).toContain("esl_password");
  });

  it("modules snippet loads every module the controller needs", () => {
    const d = doc("autoload_configs/modules.conf.xml.snippet");
    const loaded = d.root.children.filter((c) => c.name === "load").map((c) => c.attrs.module);
    expect(loaded).toEqual(expect.arrayContaining(["mod_event_socket", "mod_audio_fork", "mod_sofia", "mod_dptools", "mod_commands"]));
    expect(d.leadingComments[0]).toContain("jambonz/freeswitch-modules");
    expect(d.leadingComments[0]).toContain("bidirectionalAudio_");
  });

  it("the park extension marks the call with active_call=true and parks it without answering", () => {
    const parks = extensions().filter((e) => e.actions.some((a) => a.app === "park"));
    expect(parks.length).toBeGreaterThan(0);
    for (const e of parks) {
      expect(e.actions.map((a) => `${a.app} ${a.data}`)).toContain("set active_call=true");
      expect(e.actions.at(-1)?.app).toBe("park");
      expect(e.actions.map((a) => a.app)).not.toContain("answer");
    }
  });

  it("the socket extension connects to outbound_listen with async full", () => {
    const sockets = extensions().flatMap((e) => e.actions.filter((a) => a.app === "socket").map((a) => ({ e, a })));
    expect(sockets.length).toBeGreaterThan(0);
    const listen = parseHostPort(defaults.outbound_listen);
    for (const { e, a } of sockets) {
      const [addr, ...mode] = a.data.split(/\s+/);
      expect(addr).toBe(defaults.outbound_listen);
      expect(parseHostPort(addr ?? "")).toEqual(listen);
      expect(mode.join(" ")).toBe("async full");
      expect(e.actions.map((x) => x.app)).not.toContain("answer");
    }
  });

  it("the agents live in their own context active_call; everything else transfers into it, keeping the destination", () => {
    const agents = extensions().filter((e) => e.actions.some((a) => a.app === "park" || a.app === "socket"));
    expect(agents.map((e) => `${e.context}/${e.name}`).sort()).toEqual(["active_call/active_call_park", "active_call/active_call_socket"]);
    const transfers = extensions().flatMap((e) => e.actions.filter((a) => a.app === "transfer").map((a) => ({ e, a })));
    expect(transfers.map(({ e }) => e.context).sort()).toEqual(["default", "default", "public", "public", "public"]);
    for (const { a } of transfers) expect(a.data).toBe("${destination_number} XML active_call");
  });

  it("the upstream PBX gateway registers and its inbound calls reach the agent", () => {
    const gw = doc("sip_profiles/external/upstream-pbx.xml").root.children.find((c) => c.name === "gateway");
    expect(gw?.attrs.name).toBe("upstream-pbx");
    const p = params(gw as XmlElement);
    expect(p.register).toBe("true");
    for (const k of ["username", "password", "realm", "proxy"]) expect(p[k]).toBeTruthy();
    const r = route(stockWithDropIn(), { context: p.context as string, destination: p.extension as string });
    expect(r.final).toMatchObject({ context: "active_call", extension: "active_call_park", app: "park" });
  });

  it("the carrier gateway sends DID calls to the public context, where DIDs route to the agent", () => {
    const gw = doc("sip_profiles/external/carrier.xml").root.children.find((c) => c.name === "gateway");
    expect(gw?.attrs.name).toBe("carrier");
    const p = params(gw as XmlElement);
    expect(p.extension).toBe("auto_to_user");
    const dids = extensions().filter((e) => e.context === p.context && /\d{6,}/.test(e.expression));
    expect(dids.length).toBeGreaterThan(0);
    for (const d of dids) {
      const number = /\d{6,}/.exec(d.expression)?.[0] as string;
      expect(route(stockWithDropIn(), { context: p.context as string, destination: number }).final?.context).toBe("active_call");
    }
  });

  it("the internal profile snippet adds WS and WSS bindings to sip_profile", () => {
    const d = doc("sip_profiles/internal.xml.snippet");
    expect(d.leadingComments[0]).toContain(`sip_profiles/${defaults.sip_profile}.xml`);
    const p = params(d.root);
    expect(p["ws-binding"]).toBe(":5066");
    expect(p["wss-binding"]).toBe(":7443");
    expect(d.leadingComments[0]).toContain("wss.pem");
  });
});

describe("routing through the stock configuration with the drop-in", () => {
  const dids = extensions()
    .filter((e) => e.context === "public" && /\d{6,}/.test(e.expression))
    .map((e) => ({ number: /\d{6,}/.exec(e.expression)?.[0] as string, socket: e.actions.some((a) => a.data === "active_call_mode=socket") }));

  it("the drop-in loads into the stock configuration: active_call beside default and public, included in place", () => {
    const dp = stockWithDropIn();
    expect(dp.files).toEqual(["vars.xml", "dialplan/active_call.xml", "dialplan/default.xml", "dialplan/default/50_active_call.xml", "dialplan/public.xml", "dialplan/public/50_active_call.xml"]);
    expect(dp.contexts.map((c) => c.name)).toEqual(["active_call", "default", "public"]);
    expect(dp.warnings).toEqual([]);
  });

  it("has a park DID and a socket DID to check", () => {
    expect(dids.filter((d) => d.socket).length).toBeGreaterThan(0);
    expect(dids.filter((d) => !d.socket).length).toBeGreaterThan(0);
  });

  const parksHere = (r: RouteResult) => {
    expect(r.final).toEqual({ context: "active_call", extension: "active_call_park", app: "park", data: "" });
    expect(r.variables).toMatchObject({ active_call: "true", send_silence_when_idle: "-1" });
    const park = ran(r, "park");
    expect(ran(r, "set", "active_call=true")).toBeGreaterThanOrEqual(0);
    expect(ran(r, "set", "active_call=true")).toBeLessThan(park);
    expect(ran(r, "set", "send_silence_when_idle=-1")).toBeGreaterThanOrEqual(0);
    expect(ran(r, "set", "send_silence_when_idle=-1")).toBeLessThan(park);
    expect(r.executed.map((e) => e.app)).not.toContain("answer");
  };
  const socketsHere = (r: RouteResult) => {
    expect(r.final).toEqual({ context: "active_call", extension: "active_call_socket", app: "socket", data: `${defaults.outbound_listen} async full` });
    expect(parseHostPort(defaults.outbound_listen)).toEqual(parseHostPort("127.0.0.1:8084"));
    expect(r.variables).toMatchObject({ send_silence_when_idle: "-1", active_call_mode: "socket" });
    expect(ran(r, "set", "send_silence_when_idle=-1")).toBeGreaterThanOrEqual(0);
    expect(ran(r, "set", "send_silence_when_idle=-1")).toBeLessThan(ran(r, "socket", `${defaults.outbound_listen} async full`));
    expect(r.executed.map((e) => e.app)).not.toContain("answer");
  };

  it.each(["", "+"])("each carrier DID dialled as %j from context public reaches the agent, keeping the DID, without the 10 s delay", (plus) => {
    for (const did of dids) {
      const r = route(stockWithDropIn(), { context: "public", destination: `${plus}${did.number}`, source: "mod_sofia" });
      if (did.socket) socketsHere(r);
      else parksHere(r);
      expect(r.variables.active_call_var_did).toBe(did.number);
      expect(r.trace.at(-1)?.destination).toBe(`${plus}${did.number}`);
      expect(r.trace.map((s) => s.context)).not.toContain("default");
      expect(r.sleptMs).toBe(0);
    }
  });

  it("the upstream PBX's calls (active-call-upstream in public) park, keeping the destination", () => {
    const r = route(stockWithDropIn(), { context: "public", destination: "active-call-upstream" });
    parksHere(r);
    expect(r.trace.at(-1)?.destination).toBe("active-call-upstream");
    expect(r.sleptMs).toBe(0);
  });

  it("phones dial 7700 (park) and 7701 (socket) in context default", () => {
    const park = route(stockWithDropIn(), { context: "default", destination: "7700", caller: "1000" });
    parksHere(park);
    expect(park.trace.at(-1)?.destination).toBe("7700");
    expect(park.trace.map((s) => s.extension)).toContain("active_call_agent_park");
    expect(park.variables.active_call_playbook).toBe("hello.md");
    const socket = route(stockWithDropIn(), { context: "default", destination: "7701", caller: "1000" });
    socketsHere(socket);
    expect(socket.trace.at(-1)?.destination).toBe("7701");
  });

  it("every playbook the drop-in names works without API keys", async () => {
    const named = new Set<string>();
    for (const destination of ["7700", "7701"]) {
      const pb = route(stockWithDropIn(), { context: "default", destination, caller: "1000" }).variables.active_call_playbook;
      if (pb !== undefined) named.add(pb);
    }
    expect(named.size).toBeGreaterThan(0);
    for (const pb of named) await expectKeylessPlaybook(join(ROOT, "playbooks"), pb);
  });

  it("7700 and 7701 are free in the stock default context: without the drop-in they reach only its catch-all enum extension", () => {
    // A fixed clock: the stock tod_example (weekdays 09-18, continue="true") also matches in business hours, sets
    // open=true and lets the search go on; it takes no number, so both clocks end in enum.
    const night = new Date("2026-12-06T03:00:00Z"); // a Sunday
    const businessHours = new Date("2026-12-07T10:00:00Z"); // a Monday
    for (const n of ["7700", "7701"]) {
      const r = route(stockOnly(), { context: "default", destination: n, now: night });
      expect(r.trace.map((s) => s.extension).filter((x) => x !== "global")).toEqual(["enum"]);
      const day = route(stockOnly(), { context: "default", destination: n, now: businessHours });
      expect(day.trace.map((s) => s.extension).filter((x) => x !== "global")).toEqual(["tod_example", "enum"]);
      expect(day.variables.open).toBe("true");
    }
  });

  it("takes no number from the site: stock numbers route exactly as without the drop-in (e.g. 1000, 9000, 9001)", () => {
    const literal = (dp: Dialplan, ctx: string) =>
      (dp.contexts.find((c) => c.name === ctx)?.extensions ?? [])
        .flatMap((e) => e.conditions.map((c) => c.expression))
        .flatMap((x) => [...x.matchAll(/\^(\d{3,5})\$/g)].map((m) => m[1] as string));
    const numbers = [...new Set([...literal(stockOnly(), "default"), "1000", "1019", "3000", "9000", "9001", "9664"])];
    expect(numbers.length).toBeGreaterThan(30);
    const now = new Date("2026-12-07T12:00:00Z");
    for (const destination of numbers) {
      const stock = route(stockOnly(), { context: "default", destination, now });
      const ours = route(stockWithDropIn(), { context: "default", destination, now });
      expect({ destination, final: ours.final, trace: ours.trace }).toEqual({ destination, final: stock.final, trace: stock.trace });
    }
    expect(route(stockWithDropIn(), { context: "default", destination: "1000" }).final).toMatchObject({ context: "default", extension: "Local_Extension" });
    const snom = route(stockWithDropIn(), { context: "default", destination: "9001" });
    expect(snom.trace.map((s) => s.extension)).toContain("snom-demo-2");
    expect(snom.final?.context).toBe("default");
    for (const destination of ["1000", "1019", "3500"]) {
      const pub = route(stockWithDropIn(), { context: "public", destination });
      expect(pub.trace.map((s) => s.context)).not.toContain("active_call");
    }
  });

  it("calls in context default sleep 10 s while default_password is 1234 (stock global extension), none once it is changed", () => {
    expect(stockWithDropIn().globals.default_password).toBe("1234");
    expect(route(stockWithDropIn(), { context: "default", destination: "7700" }).sleptMs).toBe(10_000);
    expect(route(stockWithDropIn(), { context: "default", destination: "7701" }).sleptMs).toBe(10_000);
    expect(route(stockWithDropIn("s3cret-pw"), { context: "default", destination: "7700" }).sleptMs).toBe(0);
    expect(route(stockWithDropIn("s3cret-pw"), { context: "default", destination: "7701" }).sleptMs).toBe(0);
    for (const did of dids) expect(route(stockWithDropIn(), { context: "public", destination: did.number }).sleptMs).toBe(0);
  });

  it("the agents' context parks any destination transferred into it, and uses the socket only with active_call_mode=socket", () => {
    parksHere(route(stockWithDropIn(), { context: "active_call", destination: "anything", variables: { active_call_mode: "park" } }));
    socketsHere(route(stockWithDropIn(), { context: "active_call", destination: "anything", variables: { active_call_mode: "socket" } }));
  });
});

describe("the README section on FreeSWITCH", () => {
  const text = readmeSection("## Drop into an existing FreeSWITCH");

  it("exists", () => {
    expect(text).toContain("## Drop into an existing FreeSWITCH");
  });

  it("names the default audio_fork_url, and every fork URL it shows has the controller's path", () => {
    const url = new URL(defaults.audio_fork_url);
    expect(text).toContain(defaults.audio_fork_url);
    const shown = text.match(/wss?:\/\/[^\s"'`|)]+\/media\/[^\s"'`|)]*/g) ?? [];
    expect(shown.length).toBeGreaterThan(0);
    for (const u of shown) expect(new URL(u.replace(/\/<.*$/, "").replace(/<[^>]*>/g, "h")).pathname).toBe(url.pathname);
  });

  it("shows the defaults of the FreeSWITCH files and of [freeswitch]", () => {
    expect(text).toContain(`${defaults.esl_host}:${defaults.esl_port}`);
    expect(text).toContain(defaults.esl_password);
    expect(text).toContain(`${defaults.outbound_listen} async full`);
    expect(text).toContain(`transfer_context = "${defaults.transfer_context}"`);
    expect(text).toContain(`sip_profile = "${defaults.sip_profile}"`);
    expect(text).toContain(`dialplan/${defaults.transfer_context}/50_active_call.xml`);
  });

  it("sets only [freeswitch] keys that exist", () => {
    const known = new Set(Object.keys(defaults));
    expect(tomlKeys(text).filter((k) => !known.has(k))).toEqual([]);
  });
});

describe("the README section on FreeSWITCH names the new dialplan layout", () => {
  const text = readmeSection("## Drop into an existing FreeSWITCH");

  it("lists the three dialplan files", () => {
    expect(text).toContain("| `dialplan/active_call.xml` | copy |");
    expect(text).toContain("| `dialplan/default/50_active_call.xml` | copy |");
    expect(text).toContain("| `dialplan/public/50_active_call.xml` | copy |");
    expect(text).toContain("own context `active_call`");
  });

  it("names the agent numbers and the socket mode variable the drop-in uses", () => {
    expect(text).toContain("**7700** = park mode, **7701** = socket mode");
    expect(text).toContain("`active_call_mode=socket`");
    expect(text).toContain("`set active_call=true`, `set send_silence_when_idle=-1`, then `park`");
    expect(text).toContain(`\`set send_silence_when_idle=-1\`, then \`socket ${defaults.outbound_listen} async full\``);
    expect(text).not.toMatch(/extension \*\*900[01]\*\*/);
  });

  it("explains the stock 10 s delay and that DIDs skip it", () => {
    expect(text).toContain("sleeps **10 s** on every call in context `default`");
    expect(text).toContain("DIDs from the `public` context go straight into `active_call` and skip it.");
  });

  it("says the numbers live in two expressions of default/50_active_call.xml", () => {
    expect(text).toContain("If your site already uses 7700 or 7701, change the two expressions in that file (one per number); nothing else names them.");
  });
});
