/**
 * A test-only model of how FreeSWITCH 1.10 loads its XML dialplan and routes a call through it, so tests can ask
 * "where does a call to X in context Y end up, with which channel variables, after how much sleep" against the
 * stock configuration plus our freeswitch/ drop-in, without a FreeSWITCH.
 *
 *   const dp = loadDialplan(confDir);                       // like reloadxml
 *   const r = route(dp, { context: "public", destination: "15551230000" });
 *   r.final      // { context, extension, app: "park", data: "" }: the application that took the call
 *   r.variables  // channel variables when it did (so "set before park" is visible)
 *   r.sleptMs    // total of the `sleep` applications executed on the way
 *   r.trace      // per extension that matched or contributed: its collected actions
 *   r.log        // the lines FreeSWITCH logs for the same call, channel name left out
 *
 * What is modelled, following src/switch_xml.c (preprocess) and mod_dialplan_xml.c (parse_exten, dialplan_hunt):
 *
 * Loading. A virtual freeswitch.xml includes vars.xml and, inside <section name="dialplan">, dialplan/*.xml. The
 * preprocessor works on text, line by line, as FreeSWITCH's does: every line first has its $${var} replaced by the
 * global (empty when unset); a line containing "<include>", "</include>" or "<?" is dropped whole; a line with
 * <X-PRE-PROCESS cmd=... data=.../> is executed and dropped, even inside an XML comment (hence the stock warning
 * "YOU CAN NOT COMMENT OUT AN X-PRE-PROCESS line"). cmd="set" sets a global in document order; cmd="include"
 * expands a glob relative to the including file's directory (the conf dir for freeswitch.xml), sorted in byte
 * order (glob(3) in the C locale), a pattern matching nothing being taken literally (and then failing to open, a
 * warning, as FreeSWITCH logs it and goes on). The result is parsed as one XML document: a malformed file is an
 * error naming its path and line. Contexts are the <context> children of the dialplan section; the first one of a
 * name wins, and an unknown context falls back to "global" like FreeSWITCH.
 *
 * Routing. Extensions in document order (from the one named like the destination when auto_hunt is true). Per
 * extension, conditions in order: time attributes (year, yday, mon, mday, week, mweek, wday, hour, minute,
 * minute-of-day, time-of-day) against `now` (UTC, or shifted by the channel variable tod_tz_offset in hours);
 * `field` is a caller-profile field (destination_number, caller_id_number, source, ...) or, when it contains "$",
 * expanded like FreeSWITCH expands channel variables (channel, then caller profile, then globals; ${fn(args)}
 * calls an API: strftime, module_exists from autoload_configs/modules.conf.xml, or the caller's `api`, any
 * other is empty); `expression` (attribute or <expression> child, CDATA allowed) is expanded and matched as PCRE
 * (translated to a JS RegExp; "/re/i" form too); no field and no time attribute is an absolute condition. On pass
 * the <action>s are collected, with $0..$n replaced by the captures when the expression has a "(" (FreeSWITCH's
 * rule); on fail the <anti-action>s are collected. break = on-false (default), on-true, always, never. An
 * extension "matches" when its last evaluated condition passed or it collected anti-actions; a match without
 * continue="true" ends the search. inline="true" actions run during routing (set/export/unset/...), loop="n"
 * repeats. Nested conditions and require-nested are followed as in parse_exten. Quirk kept from FreeSWITCH: a
 * condition with both time attributes and a field is decided by the field's regex, except that a passing time
 * with a failing regex still collects the actions.
 *
 * Execution. The collected actions run in order with their data expanded at that moment: set/export/unset/
 * multiset change channel variables, sleep adds to sleptMs, log/hash/info/eval do nothing here, transfer
 * "<dest> [XML [<context>]]" re-routes (same context when none is given; max_forwards allows 70 transfers, then
 * EXCHANGE_ROUTING_ERROR); a transfer to another dialplan (e.g. "enum") and any other application end the model
 * as `final`: that application takes the call. No matching extension is NO_ROUTE_DESTINATION; running out of
 * actions is NORMAL_CLEARING ("executed the last dialplan instruction").
 *
 * Not modelled (an error names the element if a dialplan uses them): condition regex="all|any|xor" with <regex>
 * children, date-time attributes, PCRE constructs JavaScript lacks (atomic groups, possessive quantifiers).
 */
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, isAbsolute, join, relative } from "node:path";
import { XMLParser, XMLValidator } from "fast-xml-parser";

// ------------------------------------------------------------------------------------------------ public types

export interface DialplanAction {
  app: string;
  data: string;
  inline: boolean;
  loop: number;
}

export interface DialplanCondition {
  /** Where the condition was written (relative to the conf dir). */
  file: string;
  attrs: Record<string, string>;
  /** The `expression` attribute or the text of an <expression> child. */
  expression: string;
  actions: DialplanAction[];
  antiActions: DialplanAction[];
  nested: DialplanCondition[];
}

export interface DialplanExtension {
  name: string | undefined;
  file: string;
  attrs: Record<string, string>;
  conditions: DialplanCondition[];
}

export interface DialplanContext {
  name: string;
  file: string;
  extensions: DialplanExtension[];
}

export interface Dialplan {
  confDir: string;
  /** Globals after preprocessing (core variables, then vars.xml's and any other cmd="set" in document order). */
  globals: Record<string, string>;
  /** Contexts in document order (duplicates kept; lookup takes the first). */
  contexts: DialplanContext[];
  /** Files read, in the order the preprocessor read them (relative to the conf dir). */
  files: string[];
  /** Modules loaded by autoload_configs/modules.conf.xml (for ${module_exists(...)}). */
  modules: string[];
  /** What FreeSWITCH would log as an error and go on: includes that open nothing. */
  warnings: string[];
}

export interface LoadOptions {
  /** Core globals FreeSWITCH sets before reading its configuration (defaults: conf_dir, local_ip_v4 ...). */
  globals?: Record<string, string>;
}

export interface RouteInput {
  context: string;
  destination: string;
  /** caller_id_number (and ani); caller_id_name defaults to it. */
  caller?: string;
  callerName?: string;
  /** Caller profile `source`; "mod_sofia" by default. */
  source?: string;
  /** Other caller-profile fields (network_addr, username, rdnis, ...). */
  profile?: Record<string, string>;
  /** Channel variables the call already has (sip_* and the like). */
  variables?: Record<string, string>;
  /** The switch's clock for time conditions and strftime (UTC); default now. */
  now?: Date;
  /** API functions for ${name(args)}; override the built-ins. Unknown functions expand to "". */
  api?: Record<string, (args: string) => string>;
}

export interface RouteStep {
  context: string;
  destination: string;
  extension: string;
  /** Whether the extension matched (ended the search unless continue="true"). */
  matched: boolean;
  /** Actions collected from this extension, data after $n substitution, before variable expansion. */
  actions: { app: string; data: string }[];
}

export interface RouteResult {
  trace: RouteStep[];
  /** Applications executed, data expanded, in order (the final one included). */
  executed: { context: string; extension: string; app: string; data: string }[];
  /** The application that took the call; undefined when the call was hung up by the dialplan engine. */
  final: { context: string; extension: string; app: string; data: string } | undefined;
  /** Why the engine hung up when final is undefined. */
  hangupCause: "NO_ROUTE_DESTINATION" | "NORMAL_CLEARING" | "EXCHANGE_ROUTING_ERROR" | undefined;
  /** Channel variables when the call was taken (or hung up). */
  variables: Record<string, string>;
  sleptMs: number;
  /** FreeSWITCH's log lines for this call (Processing, Regex/Date/Time/Absolute, Action, ANTI-Action, EXECUTE, Transfer). */
  log: string[];
}

// ------------------------------------------------------------------------------------------------ loading

const FREESWITCH_XML = [
  '<?xml version="1.0"?>',
  '<document type="freeswitch/xml">',
  '  <X-PRE-PROCESS cmd="include" data="vars.xml"/>',
  '  <section name="dialplan" description="Regex/XML Dialplan">',
  '    <X-PRE-PROCESS cmd="include" data="dialplan/*.xml"/>',
  "  </section>",
  "</document>",
];
const VIRTUAL = "freeswitch.xml (virtual)";
const MARK = "@dialplan-model-file ";

interface OutLine {
  text: string;
  file: string;
  line: number;
}

class Preprocessor {
  readonly out: OutLine[] = [];
  readonly files: string[] = [];
  readonly warnings: string[] = [];
  private inComment = false;
  private currentFile = "";

  constructor(
    private readonly confDir: string,
    readonly globals: Record<string, string>,
  ) {}

  run(): void {
    this.lines(FREESWITCH_XML, VIRTUAL, this.confDir, 0);
  }

  private rel(path: string): string {
    return relative(this.confDir, path).split("\\").join("/");
  }

  private mark(file: string): void {
    // File boundaries travel through the XML parser as comments, so each element knows its file. Inside a comment
    // (an include written in a comment is executed too) a marker would end that comment early: leave it out.
    if (this.inComment || file === this.currentFile) return;
    this.currentFile = file;
    this.out.push({ text: `<!--${MARK}${file}-->`, file, line: 0 });
  }

  private emit(text: string, file: string, line: number): void {
    this.out.push({ text, file, line });
    let i = 0;
    for (;;) {
      if (this.inComment) {
        const e = text.indexOf("-->", i);
        if (e < 0) return;
        this.inComment = false;
        i = e + 3;
      } else {
        const s = text.indexOf("<!--", i);
        if (s < 0) return;
        this.inComment = true;
        i = s + 4;
      }
    }
  }

  private expandGlobals(line: string): string {
    // switch_xml.c expand_vars: $${name} -> the global, "" when unset; nested braces balanced.
    let out = "";
    let i = 0;
    while (i < line.length) {
      if (line.startsWith("$${", i)) {
        const end = matchBrace(line, i + 2);
        if (end >= 0) {
          out += this.globals[line.slice(i + 3, end)] ?? "";
          i = end + 1;
          continue;
        }
      }
      out += line[i];
      i++;
    }
    return out;
  }

  private lines(lines: string[], file: string, cwd: string, rlevel: number): void {
    if (rlevel > 100) throw new Error(`${file}: includes nested more than 100 deep`);
    this.mark(file);
    lines.forEach((raw, idx) => {
      const line = this.expandGlobals(raw);
      if (raw.includes("<include>") || raw.includes("</include>") || raw.includes("<?")) return;
      const at = line.toLowerCase().indexOf("x-pre-process");
      if (at >= 0) {
        if (line[at - 1] !== "<") return;
        const cmd = /cmd\s*=\s*"([^"]*)"/i.exec(line.slice(at))?.[1];
        const data = /data\s*=\s*"([^"]*)"/i.exec(line.slice(at))?.[1];
        if (cmd === undefined || data === undefined) return;
        const kind = cmd.toLowerCase();
        if (kind === "set" || kind === "stun-set" || kind === "env-set") {
          const eq = data.indexOf("=");
          if (eq >= 0) {
            const name = data.slice(0, eq).trimEnd();
            const value = data.slice(eq + 1).trimStart();
            // stun-set asks a STUN server for the address: the model answers local_ip_v4. env-set reads the
            // environment; here only the globals given to loadDialplan.
            this.globals[name] = kind === "set" ? value : kind === "stun-set" ? (this.globals.local_ip_v4 ?? "") : (this.globals[value] ?? "");
          }
        } else if (kind === "include") {
          this.include(cwd, data, rlevel + 1);
          this.mark(file);
        } else {
          throw new Error(`${file}:${idx + 1}: X-PRE-PROCESS cmd="${cmd}" is not modelled`);
        }
        return;
      }
      this.emit(line, file, idx + 1);
    });
  }

  private include(cwd: string, pattern: string, rlevel: number): void {
    const full = isAbsolute(pattern) ? pattern : join(cwd, pattern);
    for (const path of glob(full)) {
      if (!existsSync(path)) {
        this.warnings.push(`Couldnt open ${path} (No such file or directory)`);
        continue;
      }
      if (statSync(path).isDirectory()) continue;
      const rel = this.rel(path);
      this.files.push(rel);
      this.lines(readFileSync(path, "utf8").split(/\r?\n/), rel, dirname(path), rlevel);
    }
  }
}

/** glob(3) with GLOB_NOCHECK: wildcards (* ?) in the last path component; sorted in byte order; no dot files. */
function glob(pattern: string): string[] {
  const dir = dirname(pattern);
  const base = pattern.slice(dir.length + 1);
  if (/[*?[]/.test(dir)) throw new Error(`include ${pattern}: wildcards in directories are not modelled`);
  if (!/[*?]/.test(base)) return [pattern];
  const re = new RegExp(`^${base.replace(/[.+^${}()|\\]/g, "\\$&").replace(/\*/g, ".*").replace(/\?/g, ".")}$`);
  const names = existsSync(dir) && statSync(dir).isDirectory() ? readdirSync(dir).filter((n) => !n.startsWith(".") && re.test(n)) : [];
  if (names.length === 0) return [pattern];
  return names.sort((a, b) => (Buffer.from(a) < Buffer.from(b) ? -1 : Buffer.from(a) > Buffer.from(b) ? 1 : 0)).map((n) => join(dir, n));
}

/** Index of the "}" that closes the "{" at `open`, or -1. */
function matchBrace(s: string, open: number): number {
  let depth = 0;
  for (let i = open; i < s.length; i++) {
    if (s[i] === "{") depth++;
    else if (s[i] === "}" && --depth === 0) return i;
  }
  return -1;
}

type XNode = Record<string, unknown>;

const parser = new XMLParser({
  preserveOrder: true,
  ignoreAttributes: false,
  attributeNamePrefix: "",
  commentPropName: "#comment",
  cdataPropName: "#cdata",
  trimValues: false,
  parseTagValue: false,
  parseAttributeValue: false,
  processEntities: true,
  htmlEntities: false,
});

function tagOf(n: XNode): string | undefined {
  return Object.keys(n).find((k) => k !== ":@");
}
function childrenOf(n: XNode): XNode[] {
  const t = tagOf(n);
  const c = t === undefined ? undefined : n[t];
  return Array.isArray(c) ? (c as XNode[]) : [];
}
function attrsOf(n: XNode): Record<string, string> {
  return (n[":@"] as Record<string, string> | undefined) ?? {};
}
function textOf(n: XNode): string {
  return childrenOf(n)
    .map((c) => {
      const t = tagOf(c);
      if (t === "#text") return String(c["#text"]);
      if (t === "#cdata") return childrenOf(c).map((x) => String(x["#text"] ?? "")).join("");
      return "";
    })
    .join("");
}

/** Loads the dialplan of a FreeSWITCH conf dir as `reloadxml` would. Throws on a malformed file, naming it. */
export function loadDialplan(confDir: string, options: LoadOptions = {}): Dialplan {
  const globals: Record<string, string> = {
    hostname: "localhost",
    local_ip_v4: "127.0.0.1",
    local_mask_v4: "255.0.0.0",
    local_ip_v6: "::1",
    switch_serial: "0",
    base_dir: "/usr",
    conf_dir: confDir,
    sounds_dir: "/usr/share/freeswitch/sounds",
    recordings_dir: "/var/lib/freeswitch/recordings",
    storage_dir: "/var/lib/freeswitch/storage",
    temp_dir: "/tmp",
    images_dir: "/var/lib/freeswitch/images",
    core_uuid: "00000000-0000-0000-0000-000000000000",
    ...options.globals,
  };
  const pp = new Preprocessor(confDir, globals);
  pp.run();
  const text = pp.out.map((l) => l.text).join("\n");
  const valid = XMLValidator.validate(text, { allowBooleanAttributes: false });
  if (valid !== true) {
    const at = pp.out[valid.err.line - 1];
    throw new Error(`${at?.file ?? VIRTUAL}:${at?.line ?? "?"}: malformed XML: ${valid.err.msg}`);
  }
  const doc = parser.parse(text) as XNode[];

  // The element nodes of a child list, lazily, so that the file markers met on the way (in document order) keep
  // `file` naming the file the next element came from.
  let file = VIRTUAL;
  function* track(nodes: XNode[]): Generator<XNode> {
    for (const n of nodes) {
      const t = tagOf(n);
      if (t === "#comment") {
        const c = textOf(n);
        if (c.startsWith(MARK)) file = c.slice(MARK.length);
      } else if (t !== "#text" && t !== "#cdata") yield n;
    }
  }
  const first = (nodes: XNode[], pred: (n: XNode) => boolean): XNode | undefined => {
    for (const n of track(nodes)) if (pred(n)) return n;
    return undefined;
  };

  const contexts: DialplanContext[] = [];
  const root = first(doc, (n) => tagOf(n) === "document");
  const section = root && first(childrenOf(root), (n) => tagOf(n) === "section" && attrsOf(n).name === "dialplan");
  if (!section) throw new Error(`${VIRTUAL}: no <section name="dialplan">`);

  const action = (n: XNode, where: string): DialplanAction => {
    const a = attrsOf(n);
    const txt = textOf(n);
    if (!a.application) throw new Error(`${where}: <${tagOf(n)}> without application`);
    return { app: a.application, data: txt !== "" ? txt : (a.data ?? ""), inline: isTrue(a.inline), loop: a.loop === undefined ? 1 : parseInt(a.loop, 10) || 0 };
  };
  const condition = (n: XNode, where: string): DialplanCondition => {
    const cond: DialplanCondition = { file, attrs: attrsOf(n), expression: attrsOf(n).expression ?? "", actions: [], antiActions: [], nested: [] };
    if (cond.attrs.regex !== undefined) throw new Error(`${where}: condition regex="${cond.attrs.regex}" is not modelled`);
    if (cond.attrs["date-time"] !== undefined) throw new Error(`${where}: condition date-time is not modelled`);
    let sawExpression = false;
    for (const c of track(childrenOf(n))) {
      const t = tagOf(c);
      if (t === "action") cond.actions.push(action(c, where));
      else if (t === "anti-action") cond.antiActions.push(action(c, where));
      else if (t === "condition") cond.nested.push(condition(c, `${where} > nested condition ${cond.nested.length + 1}`));
      else if (t === "expression" && !sawExpression) {
        sawExpression = true;
        cond.expression = textOf(c);
      }
    }
    if (cond.attrs.field !== undefined && !cond.expression.includes("${")) compileRegex(cond.expression, where);
    return cond;
  };

  for (const ctx of track(childrenOf(section))) {
    if (tagOf(ctx) !== "context") continue;
    const name = attrsOf(ctx).name ?? "";
    const context: DialplanContext = { name, file, extensions: [] };
    for (const ext of track(childrenOf(ctx))) {
      if (tagOf(ext) !== "extension") continue;
      const extension: DialplanExtension = { name: attrsOf(ext).name, file, attrs: attrsOf(ext), conditions: [] };
      const label = `${file}: context "${name}", extension "${extension.name ?? "UNKNOWN"}"`;
      for (const c of track(childrenOf(ext))) {
        if (tagOf(c) === "condition") extension.conditions.push(condition(c, `${label}, condition ${extension.conditions.length + 1}`));
      }
      context.extensions.push(extension);
    }
    contexts.push(context);
  }

  return { confDir, globals, contexts, files: pp.files, modules: loadedModules(confDir), warnings: pp.warnings };
}

function loadedModules(confDir: string): string[] {
  const path = join(confDir, "autoload_configs", "modules.conf.xml");
  if (!existsSync(path)) return [];
  const text = readFileSync(path, "utf8").replace(/<!--[\s\S]*?-->/g, "");
  return [...text.matchAll(/<load\s+module="([^"]+)"/g)].map((m) => m[1] as string);
}

// ------------------------------------------------------------------------------------------------ helpers

/** switch_true */
function isTrue(v: string | undefined): boolean {
  if (v === undefined) return false;
  const s = v.toLowerCase();
  if (["yes", "on", "true", "t", "enabled", "active", "allow"].includes(s)) return true;
  return /^-?\d+$/.test(s) && parseInt(s, 10) !== 0;
}

const regexCache = new Map<string, RegExp>();

/** switch_regex_perform's expression, as a JS RegExp: "/re/flags" form, (?i) prefix, \A \z \Z, (?P<n>...). */
function compileRegex(expression: string, where: string): RegExp {
  const cached = regexCache.get(expression);
  if (cached) return cached;
  let src = expression;
  let flags = "";
  if (src.startsWith("/")) {
    const end = src.lastIndexOf("/");
    if (end > 0) {
      const opts = src.slice(end + 1);
      src = src.slice(1, end);
      if (opts.includes("i")) flags += "i";
      if (opts.includes("s")) flags += "s";
    }
  }
  const inline = /^\(\?([imsx]+)\)/.exec(src);
  if (inline) {
    src = src.slice(inline[0].length);
    for (const f of inline[1] as string) if ((f === "i" || f === "s" || f === "m") && !flags.includes(f)) flags += f;
    if ((inline[1] as string).includes("x")) throw new Error(`${where}: PCRE flag (?x) is not modelled`);
  }
  if (/\(\?>|[*+?}]\+/.test(src)) throw new Error(`${where}: PCRE atomic groups / possessive quantifiers are not modelled: /${expression}/`);
  src = src.replace(/\\A/g, "^").replace(/\\[zZ]/g, "$").replace(/\(\?P</g, "(?<");
  try {
    const re = new RegExp(src, flags);
    regexCache.set(expression, re);
    return re;
  } catch (e) {
    throw new Error(`${where}: bad regular expression /${expression}/: ${(e as Error).message}`);
  }
}

/** switch_perform_substitution: $N and ${N} -> capture N ("" when absent); other "$" stay. */
function substitute(data: string, m: RegExpExecArray): string {
  return data.replace(/\$(?:(\d+)|\{(\d+)\})/g, (_all, a: string | undefined, b: string | undefined) => m[parseInt(a ?? b ?? "0", 10)] ?? "");
}

/** switch_number_cmp: "a", "a-b" (reversed range wraps), comma lists. */
function numberCmp(exp: string, val: number): boolean {
  return exp.split(",").some((part) => {
    const r = /^\s*(-?\d+)\s*(?:-\s*(-?\d+))?\s*$/.exec(part);
    if (!r) return false;
    const a = parseInt(r[1] as string, 10);
    if (r[2] === undefined) return a === val;
    const b = parseInt(r[2], 10);
    return a <= b ? val >= a && val <= b : val >= a || val <= b;
  });
}

const DOW = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"];
/** switch_dow_cmp: 1 = Sunday ... 7 = Saturday, or names; ranges wrap. */
function dowCmp(exp: string, val: number): boolean {
  const num = (s: string) => {
    const t = s.trim().toLowerCase();
    const i = DOW.indexOf(t.slice(0, 3));
    return i >= 0 ? i + 1 : parseInt(t, 10);
  };
  return exp.split(",").some((part) => {
    const [a, b] = part.split("-");
    const x = num(a ?? "");
    if (b === undefined) return x === val;
    const y = num(b);
    return x <= y ? val >= x && val <= y : val >= x || val <= y;
  });
}

interface Tm {
  year: number;
  mon: number; // 0-11
  mday: number;
  wday: number; // 0 = Sunday
  yday: number; // 0-365
  hour: number;
  min: number;
  sec: number;
}

function tmOf(now: Date, offsetHours: number): Tm {
  const d = new Date(now.getTime() + offsetHours * 3_600_000);
  const start = Date.UTC(d.getUTCFullYear(), 0, 1);
  return {
    year: d.getUTCFullYear(),
    mon: d.getUTCMonth(),
    mday: d.getUTCDate(),
    wday: d.getUTCDay(),
    yday: Math.floor((Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate()) - start) / 86_400_000),
    hour: d.getUTCHours(),
    min: d.getUTCMinutes(),
    sec: d.getUTCSeconds(),
  };
}

const TIME_ATTRS = ["year", "yday", "mon", "mday", "week", "mweek", "wday", "hour", "minute", "minute-of-day", "time-of-day"];

/** switch_xml_std_datetime_check: -1 without time attributes, else 1 when every one present matches, 0 when not. */
function datetimeCheck(attrs: Record<string, string>, tm: Tm): -1 | 0 | 1 {
  if (!TIME_ATTRS.some((a) => attrs[a] !== undefined)) return -1;
  const checks: [string, () => boolean][] = [
    ["year", () => numberCmp(attrs.year as string, tm.year)],
    ["yday", () => numberCmp(attrs.yday as string, tm.yday + 1)],
    ["mon", () => numberCmp(attrs.mon as string, tm.mon + 1)],
    ["mday", () => numberCmp(attrs.mday as string, tm.mday)],
    ["week", () => numberCmp(attrs.week as string, Math.floor(tm.yday / 7) + 1)],
    [
      "mweek",
      () => {
        const firstdow = (7 - ((tm.mday - (tm.wday + 1)) % 7)) % 7;
        return numberCmp(attrs.mweek as string, Math.ceil((tm.mday + firstdow) / 7));
      },
    ],
    ["wday", () => dowCmp(attrs.wday as string, tm.wday + 1)],
    ["hour", () => numberCmp(attrs.hour as string, tm.hour)],
    ["minute", () => numberCmp(attrs.minute as string, tm.min)],
    ["minute-of-day", () => numberCmp(attrs["minute-of-day"] as string, tm.hour * 60 + tm.min + 1)],
    [
      "time-of-day",
      () => {
        const secs = (s: string) => {
          const [h = "0", m = "0", x = "0"] = s.trim().split(":");
          return parseInt(h, 10) * 3600 + parseInt(m, 10) * 60 + parseInt(x, 10);
        };
        const now = tm.hour * 3600 + tm.min * 60 + tm.sec;
        return (attrs["time-of-day"] as string).split(",").some((r) => {
          const [a = "", b = a] = r.split("-");
          const lo = secs(a);
          const hi = secs(b);
          return lo <= hi ? now >= lo && now <= hi : now >= lo || now <= hi;
        });
      },
    ],
  ];
  for (const [attr, ok] of checks) if (attrs[attr] !== undefined && !ok()) return 0;
  return 1;
}

const WDAY = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
const WDAY_LONG = ["Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"];
const MON = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
const MON_LONG = ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October", "November", "December"];

/** strftime in UTC: the usual conversions (%a %A %b %B %d %e %H %I %M %S %T %Y %y %m %j %z %Z %F %D %p %%). */
function strftime(fmt: string, now: Date): string {
  const tm = tmOf(now, 0);
  const p2 = (n: number) => String(n).padStart(2, "0");
  const conv: Record<string, () => string> = {
    a: () => WDAY[tm.wday] as string,
    A: () => WDAY_LONG[tm.wday] as string,
    b: () => MON[tm.mon] as string,
    h: () => MON[tm.mon] as string,
    B: () => MON_LONG[tm.mon] as string,
    d: () => p2(tm.mday),
    e: () => String(tm.mday).padStart(2, " "),
    H: () => p2(tm.hour),
    I: () => p2(tm.hour % 12 === 0 ? 12 : tm.hour % 12),
    M: () => p2(tm.min),
    S: () => p2(tm.sec),
    T: () => `${p2(tm.hour)}:${p2(tm.min)}:${p2(tm.sec)}`,
    Y: () => String(tm.year),
    y: () => p2(tm.year % 100),
    m: () => p2(tm.mon + 1),
    j: () => String(tm.yday + 1).padStart(3, "0"),
    z: () => "+0000",
    Z: () => "UTC",
    F: () => `${tm.year}-${p2(tm.mon + 1)}-${p2(tm.mday)}`,
    D: () => `${p2(tm.mon + 1)}/${p2(tm.mday)}/${p2(tm.year % 100)}`,
    p: () => (tm.hour < 12 ? "AM" : "PM"),
    "%": () => "%",
  };
  return fmt.replace(/%(.)/g, (all, c: string) => conv[c]?.() ?? all);
}

// ------------------------------------------------------------------------------------------------ routing

const NOT_TAKING = new Set(["set", "export", "unset", "multiset", "log", "sleep", "hash", "info", "eval", "transfer"]);
const INLINE_OK = new Set(["set", "export", "unset", "multiset", "log", "hash", "eval"]);
const MAX_FORWARDS = 70;

class Call {
  readonly vars: Record<string, string>;
  readonly profile: Record<string, string>;
  readonly log: string[] = [];
  readonly trace: RouteStep[] = [];
  readonly executed: RouteResult["executed"] = [];
  sleptMs = 0;

  constructor(
    readonly dp: Dialplan,
    readonly input: RouteInput,
  ) {
    this.vars = { ...input.variables };
    const caller = input.caller ?? "0000000000";
    this.profile = {
      dialplan: "XML",
      username: caller,
      caller_id_name: input.callerName ?? caller,
      caller_id_number: caller,
      ani: caller,
      aniii: "",
      network_addr: "",
      rdnis: "",
      source: input.source ?? "mod_sofia",
      uuid: "00000000-0000-0000-0000-000000000001",
      chan_name: "sofia/model/caller",
      ...input.profile,
      destination_number: input.destination,
      context: input.context,
    };
  }

  get now(): Date {
    return this.input.now ?? new Date();
  }

  /** switch_channel_get_variable: channel, then caller profile, then globals. */
  lookup(name: string): string | undefined {
    return this.vars[name] ?? this.profile[name] ?? this.dp.globals[name];
  }

  api(name: string, args: string): string {
    const own = this.input.api?.[name];
    if (own) return own(args);
    if (name === "strftime") return strftime(args === "" ? "%Y-%m-%d %T" : args, this.now);
    if (name === "module_exists") return this.dp.modules.includes(args.trim()) ? "true" : "false";
    return "";
  }

  /** switch_channel_expand_variables: ${var}, ${var:offset[:length]}, ${fn(args)}, $${global}; nested expanded first. */
  expand(s: string): string {
    let out = "";
    let i = 0;
    while (i < s.length) {
      const global = s.startsWith("$${", i);
      if (global || s.startsWith("${", i)) {
        const open = i + (global ? 2 : 1);
        const close = matchBrace(s, open);
        if (close < 0) {
          out += s.slice(i);
          break;
        }
        const inner = s.slice(open + 1, close);
        const paren = inner.indexOf("(");
        if (paren > 0 && inner.endsWith(")")) {
          out += this.api(inner.slice(0, paren), this.expand(inner.slice(paren + 1, -1)));
        } else {
          const [name = "", off, len] = this.expand(inner).split(":");
          let v = (global ? this.dp.globals[name] : this.lookup(name)) ?? "";
          if (off !== undefined && /^-?\d+$/.test(off)) {
            const o = parseInt(off, 10);
            v = v.slice(o < 0 ? Math.max(0, v.length + o) : o);
            if (len !== undefined && /^\d+$/.test(len)) v = v.slice(0, parseInt(len, 10));
          }
          out += v;
        }
        i = close + 1;
      } else {
        out += s[i];
        i++;
      }
    }
    return out;
  }

  /** Runs set/export/unset/multiset; true when handled. */
  varApp(app: string, data: string): boolean {
    const assign = (kv: string, also?: (k: string, v: string) => void) => {
      const eq = kv.indexOf("=");
      if (eq < 0) return;
      const k = kv.slice(0, eq);
      const v = kv.slice(eq + 1);
      if (v === "") delete this.vars[k];
      else this.vars[k] = v;
      also?.(k, v);
    };
    switch (app) {
      case "set":
        assign(data);
        return true;
      case "export": {
        const nolocal = data.startsWith("nolocal:");
        const kv = nolocal ? data.slice("nolocal:".length) : data;
        const eq = kv.indexOf("=");
        if (eq >= 0) {
          const k = kv.slice(0, eq);
          const list = (this.vars.export_vars ?? "").split(",").filter((x) => x !== "" && x !== k);
          this.vars.export_vars = [...list, k].join(",");
          if (!nolocal) assign(kv);
        }
        return true;
      }
      case "unset":
        delete this.vars[data.trim()];
        return true;
      case "multiset": {
        const delim = data.startsWith("^^") ? data.charAt(2) : " ";
        const body = data.startsWith("^^") ? data.slice(3) : data;
        for (const kv of body.split(delim)) if (kv !== "") assign(kv);
        return true;
      }
      default:
        return false;
    }
  }
}

/** mod_dialplan_xml parse_exten; returns proceed. */
function parseConditions(call: Call, conditions: DialplanCondition[], extName: string, step: RouteStep, recur: number, requireNested: boolean): boolean {
  let proceed = false;
  const label = recur > 0 ? `${extName}_recur_${recur}` : extName;
  const collect = (kind: "Action" | "ANTI-Action", a: DialplanAction, data: string) => {
    for (let n = 0; n < a.loop; n++) {
      call.log.push(`${kind} ${a.app}(${data})${a.inline ? " INLINE" : ""}`);
      if (a.inline) {
        const expanded = call.expand(data);
        if (INLINE_OK.has(a.app)) call.varApp(a.app, expanded);
        else if (a.app !== "log" && a.app !== "hash" && a.app !== "eval") call.log.push(`This application cannot be executed inline: ${a.app}`);
      } else {
        step.actions.push({ app: a.app, data });
      }
    }
  };

  for (let ci = 0; ci < conditions.length; ci++) {
    const cond = conditions[ci] as DialplanCondition;
    const breakAttr = cond.attrs.break?.toLowerCase();
    const brk = breakAttr === "on-true" || breakAttr === "on-false" || breakAttr === "always" || breakAttr === "never" ? breakAttr : "on-false";
    const shownBreak = breakAttr === brk ? (cond.attrs.break as string) : "on-false";
    const offset = Number(call.lookup("tod_tz_offset") ?? "");
    const timeMatch = datetimeCheck(cond.attrs, tmOf(call.now, Number.isFinite(offset) ? offset : 0));
    let anti = true;
    if (timeMatch === 1) {
      call.log.push(`Date/Time Match (PASS) [${label}] break=${shownBreak}`);
      anti = false;
      proceed = true;
    } else if (timeMatch === 0) {
      call.log.push(`Date/TimeMatch (FAIL) [${label}] break=${shownBreak}`);
      proceed = false;
    }

    const expression = call.expand(cond.expression);
    const field = cond.attrs.field;
    let match: RegExpExecArray | null = null;
    if (field !== undefined) {
      const fieldData = field.includes("$") ? call.expand(field) : (call.profile[field] ?? "");
      const where = `${cond.file}: extension "${extName}", condition ${ci + 1}`;
      match = compileRegex(expression, where).exec(fieldData);
      proceed = match !== null;
      call.log.push(`Regex (${proceed ? "PASS" : "FAIL"}) [${label}] ${field}(${fieldData}) =~ /${expression}/ break=${shownBreak}`);
      if (proceed) anti = false;
    } else if (timeMatch === -1) {
      call.log.push(`Absolute Condition [${label}]`);
      anti = false;
      proceed = true;
    }

    if (anti) {
      for (const a of cond.antiActions) {
        collect("ANTI-Action", a, a.data);
        proceed = true;
      }
    } else {
      const captures = field !== undefined && expression.includes("(") && match !== null ? match : null;
      for (const a of cond.actions) collect("Action", a, captures ? substitute(a.data, captures) : a.data);
    }

    if ((!anti && brk === "on-true") || (anti && brk === "on-false") || brk === "always") break;

    if (proceed && cond.nested.length > 0) {
      if (!parseConditions(call, cond.nested, extName, step, recur + 1, cond.attrs["require-nested"] === undefined || isTrue(cond.attrs["require-nested"]))) {
        proceed = false;
        if (brk === "never") continue;
        break;
      }
    }
  }
  return requireNested ? proceed : true;
}

/** dialplan_hunt: the extensions' collected actions for the call's current destination and context. */
function hunt(call: Call): RouteStep[] | undefined {
  const { context, destination_number: dest } = call.profile as { context: string; destination_number: string };
  call.log.push(`Processing ${call.profile.caller_id_name} <${call.profile.caller_id_number}>->${dest} in context ${context}`);
  const ctx = call.dp.contexts.find((c) => c.name === context) ?? call.dp.contexts.find((c) => c.name === "global");
  if (!ctx) {
    call.log.push(`Context ${context} not found`);
    return undefined;
  }
  let exts = ctx.extensions;
  if (isTrue(call.lookup("auto_hunt"))) {
    const at = exts.findIndex((e) => e.name === dest);
    if (at >= 0) exts = exts.slice(at);
  }
  const steps: RouteStep[] = [];
  for (const ext of exts) {
    const name = ext.name ?? "UNKNOWN";
    const step: RouteStep = { context: ctx.name, destination: dest, extension: name, matched: false, actions: [] };
    step.matched = parseConditions(call, ext.conditions, name, step, 0, true);
    if (step.matched || step.actions.length > 0) steps.push(step);
    if (step.matched && !isTrue(ext.attrs.continue)) break;
  }
  return steps.some((s) => s.actions.length > 0) ? steps : undefined;
}

/** Routes one call and runs its dialplan applications until one takes the call. */
export function route(dp: Dialplan, input: RouteInput): RouteResult {
  const call = new Call(dp, input);
  const result = (final: RouteResult["final"], hangupCause: RouteResult["hangupCause"]): RouteResult => ({
    trace: call.trace,
    executed: call.executed,
    final,
    hangupCause,
    variables: { ...call.vars },
    sleptMs: call.sleptMs,
    log: call.log,
  });

  for (let forwards = MAX_FORWARDS; ; ) {
    const steps = hunt(call);
    if (!steps) {
      call.log.push("No Route, Aborting");
      return result(undefined, "NO_ROUTE_DESTINATION");
    }
    call.trace.push(...steps);
    let transferred = false;
    run: for (const step of steps) {
      for (const a of step.actions) {
        const data = call.expand(a.data);
        const done = { context: step.context, extension: step.extension, app: a.app, data };
        call.executed.push(done);
        call.log.push(`EXECUTE ${a.app}(${data})`);
        if (call.varApp(a.app, data)) continue;
        if (a.app === "sleep") {
          call.sleptMs += parseInt(data, 10) || 0;
          continue;
        }
        if (NOT_TAKING.has(a.app) && a.app !== "transfer") continue;
        if (a.app === "transfer") {
          const [dest, dialplan, context] = data.trim().split(/\s+/);
          if (dest === undefined || dest === "") continue;
          if (dialplan !== undefined && dialplan.toUpperCase() !== "XML") return result(done, undefined);
          if (--forwards <= 0) return result(undefined, "EXCHANGE_ROUTING_ERROR");
          call.profile.destination_number = dest;
          if (context !== undefined) call.profile.context = context;
          call.log.push(`Transfer to XML[${dest}@${call.profile.context}]`);
          transferred = true;
          break run;
        }
        return result(done, undefined);
      }
    }
    if (!transferred) {
      call.log.push("has executed the last dialplan instruction, hanging up.");
      return result(undefined, "NORMAL_CLEARING");
    }
  }
}
