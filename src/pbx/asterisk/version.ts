/**
 * Feature gates by Asterisk version (media-protocols.md table at the top and §3.1): chan_websocket, its JSON
 * control and MARK_MEDIA, and ARI `progress` appeared in different point releases of each supported branch.
 */

/** Per branch, the first release with the feature; a branch newer than every listed one has it. */
type Gate = Readonly<Record<number, number>>;

export const GATES = {
  chanWebsocket: { 20: 16, 21: 11, 22: 6, 23: 0 },
  jsonControl: { 20: 18, 22: 8, 23: 2 },
  markMedia: { 20: 18, 22: 8, 23: 2 },
  progress: { 20: 16, 21: 11, 22: 6, 23: 0 },
  audioSocketKinds: { 20: 17, 22: 7, 23: 1 },
} as const satisfies Record<string, Gate>;

export type AsteriskFeature = keyof typeof GATES;

/** `system.version` ("23.4.1", "certified-20.7-cert5", "GIT-master-abc") as [major, minor]; undefined if unreadable. */
export function parseAsteriskVersion(version: string | undefined): [number, number] | undefined {
  const m = /(\d+)\.(\d+)/.exec(version ?? "");
  return m ? [Number(m[1]), Number(m[2])] : undefined;
}

/** Whether an Asterisk of `version` has `feature`. An unreadable version (a git build) is assumed current. */
export function asteriskSupports(version: string | undefined, feature: AsteriskFeature): boolean {
  const v = parseAsteriskVersion(version);
  if (!v) return true;
  const gate: Gate = GATES[feature];
  const [major, minor] = v;
  const first = gate[major];
  if (first !== undefined) return minor >= first;
  const branches = Object.keys(gate).map(Number);
  return major > Math.max(...branches);
}
