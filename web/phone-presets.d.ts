// Types of web/phone-presets.js, for the tests that check the presets against the lab's files.
export interface PhonePreset {
  label: string;
  port: number;
  path: string;
  user: string;
  extensions: { number: string; what: string }[];
}
export const PRESETS: { freeswitch: PhonePreset; asterisk: PhonePreset };
export function presetServer(preset: PhonePreset, host: string): string;
export function certificatePage(server: string): string | undefined;
