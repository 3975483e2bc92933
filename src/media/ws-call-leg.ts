/**
 * WsCallLeg: the media leg of a call that arrives over the /call WebSocket (ws-call-api.md §5).
 *
 * Caller → server: binary messages in `codec`/`sampleRate`, any length (`pushCallerBytes`). They are decoded
 * (pcm carries an odd trailing byte over; g722 keeps its state), re-chunked to 20 ms frames whose `timestampMs`
 * counts samples, not wall clock (a client may send faster than real time), and offered to a drop-oldest channel.
 *
 * Server → caller: agent audio (PCM at `outputSampleRate` = `agentRate`) is paced by an AgentPacer in frames of
 * `ptime`, at most `leadMs` ahead of real time; each frame is encoded in `outputCodec` and handed to `send`
 * (the http layer passes `ws.send`). The last frame of an utterance is padded with silence; with `sendSilence`
 * silence frames are sent while the agent is quiet, otherwise nothing. `clear()` stops the stream within one
 * frame (audio already sent, at most the lead, cannot be recalled: the client buffers it).
 *
 * No resampling here: `callerRate` and `agentRate` are the wire rates; the conversation resamples.
 */

import type { AudioFrame } from "../audio/index.js";
import type { Logger } from "../log.js";
import type { MediaClock } from "./clock.js";
import { realClock } from "./clock.js";
import { PacedLeg } from "./paced-leg.js";
import type { PacedFrameInfo } from "./pacer.js";
import type { WireCodec } from "./wire-codec.js";
import { WireDecoder, WireEncoder, checkWireFormat } from "./wire-codec.js";

export type WsPtime = 10 | 20 | 40 | 60;

export interface WsCallLegOptions {
  id: string;
  /** Caller audio codec and rate (`invite.option.codec` / `sampleRate`). */
  codec: WireCodec;
  sampleRate: number;
  /** Agent audio codec and rate (`outputCodec` / `outputSampleRate`). */
  outputCodec: WireCodec;
  outputSampleRate: number;
  /** Duration of each outbound frame (default 20). */
  ptime?: WsPtime;
  /** Send silence frames while the agent is quiet (default false). */
  sendSilence?: boolean;
  /** How far ahead of real time agent audio is sent (`[calls] ws_output_lead_ms`, default 40). */
  leadMs?: number;
  clock?: MediaClock;
  /** Sends one binary message (the http layer passes `ws.send`); the Buffer is not reused afterwards. */
  send: (frame: Buffer) => void;
  /** Caller frames buffered before the oldest are dropped (default 250 = 5 s). */
  callerCapacity?: number;
  log?: Logger;
}

const PTIMES: readonly number[] = [10, 20, 40, 60];

export class WsCallLeg extends PacedLeg {
  readonly codec: WireCodec;
  readonly outputCodec: WireCodec;
  readonly ptime: WsPtime;
  readonly sendSilence: boolean;
  /** Binary messages handed to `send` so far. */
  sentFrames = 0;

  private readonly decoder: WireDecoder;
  private readonly encoder: WireEncoder;
  private readonly sendBytes: (frame: Buffer) => void;
  private readonly log: Logger | undefined;

  constructor(options: WsCallLegOptions) {
    const input = checkWireFormat({ codec: options.codec, sampleRate: options.sampleRate });
    if (!input.ok) throw new RangeError(input.error);
    const output = checkWireFormat(
      { codec: options.outputCodec, sampleRate: options.outputSampleRate },
      { codec: "outputCodec", sampleRate: "outputSampleRate" },
    );
    if (!output.ok) throw new RangeError(output.error);
    const ptime = options.ptime ?? 20;
    if (!PTIMES.includes(ptime)) throw new RangeError(`ptime ${String(ptime)} is not supported`);
    super({
      id: options.id,
      clock: options.clock ?? realClock,
      callerRate: input.format.sampleRate,
      agentRate: output.format.sampleRate,
      agentFrameMs: ptime,
      leadMs: options.leadMs ?? 40,
      idleSilence: options.sendSilence ?? false,
      callerCapacity: options.callerCapacity,
    });
    this.codec = input.format.codec;
    this.outputCodec = output.format.codec;
    this.ptime = ptime;
    this.sendSilence = options.sendSilence ?? false;
    this.decoder = new WireDecoder(input.format);
    this.encoder = new WireEncoder(output.format);
    this.sendBytes = options.send;
    this.log = options.log;
  }

  /** One binary message from the client (any length). Ignored after close. */
  pushCallerBytes(data: Uint8Array): void {
    if (this.closed) return;
    this.pushCallerPcm(this.decoder.decode(data));
  }

  /** Emits a `dtmf` event (source `pbx`): the /call client has no in-band DTMF, but the call layer may have one. */
  pushDtmf(digit: string, durationMs?: number): void {
    this.emitDtmf(digit, durationMs, "pbx");
  }

  /** The client went away (socket closed or errored). */
  hangup(reason: "caller" | "transport" | "error" = "caller", detail?: string): void {
    this.shutdown(reason, detail);
  }

  protected sendFrame(frame: AudioFrame, _info: PacedFrameInfo): void {
    if (this.closed) return;
    const bytes = this.encoder.encode(frame.pcm);
    this.sentFrames++;
    try {
      this.sendBytes(bytes);
    } catch (err) {
      this.log?.warn({ err, legId: this.id }, "ws call leg send failed");
      throw err; // the pacer reports it as a leg `error` event
    }
  }
}
