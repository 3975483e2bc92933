/**
 * The serial pipeline's per-call audio stages (playbook.md §2.12), set up at start and closed at hangup:
 *  - `ambiance`: a file confined to the sounds folder, mixed by the leg's pacer transform with idle silence,
 *    ducked while the agent speaks;
 *  - `recorder`: caller frames tapped as they arrive (after mute, before denoise), agent frames as the leg sends
 *    them; a WAV inside the recordings folder, reported once closed;
 *  - `denoise`: the processor chain before VAD and ASR.
 * A stage that cannot start is an `error` event and the call goes on without it.
 */
import { stat } from "node:fs/promises";
import { resolve as resolvePath } from "node:path";
import type { AudioFrame } from "../../audio/index.js";
import { AppError, isAppError } from "../../errors.js";
import type { Logger } from "../../log.js";
import type { MediaLeg } from "../../media/leg.js";
import { resolveSoundFileAsync } from "../../playbook/files.js";
import type { Playbook } from "../../playbook/types.js";
import { confinedWritePath, fileNameProblem } from "../../util/paths.js";
import type { ErrorSender } from "../conversation.js";
import { Recorder, createProcessorRegistry, loadAmbiance, type ProcessorChain, type ProcessorRegistry, type ProcessorSpec } from "../audio/index.js";

export interface RecordingInfo {
  path: string;
  bytes: number;
}

export interface AudioStagesOptions {
  leg: MediaLeg;
  callId: string;
  playbook: Playbook;
  /** The playbook's file name, for `{playbook}` in the recording's name. */
  playbookName?: string | undefined;
  soundsDir?: string | undefined;
  /** Config `[recorder]`: `enabled` records every call; the others are defaults a playbook `recorder` overrides. */
  recorder?: { enabled?: boolean; file?: string; samplerate?: 8000 | 16000; stereo?: boolean } | undefined;
  recordingsDir?: string | undefined;
  processorRegistry?: ProcessorRegistry | undefined;
  wall: () => number;
  log?: Logger | undefined;
  /** The call ended: a stage that finishes starting now is closed again at once. */
  ended: () => boolean;
  error: (sender: ErrorSender, err: unknown) => void;
  /** The finished recording, before the conversation's `closed` resolves. */
  recorded: (info: RecordingInfo) => void;
}

export class AudioStages {
  private recorder: Recorder | undefined;
  private chain: ProcessorChain | undefined;
  private info: RecordingInfo | undefined;

  constructor(private readonly o: AudioStagesOptions) {}

  /** The finished recording (set once it is closed, after hangup). */
  get recording(): RecordingInfo | undefined {
    return this.info;
  }

  async start(): Promise<void> {
    await Promise.all([this.setupAmbiance(), this.setupRecorder(), this.setupDenoise()]);
  }

  /** Taps the agent audio the leg sends into the recording; returns the unhook. */
  tapAgent(): (() => void) | undefined {
    const recorder = this.recorder;
    if (!recorder || !this.o.leg.tapAgent) return undefined;
    return this.o.leg.tapAgent((frame) => recorder.writeAgent(frame));
  }

  /** A caller frame: recorded as heard on the wire (the recorder copies), then denoised in place. */
  process(frame: AudioFrame): AudioFrame {
    this.recorder?.writeCaller(frame);
    return this.chain ? this.chain.process(frame) : frame;
  }

  /** Closes the stages; the recording is reported once written. */
  async close(): Promise<void> {
    const leg = this.o.leg;
    this.chain?.close();
    this.chain = undefined;
    if (leg.setAgentTransform && !leg.closed) leg.setAgentTransform(undefined, { idleSilence: false });
    const recorder = this.recorder;
    this.recorder = undefined;
    if (!recorder) return;
    try {
      await recorder.close();
      const bytes = (await stat(recorder.path)).size;
      this.info = { path: recorder.path, bytes };
      this.o.recorded(this.info);
    } catch (err) {
      this.o.log?.warn({ err, path: recorder.path }, "recording failed");
    }
  }

  /** Playbook `ambiance`: the file (inside the sounds folder) mixed under the agent's audio, ducked while it speaks. */
  private async setupAmbiance(): Promise<void> {
    const a = this.o.playbook.settings.ambiance;
    const leg = this.o.leg;
    if (!a || a.enabled === false) return;
    const ambiance = await this.startStage("ambiance", "playbook", async () => {
      if (!leg.setAgentTransform) throw new AppError("PLAYBACK_ERROR", "this media leg cannot carry ambiance");
      const file = await resolveSoundFileAsync(a.path, this.o.soundsDir ?? ".");
      if (!file.ok || file.path === undefined) throw new AppError("BAD_REQUEST", `ambiance path ${a.path} ${file.ok ? "is a template" : file.problem}`);
      try {
        return await loadAmbiance(file.path, {
          sampleRate: leg.agentRate,
          normalLevel: a.normalLevel,
          duckLevel: a.duckLevel,
          transitionSpeed: a.transitionSpeed,
        });
      } catch (err) {
        throw isAppError(err) ? err : new AppError("PLAYBACK_ERROR", `ambiance: ${(err as Error).message}`, { cause: err });
      }
    });
    if (!ambiance || leg.closed) return;
    leg.setAgentTransform?.((pcm, speaking) => void ambiance.process(pcm, speaking), { idleSilence: true });
  }

  /** Playbook `recorder` (or config `[recorder] enabled`): a stereo WAV inside the recordings folder. */
  private async setupRecorder(): Promise<void> {
    const pb = this.o.playbook.settings.recorder;
    const cfg = this.o.recorder;
    if (!pb && !cfg?.enabled) return;
    this.recorder = await this.startStage(
      "recorder",
      "media",
      async () => {
        const dir = resolvePath(this.o.recordingsDir ?? "recordings");
        const name = recordingName(pb?.recorderFile ?? cfg?.file ?? "{id}.wav", { id: this.o.callId, playbook: this.o.playbookName, date: new Date(this.o.wall()) });
        // Real paths: a folder on the way (or the file itself) that is a symbolic link out of the folder is refused.
        const confined = await confinedWritePath(dir, name);
        if (!confined.ok) throw new AppError("BAD_REQUEST", `recording file ${JSON.stringify(name)} ${confined.problem}; it must stay inside the recordings folder`, { details: { file: name } });
        const path = confined.path;
        // The open refuses a symbolic link at the file itself (O_NOFOLLOW): one placed after the check above.
        return Recorder.open({
          path,
          sampleRate: pb?.samplerate ?? cfg?.samplerate ?? 16000,
          stereo: pb?.stereo ?? cfg?.stereo ?? true,
          logger: this.o.log,
          onError: (err) => this.o.error("media", err),
        }).catch((err: unknown) => {
          if (((err as Error).cause as NodeJS.ErrnoException | undefined)?.code !== "ELOOP") throw err;
          throw new AppError("BAD_REQUEST", `recording file ${JSON.stringify(name)} is a symbolic link (not followed for writing); it must stay inside the recordings folder`, { details: { file: name }, cause: err });
        });
      },
      (recorder) => recorder.close(),
    );
  }

  /** Playbook `denoise`: the `denoise` processor before VAD and ASR, one chain per call. */
  private async setupDenoise(): Promise<void> {
    const d = this.o.playbook.settings.denoise;
    const on = typeof d === "object" ? d.enabled !== false : d === true;
    if (!on) return;
    this.chain = await this.startStage(
      "denoise",
      "media",
      () => {
        const registry = this.o.processorRegistry ?? createProcessorRegistry();
        const specs: ProcessorSpec[] = ["denoise"];
        return registry.createChain(specs, { sampleRate: this.o.leg.callerRate, callId: this.o.callId, logger: this.o.log }, (err, processor) =>
          this.o.error("media", new AppError("INTERNAL", `audio processor ${processor} failed: ${err.message}`, { cause: err })),
        );
      },
      (chain) => chain.close(),
    );
  }

  /** Starts one stage; a failure is an error event; one that finishes starting after the call ended is closed. */
  private async startStage<T>(what: string, sender: ErrorSender, make: () => Promise<T>, close?: (stage: T) => unknown): Promise<T | undefined> {
    try {
      const stage = await make();
      if (!this.o.ended()) return stage;
      await Promise.resolve(close?.(stage)).catch(() => undefined);
    } catch (err) {
      this.o.log?.warn({ err }, `${what} not started`);
      this.o.error(sender, err);
    }
    return undefined;
  }
}

/**
 * The recording's file name from a template (playbook.md §2.12): `{id}`, `{date}` (YYYYMMDD), `{time}` (HHMMSS,
 * UTC), `{playbook}` (name without `.md`); `.wav` is appended when missing. `..` is rejected.
 */
export function recordingName(template: string, facts: { id: string; playbook?: string | undefined; date: Date }): string {
  const pad = (n: number, w = 2): string => String(n).padStart(w, "0");
  const d = facts.date;
  const values: Record<string, string> = {
    id: facts.id,
    date: `${pad(d.getUTCFullYear(), 4)}${pad(d.getUTCMonth() + 1)}${pad(d.getUTCDate())}`,
    time: `${pad(d.getUTCHours())}${pad(d.getUTCMinutes())}${pad(d.getUTCSeconds())}`,
    playbook: (facts.playbook ?? "").replace(/\.md$/i, ""),
  };
  let name = template.replace(/\{(id|date|time|playbook)\}/g, (_, k: string) => (values[k] ?? "").replace(/[\\/]/g, "_"));
  if (!/\.wav$/i.test(name)) name += ".wav";
  const problem = fileNameProblem(name);
  if (problem !== undefined) {
    throw new AppError("BAD_REQUEST", `recording file name ${JSON.stringify(template)} ${problem}; it must stay inside the recordings folder`, { details: { file: template } });
  }
  return name;
}
