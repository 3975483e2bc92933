/**
 * Values that override the config file, from environment variables and command-line flags
 * (config.md §3.1, §3.3). Each carries its source so that an invalid value names the flag or variable.
 * The flag-value parsers live here because the same values also come from the environment.
 */
import { AppError } from "../errors.js";

export interface Override {
  path: string[];
  value: unknown;
  /** e.g. `--http` or `ACTIVE_CALL_HTTP` */
  source: string;
}

const usage = (source: string, message: string) => new AppError("USAGE", `${source}: ${message}`);

/** `host:port` or a bare port (then on all interfaces). */
export function httpAddrOverride(value: string, source: string): Override[] {
  const addr = /^\d+$/.test(value) ? `0.0.0.0:${value}` : value;
  return [{ path: ["http", "addr"], value: addr, source }];
}

/** An http(s) URL makes a webhook handler; a `*.md` path picks the default playbook (and its folder). */
export function handlerOverride(value: string, source: string, playbooksGiven: boolean): Override[] {
  if (/^https?:\/\//i.test(value)) {
    if (!URL.canParse(value)) throw usage(source, `"${value}" is not a valid URL`);
    return [
      { path: ["handler", "type"], value: "webhook", source },
      { path: ["handler", "url"], value, source },
    ];
  }
  if (value.toLowerCase().endsWith(".md")) {
    const slash = Math.max(value.lastIndexOf("/"), value.lastIndexOf("\\"));
    const name = value.slice(slash + 1);
    const out: Override[] = [
      { path: ["handler", "type"], value: "playbook", source },
      { path: ["handler", "default"], value: name, source },
    ];
    if (slash >= 0 && !playbooksGiven) out.push({ path: ["paths", "playbooks"], value: value.slice(0, slash) || "/", source });
    return out;
  }
  throw new AppError("USAGE", `${source} expects an http(s) URL or a .md playbook`);
}

/** `[password@]host[:port]` enables FreeSWITCH with these ESL settings. */
export function eslOverride(value: string, source: string): Override[] {
  const at = value.lastIndexOf("@");
  const password = at >= 0 ? value.slice(0, at) : undefined;
  const hostPart = at >= 0 ? value.slice(at + 1) : value;
  const m = /^(\[[0-9A-Fa-f:.]+\]|[^:[\]\s]+)(?::(\d{1,5}))?$/.exec(hostPart);
  if (!m || (m[2] !== undefined && (Number(m[2]) < 1 || Number(m[2]) > 65535))) {
    throw usage(source, `expects [password@]host[:port], got "${value.replace(/^.*@/, "***@")}"`);
  }
  const out: Override[] = [
    { path: ["freeswitch", "enabled"], value: true, source },
    { path: ["freeswitch", "esl_host"], value: (m[1] as string).replace(/^\[|\]$/g, ""), source },
  ];
  if (m[2] !== undefined) out.push({ path: ["freeswitch", "esl_port"], value: Number(m[2]), source });
  if (password !== undefined && password !== "") out.push({ path: ["freeswitch", "esl_password"], value: password, source });
  return out;
}

/** `http(s)://[user:password@]host[:port]` enables Asterisk; credentials move out of the URL. */
export function ariOverride(value: string, source: string): Override[] {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw usage(source, "expects http(s)://[user:password@]host[:port]");
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") throw usage(source, "expects an http or https URL");
  const out: Override[] = [{ path: ["asterisk", "enabled"], value: true, source }];
  if (url.username) out.push({ path: ["asterisk", "ari_user"], value: decodeURIComponent(url.username), source });
  if (url.password) out.push({ path: ["asterisk", "ari_password"], value: decodeURIComponent(url.password), source });
  url.username = "";
  url.password = "";
  out.push({ path: ["asterisk", "ari_url"], value: url.origin + url.pathname.replace(/\/$/, ""), source });
  return out;
}

type Env = Readonly<Record<string, string | undefined>>;

/** Environment variables of config.md §3.3, in the order they apply. Empty values count as unset. */
export function environmentOverrides(env: Env): Override[] {
  const get = (name: string) => {
    const v = env[name];
    return v === undefined || v === "" ? undefined : v;
  };
  const out: Override[] = [];
  const simple: Array<[string, string[]]> = [
    ["ACTIVE_CALL_TOKEN", ["http", "token"]],
    ["ACTIVE_CALL_PLAYBOOKS", ["paths", "playbooks"]],
    ["ACTIVE_CALL_LOG_LEVEL", ["log", "level"]],
    ["ACTIVE_CALL_ESL_PASSWORD", ["freeswitch", "esl_password"]],
    ["ACTIVE_CALL_ARI_PASSWORD", ["asterisk", "ari_password"]],
    ["ACTIVE_CALL_WEBHOOK_SECRET", ["handler", "secret"]],
    ["ACTIVE_CALL_WEBHOOK_SECRET", ["posthook", "secret"]],
    ["OPENAI_API_KEY", ["providers", "openai", "api_key"]],
    ["OPENAI_BASE_URL", ["providers", "openai", "base_url"]],
    ["OPENAI_MODEL", ["defaults", "llm", "model"]],
    ["AZURE_OPENAI_API_KEY", ["providers", "azure", "api_key"]],
    ["DEEPGRAM_API_KEY", ["providers", "deepgram", "api_key"]],
    ["ELEVENLABS_API_KEY", ["providers", "elevenlabs", "api_key"]],
    ["AZURE_OPENAI_ENDPOINT", ["providers", "azure", "endpoint"]],
    ["AZURE_OPENAI_API_VERSION", ["providers", "azure", "api_version"]],
  ];
  for (const [name, path] of simple) {
    const v = get(name);
    if (v !== undefined) out.push({ path, value: v, source: name });
  }
  const http = get("ACTIVE_CALL_HTTP");
  if (http !== undefined) out.push(...httpAddrOverride(http, "ACTIVE_CALL_HTTP"));
  const handler = get("ACTIVE_CALL_HANDLER");
  if (handler !== undefined) out.push(...handlerOverride(handler, "ACTIVE_CALL_HANDLER", get("ACTIVE_CALL_PLAYBOOKS") !== undefined));
  const esl = get("ACTIVE_CALL_ESL");
  if (esl !== undefined) out.push(...eslOverride(esl, "ACTIVE_CALL_ESL"));
  const ari = get("ACTIVE_CALL_ARI");
  if (ari !== undefined) out.push(...ariOverride(ari, "ACTIVE_CALL_ARI"));
  return out;
}
