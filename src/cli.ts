/**
 * Command line -> what to do, and config overrides (spec/config.md §3). Pure: no I/O, no process access,
 * so every flag is testable. Bad flags and values become a one-line usage error (exit code 2).
 */
import { parseArgs } from "node:util";
import { ariOverride, eslOverride, handlerOverride, httpAddrOverride, type Override } from "./config.js";
import { AppError } from "./errors.js";

/** Subcommands that parse their own arguments; `--conf` is taken out for them, since they read the config too. */
export const SUBCOMMANDS = ["lint", "vad", "simulate"] as const;
export type Subcommand = (typeof SUBCOMMANDS)[number];

export type CliCommand =
  | { kind: "help" }
  | { kind: "version" }
  | { kind: "run"; confPath: string | undefined; overrides: Override[]; printConfig: boolean }
  | { kind: "subcommand"; name: Subcommand; argv: string[]; confPath: string | undefined };

export const USAGE = `Usage: active-call [run] [flags]
       active-call lint <file|dir>... [--json] [--strict] [--conf <file.toml>]
       active-call vad <file.wav> [--engine tinysilero|onnx|webrtc] [--json] [--conf <file.toml>]
       active-call simulate <playbook.md> [--text <utterance>]... [--dtmf <digits>[@<ms>]]... [--input <file.wav>]
                            [--offline] [--output <file.wav>] [--json] [--var <name>=<value>]... (see simulate --help)
       active-call version

Runs the active-call controller: the WebSocket call API, the REST API and web console, and the FreeSWITCH
(ESL) and Asterisk (ARI) adapters when enabled. With no flags and no config file it serves the WebSocket API
on 0.0.0.0:8080 with local engines, no PBX and no API keys.

Flags:
  --conf <file.toml>        config file (default: $ACTIVE_CALL_CONF, else ./config/active-call.toml if present)
  --http <addr>             listen address, host:port or port (http.addr)
  --handler <url|file.md>   inbound handler: an http(s) URL is a webhook; a .md file is the default playbook
                            (its folder becomes the playbook folder unless --playbooks is given)
  --esl <[password@]host[:port]>   enable FreeSWITCH with this inbound ESL connection (port 8021)
  --esl-listen <host:port>  where the dialplan "socket" application connects (freeswitch.outbound_listen)
  --ari <url>               enable Asterisk: http(s)://[user:password@]host[:port]
  --ari-app <name>          Stasis application name (asterisk.app)
  --ari-media <mode>        rtp | websocket | audiosocket (asterisk.media)
  --playbooks <dir>         playbook folder (paths.playbooks)
  --token <token>           API token (http.token); prefer ACTIVE_CALL_TOKEN: flags are visible in ps
  --log-level <level>       trace | debug | info | warn | error
  --log-format <fmt>        json | pretty
  --print-config            print the effective config as TOML (secrets as "***") and exit
  -v, --version             print the version and exit
  -h, --help                print this help and exit

Secrets come from the environment or ./.env: ACTIVE_CALL_TOKEN, ACTIVE_CALL_ESL_PASSWORD,
ACTIVE_CALL_ARI_PASSWORD, ACTIVE_CALL_WEBHOOK_SECRET, OPENAI_API_KEY, AZURE_OPENAI_API_KEY.
`;

const usage = (message: string) => new AppError("USAGE", message);

const FLAGS = {
  conf: { type: "string" },
  http: { type: "string" },
  handler: { type: "string" },
  esl: { type: "string" },
  "esl-listen": { type: "string" },
  ari: { type: "string" },
  "ari-app": { type: "string" },
  "ari-media": { type: "string" },
  playbooks: { type: "string" },
  token: { type: "string" },
  "log-level": { type: "string" },
  "log-format": { type: "string" },
  "print-config": { type: "boolean" },
  version: { type: "boolean", short: "v" },
  help: { type: "boolean", short: "h" },
} as const;

/** Parses `argv` (without node and script). Throws AppError USAGE with a one-line message naming the flag. */
export function parseCli(argv: readonly string[]): CliCommand {
  const args = [...argv];
  if (args[0] === "version") {
    if (args.length > 1) throw usage(`version takes no arguments, got "${args[1]}"`);
    return { kind: "version" };
  }
  const first = args[0];
  if ((SUBCOMMANDS as readonly string[]).includes(first ?? "")) {
    const { argv: rest, confPath } = takeConf(args.slice(1));
    return { kind: "subcommand", name: first as Subcommand, argv: rest, confPath };
  }
  if (first === "run") args.shift();
  else if (first !== undefined && !first.startsWith("-")) {
    throw usage(`unknown command "${first}"; commands: run, ${SUBCOMMANDS.join(", ")}, version (see --help)`);
  }

  let values: Record<string, string | boolean | undefined>;
  let positionals: string[];
  try {
    ({ values, positionals } = parseArgs({ args, options: FLAGS, strict: true, allowPositionals: true }));
  } catch (err) {
    throw usage(flagMessage(err));
  }
  if (positionals.length > 0) throw usage(`unexpected argument "${positionals[0]}"`);
  if (values.help) return { kind: "help" };
  if (values.version) return { kind: "version" };

  const str = (name: keyof typeof FLAGS) => {
    const v = values[name];
    if (typeof v !== "string") return undefined;
    if (v === "") throw usage(`--${name} needs a value`);
    return v;
  };
  const overrides: Override[] = [];
  const http = str("http");
  if (http !== undefined) overrides.push(...httpAddrOverride(http, "--http"));
  const playbooks = str("playbooks");
  const handler = str("handler");
  if (handler !== undefined) overrides.push(...handlerOverride(handler, "--handler", playbooks !== undefined));
  if (playbooks !== undefined) overrides.push({ path: ["paths", "playbooks"], value: playbooks, source: "--playbooks" });
  const esl = str("esl");
  if (esl !== undefined) overrides.push(...eslOverride(esl, "--esl"));
  const eslListen = str("esl-listen");
  if (eslListen !== undefined) overrides.push({ path: ["freeswitch", "outbound_listen"], value: eslListen, source: "--esl-listen" });
  const ari = str("ari");
  if (ari !== undefined) overrides.push(...ariOverride(ari, "--ari"));
  const simple: Array<[keyof typeof FLAGS, string[]]> = [
    ["ari-app", ["asterisk", "app"]],
    ["ari-media", ["asterisk", "media"]],
    ["token", ["http", "token"]],
    ["log-level", ["log", "level"]],
    ["log-format", ["log", "format"]],
  ];
  for (const [flag, path] of simple) {
    const v = str(flag);
    if (v !== undefined) overrides.push({ path, value: v, source: `--${flag}` });
  }
  return { kind: "run", confPath: str("conf"), overrides, printConfig: values["print-config"] === true };
}

/** Removes `--conf <path>` / `--conf=<path>` from a subcommand's arguments. */
function takeConf(argv: string[]): { argv: string[]; confPath: string | undefined } {
  const rest: string[] = [];
  let confPath: string | undefined;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i] as string;
    if (a === "--") {
      rest.push(...argv.slice(i));
      break;
    }
    if (a === "--conf") {
      confPath = argv[++i];
      if (confPath === undefined || confPath === "") throw usage("--conf needs a value");
    } else if (a.startsWith("--conf=")) {
      confPath = a.slice("--conf=".length);
      if (confPath === "") throw usage("--conf needs a value");
    } else rest.push(a);
  }
  return { argv: rest, confPath };
}

/** node:util's parse errors, reduced to one line that names the flag. */
function flagMessage(err: unknown): string {
  const e = err as { code?: string; message?: string };
  const flag = /'(-{1,2}[^' ]+)/.exec(e.message ?? "")?.[1];
  switch (e.code) {
    case "ERR_PARSE_ARGS_UNKNOWN_OPTION":
      return `unknown flag ${flag ?? ""} (see --help)`.replace("  ", " ");
    case "ERR_PARSE_ARGS_INVALID_OPTION_VALUE":
      return `${flag ?? "a flag"} ${/argument missing/.test(e.message ?? "") ? "needs a value" : "takes no value"}`;
    default:
      return (e.message ?? String(err)).split("\n")[0] as string;
  }
}
