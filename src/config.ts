/**
 * The configuration: one schema for the TOML file (spec/config.md), loaded once at start.
 * This module (with src/config/) is the only reader of process.env.
 */
import { stringify } from "smol-toml";
import { loadConfig, maskSecrets, type LoadedConfig } from "./config/load.js";
import type { Override } from "./config/overrides.js";

export type { Config } from "./config/schema.js";
export { configSchema, parseHostPort, requireHostPort, PLAYBOOK_NAME } from "./config/schema.js";
export { ConfigError, loadConfig, maskSecrets, type LoadedConfig } from "./config/load.js";
export { ariOverride, eslOverride, handlerOverride, httpAddrOverride, type Override } from "./config/overrides.js";
export { expandEnv } from "./config/env-expand.js";

/** Loads the configuration for this process: its environment and working directory. */
export function loadProcessConfig(confPath: string | undefined, overrides: Override[]): Promise<LoadedConfig> {
  return loadConfig({ confPath, overrides, env: process.env, cwd: process.cwd() });
}

/** The effective config as TOML, secrets shown as "***" (`--print-config`). */
export function configToToml(loaded: LoadedConfig): string {
  const masked = maskSecrets(loaded.config) as Record<string, unknown>;
  return stringify(dropUndefined(masked));
}

function dropUndefined(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(dropUndefined);
  if (v !== null && typeof v === "object") {
    return Object.fromEntries(Object.entries(v).filter(([, x]) => x !== undefined).map(([k, x]) => [k, dropUndefined(x)]));
  }
  return v;
}

/** Whether stdout is an interactive terminal (decides the default log format). */
export const stdoutIsTty = (): boolean => process.stdout.isTTY === true;
/** NO_COLOR (https://no-color.org): any value disables colours in pretty logs. */
export const noColor = (): boolean => process.env.NO_COLOR !== undefined;
