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
import { readmeSection, tomlKeys } from "./readme-section.js";

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

/** Every dialplan extension in freeswitch/dialplan/<context>/*.xml. */
function extensions(): Extension[] {
  return files
    .filter((f) => f.startsWith("dialplan/"))
    .flatMap((file) => {
      const context = file.split("/")[1] as string;
      return [...walk(doc(file).root)]
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
        });
    });
}

/** Extension numbers (literal `^…$` expressions) to extension. */
function byNumber(context: string): Map<string, Extension> {
  const out = new Map<string, Extension>();
  for (const e of extensions()) {
    const m = /^\^([\w-]+)\$$/.exec(e.expression);
    if (e.context === context && m) out.set(m[1] as string, e);
  }
  return out;
}

function transferTarget(data: string): { ext: string; context: string } {
  const [ext, dialplan, context] = data.split(/\s+/);
  expect(dialplan).toBe("XML");
  return { ext: ext as string, context: context as string };
}

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

  it("the agent extensions live in transfer_context and the public routes transfer into it", () => {
    const agents = extensions().filter((e) => e.actions.some((a) => a.app === "park" || a.app === "socket"));
    expect(agents.map((e) => e.context)).toEqual(agents.map(() => defaults.transfer_context));
    const agentNumbers = byNumber(defaults.transfer_context);
    const transfers = extensions().filter((e) => e.context === "public").flatMap((e) => e.actions.filter((a) => a.app === "transfer"));
    expect(transfers.length).toBeGreaterThan(0);
    for (const t of transfers) {
      const { ext, context } = transferTarget(t.data);
      expect(context).toBe(defaults.transfer_context);
      const target = agentNumbers.get(ext);
      expect(target?.actions.some((a) => a.app === "park" || a.app === "socket")).toBe(true);
    }
  });

  it("the upstream PBX gateway registers and its inbound calls reach the agent", () => {
    const gw = doc("sip_profiles/external/upstream-pbx.xml").root.children.find((c) => c.name === "gateway");
    expect(gw?.attrs.name).toBe("upstream-pbx");
    const p = params(gw as XmlElement);
    expect(p.register).toBe("true");
    for (const k of ["username", "password", "realm", "proxy"]) expect(p[k]).toBeTruthy();
    const route = byNumber(p.context as string).get(p.extension as string);
    expect(route, `an extension ^${p.extension}$ in context ${p.context}`).toBeDefined();
    const t = route?.actions.find((a) => a.app === "transfer");
    const { ext, context } = transferTarget(t?.data ?? "");
    expect(byNumber(context).get(ext)?.actions.some((a) => a.app === "park")).toBe(true);
  });

  it("the carrier gateway sends DID calls to the public context, where DIDs route to the agent", () => {
    const gw = doc("sip_profiles/external/carrier.xml").root.children.find((c) => c.name === "gateway");
    expect(gw?.attrs.name).toBe("carrier");
    const p = params(gw as XmlElement);
    expect(p.extension).toBe("auto_to_user");
    const dids = extensions().filter((e) => e.context === p.context && /\d{6,}/.test(e.expression));
    expect(dids.length).toBeGreaterThan(0);
    for (const d of dids) expect(d.actions.some((a) => a.app === "transfer")).toBe(true);
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
