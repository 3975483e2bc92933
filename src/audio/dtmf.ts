/**
 * In-band DTMF (ITU-T Q.23 frequency pairs) as PCM, for the `dtmf` command on calls whose audio the controller
 * sends itself (websocket, Twilio): the tones are mixed into the agent audio, as the far end expects to hear them.
 */

const ROWS = [697, 770, 852, 941] as const;
const COLS = [1209, 1336, 1477, 1633] as const;
const KEYS = ["123A", "456B", "789C", "*0#D"] as const;

/** Each tone at -12 dBFS, so the pair peaks at -6 dBFS and never clips. */
const AMPLITUDE = 0.25 * 32767;
/** `w` in a digit string: a 500 ms pause. */
export const DTMF_PAUSE_MS = 500;

function frequencies(digit: string): [number, number] | undefined {
  for (let r = 0; r < KEYS.length; r++) {
    const c = (KEYS[r] as string).indexOf(digit);
    if (c >= 0) return [ROWS[r] as number, COLS[c] as number];
  }
  return undefined;
}

/** The tones of `digits` (`0-9 * # A-D`, `w` = pause) as mono PCM16, each digit followed by `gapMs` of silence. */
export function dtmfTones(digits: string, sampleRate: number, durationMs = 100, gapMs = 100): Int16Array {
  const toneN = Math.round((durationMs * sampleRate) / 1000);
  const gapN = Math.round((gapMs * sampleRate) / 1000);
  const pauseN = Math.round((DTMF_PAUSE_MS * sampleRate) / 1000);
  let total = 0;
  for (const d of digits) total += d === "w" ? pauseN : frequencies(d) ? toneN + gapN : 0;
  const out = new Int16Array(total);
  let at = 0;
  for (const d of digits) {
    if (d === "w") {
      at += pauseN;
      continue;
    }
    const f = frequencies(d);
    if (!f) continue;
    const w1 = (2 * Math.PI * f[0]) / sampleRate;
    const w2 = (2 * Math.PI * f[1]) / sampleRate;
    // 5 ms raised ramps at both ends keep the tone from clicking.
    const ramp = Math.min(Math.round(sampleRate / 200), toneN >> 1);
    for (let i = 0; i < toneN; i++) {
      const g = i < ramp ? i / ramp : i >= toneN - ramp ? (toneN - 1 - i) / ramp : 1;
      out[at + i] = Math.round(AMPLITUDE * g * (Math.sin(w1 * i) + Math.sin(w2 * i)));
    }
    at += toneN + gapN;
  }
  return out;
}
