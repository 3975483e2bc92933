/**
 * A small strict parser of Asterisk's configuration format, shared by the drop-in test (asterisk/) and the lab test
 * (lab/asterisk/): `[section]`, `[section](!)` (a template), `[section](tpl,...)` (inherits the templates' entries
 * first), `key = value` and `key => value`, `;` comments (`\;` is a literal semicolon). No `;-- --;` block
 * comments, no #include / #exec: none of these files need them.
 */

export interface Entry {
  key: string;
  value: string;
  line: number;
}

export interface Section {
  name: string;
  template: boolean;
  inherits: string[];
  /** The inherited entries first, then the section's own, as Asterisk builds them. */
  entries: Entry[];
  line: number;
}

export interface ConfFile {
  sections: Section[];
  /** The comment lines before the first section or entry, without the leading ";". */
  header: string[];
}

const KEY = /^([A-Za-z_][A-Za-z0-9_.()+-]*)\s*(=>|=)\s*(.*)$/;
const SECTION = /^\[([^\][]+)\](?:\(([^()]*)\))?$/;

function stripComment(raw: string): { text: string; comment: string | undefined } {
  for (let k = 0; k < raw.length; k++) {
    if (raw[k] === ";" && raw[k - 1] !== "\\") return { text: raw.slice(0, k), comment: raw.slice(k + 1) };
  }
  return { text: raw, comment: undefined };
}

export function parseConf(text: string): ConfFile {
  const sections: Section[] = [];
  const header: string[] = [];
  let current: Section | undefined;
  let started = false;
  text.split("\n").forEach((raw, idx) => {
    const line = idx + 1;
    const fail = (msg: string): never => {
      throw new Error(`line ${line}: ${msg}`);
    };
    if (raw.includes(";--") || raw.includes("--;")) fail("block comment");
    const { text: body, comment } = stripComment(raw);
    const t = body.trim();
    if (t === "") {
      if (!started && comment !== undefined) header.push(comment);
      return;
    }
    started = true;
    if (t.startsWith("#")) fail(`directive ${t.split(/\s/)[0] ?? ""}`);
    if (t.startsWith("[")) {
      const m = SECTION.exec(t) ?? fail(`bad section header ${t}`);
      const name = (m[1] as string).trim();
      if (name === "") fail("empty section name");
      const opts = m[2] === undefined ? [] : (m[2] as string).split(",").map((o) => o.trim());
      if (opts.some((o) => o === "")) fail(`empty template name in ${t}`);
      const inherits = opts.filter((o) => o !== "!");
      const entries: Entry[] = [];
      for (const name of inherits) {
        const tpl = [...sections].reverse().find((s) => s.name === name && s.template);
        if (!tpl) fail(`inherits ${name}, which is not a template defined above`);
        entries.push(...(tpl as Section).entries);
      }
      current = { name, template: opts.includes("!"), inherits, entries, line };
      sections.push(current);
      return;
    }
    const m = KEY.exec(t) ?? fail(`not a section, key = value or key => value: ${t}`);
    if (!current) fail(`${m[1] ?? ""} before any section`);
    (current as Section).entries.push({ key: m[1] as string, value: (m[3] as string).trim(), line });
  });
  if (sections.length === 0) throw new Error("no sections");
  return { sections, header };
}

export const get = (s: Section | undefined, key: string): string | undefined => s?.entries.filter((e) => e.key === key).at(-1)?.value;
export const all = (s: Section, key: string): string[] => s.entries.filter((e) => e.key === key).map((e) => e.value);
