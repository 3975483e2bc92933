/** Test helpers for the serial pipeline (not imported by app code): an energy VAD, a harness on a ManualClock. */
import { afterEach, beforeEach } from "vitest";
import { ManualClock } from "../../media/clock.js";
import { MemoryLeg } from "../../media/memory-leg.js";
import { loadPlaybook } from "../../playbook/runner/testutil.js";
import type { AsrProvider, LlmProvider, TtsProvider } from "../../providers/types.js";
import { ScriptedAsr, ScriptedLlm, ScriptedTts, tone } from "../../providers/scripted.js";
import type { VadEngine, VadStream } from "../../vad/index.js";
import type { ConversationEvent } from "../conversation.js";
import { SerialConversation, type SerialConversationOptions } from "./serial-conversation.js";

/** A VAD engine for logic tests: a chunk is speech when its mean amplitude is above 500. */
export const energyVad: VadEngine = {
  type: "webrtc",
  description: "energy (test)",
  sampleRates: [8000, 16000],
  chunkSamples: (rate) => (rate === 16000 ? 512 : 256),
  createStream(sampleRate): VadStream {
    const chunkSamples = sampleRate === 16000 ? 512 : 256;
    return {
      sampleRate,
      chunkSamples,
      stateBytes: 0,
      process(samples, offset = 0) {
        let sum = 0;
        for (let i = 0; i < chunkSamples; i++) sum += Math.abs((samples[offset + i] as number) * (samples instanceof Float32Array ? 32768 : 1));
        return sum / chunkSamples > 500 ? 0.95 : 0.02;
      },
      reset() {},
      close() {},
    };
  },
};

export const flush = async (n = 4): Promise<void> => {
  for (let i = 0; i < n; i++) await new Promise((resolve) => setImmediate(resolve));
};

/**
 * Advances a ManualClock by `ms` in 20 ms steps, pushing `audio` (else silence) into the leg as caller audio in
 * step; `stop()` true ends it early with the rest of the time passed at once (a call that hung up).
 */
export async function runCaller(leg: MemoryLeg, clock: ManualClock, ms: number, audio?: Int16Array, stop?: () => boolean): Promise<void> {
  const step = (leg.callerRate * 20) / 1000;
  for (let t = 0, i = 0; t < ms; t += 20, i += step) {
    if (stop?.()) {
      clock.advance(ms - t);
      await flush(2);
      return;
    }
    if (audio && i < audio.length) {
      const chunk = new Int16Array(step);
      chunk.set(audio.subarray(i, Math.min(audio.length, i + step)));
      leg.pushCaller(chunk);
    } else leg.pushCallerSilence(20);
    await flush(2);
    clock.advance(20);
    await flush(2);
  }
}

export interface HarnessOptions extends Partial<Omit<SerialConversationOptions, "leg" | "runner">> {
  script?: string[];
  llm?: SerialConversationOptions["llm"];
  asr?: AsrProvider;
  tts?: TtsProvider;
  playbook?: string;
}

export class Harness {
  readonly clock = new ManualClock();
  readonly leg = new MemoryLeg({ clock: this.clock, leadMs: 20 });
  readonly events: ConversationEvent[] = [];
  readonly conv: SerialConversation;

  constructor(options: HarnessOptions = {}) {
    const { script, playbook, ...rest } = options;
    const pb = loadPlaybook(playbook ?? `---\nllm: { provider: scripted }\ngreeting: { text: "Hi." }\n---\nBe brief.\n`);
    this.conv = new SerialConversation({
      leg: this.leg,
      callId: "c1",
      clock: this.clock,
      wallClock: () => this.clock.now(),
      asr: rest.asr ?? new ScriptedAsr({ script: script ?? [] }),
      tts: rest.tts ?? new ScriptedTts({ sampleRate: 16000 }),
      llm: rest.llm ?? (new ScriptedLlm() as LlmProvider),
      vad: { engine: energyVad },
      runner: {
        playbook: pb,
        call: { callId: "c1", callType: "freeswitch", direction: "inbound", startTime: new Date(0), playbook: "t.md", caller: "+1555" },
      },
      ...rest,
    });
    this.conv.events.on("event", (e) => this.events.push(e));
  }

  /** Advances the clock by `ms` in 20 ms steps, pushing `audio` (else silence) as caller audio in step. */
  async run(ms: number, audio?: Int16Array): Promise<void> {
    await runCaller(this.leg, this.clock, ms, audio, () => this.events.some((e) => e.event === "hangup"));
  }

  /** Caller speech for the energy VAD: a loud tone. */
  static speech(ms: number): Int16Array {
    return tone(ms, 16000, 200);
  }

  names(): string[] {
    return this.events.map((e) => (e.event === "trackStart" || e.event === "trackEnd" ? `${e.event}:${e.playId}` : e.event));
  }

  of<N extends ConversationEvent["event"]>(name: N): Extract<ConversationEvent, { event: N }>[] {
    return this.events.filter((e): e is Extract<ConversationEvent, { event: N }> => e.event === name);
  }
}

/**
 * Collects the unhandled rejections of each test in the file (call once at its top level): the engine must never
 * leave one, whatever a provider does.
 */
export function watchUnhandledRejections(): unknown[] {
  const rejections: unknown[] = [];
  const onRejection = (r: unknown): void => {
    rejections.push(r);
  };
  beforeEach(() => {
    rejections.length = 0;
    process.on("unhandledRejection", onRejection);
  });
  afterEach(() => {
    process.off("unhandledRejection", onRejection);
  });
  return rejections;
}

/** The PBX side of `pbx:` playback, driven by the test (FreeSWITCH/Asterisk cannot run here). */
export class TestPbxPlayer {
  readonly plays: { target: string; playId: string; finish: (status: "done" | "break") => void; start: () => void }[] = [];
  stops = 0;
  readonly pauses: boolean[] = [];
  play(target: string, playId: string) {
    let start!: () => void;
    let finish!: (status: "done" | "break") => void;
    const started = new Promise<void>((r) => (start = r));
    const ended = new Promise<{ status: "done" | "break" }>((r) => (finish = (status) => r({ status })));
    this.plays.push({ target, playId, finish, start });
    return { started, ended };
  }
  async stopPlayback(): Promise<void> {
    this.stops++;
    for (const p of this.plays) p.finish("break");
  }
  async pausePlayback(paused: boolean): Promise<void> {
    this.pauses.push(paused);
  }
}
