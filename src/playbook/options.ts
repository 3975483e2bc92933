/**
 * What the playbook parser needs from its surroundings. `PlaybookConfig` is the part of the TOML config it
 * reads; the loaded `Config` satisfies it, and tests can pass a small literal.
 */

import type { SoundFile } from "./files.js";

interface VendorDefaults {
  provider?: string;
  apiKey?: string;
  baseUrl?: string;
}

export interface PlaybookConfig {
  defaults?: {
    asr?: VendorDefaults;
    tts?: VendorDefaults;
    llm?: VendorDefaults;
    realtime?: VendorDefaults;
    vad?: { type?: string; minSilenceMs?: number };
  };
  providers?: {
    openai?: { api_key?: string };
    azure?: { api_key?: string; endpoint?: string };
  };
  paths?: { sounds?: string };
}

export interface ParseOptions {
  /** How the file is named in diagnostics (e.g. `playbooks/support.md`); its base name is the playbook name. */
  file: string;
  /** For `${NAME}` in the front matter and the OpenAI/Azure key variables. */
  env?: Readonly<Record<string, string | undefined>>;
  /** The sounds folder (`[paths] sounds`, resolved). Without it, sound files are checked for shape only. */
  soundsDir?: string;
  config?: PlaybookConfig;
  /**
   * Missing provider credentials: an error when a playbook is loaded to run calls (default), a warning in
   * `lint`, which may run where the keys are absent.
   */
  missingCredentials?: "error" | "warning";
  /**
   * Checks a sound file instead of `resolveSoundFile` (which touches the disk synchronously). The playbook store
   * resolves the files asynchronously first and answers from that, so loading a playbook for a call never
   * blocks the event loop on file I/O.
   */
  resolveSound?: (file: string) => SoundFile;
}
