/**
 * FreeSwitchSim: a FreeSWITCH 1.10 stand-in for whole-call tests (spec/media-protocols.md §1, §2).
 *
 * - Inbound ESL server on 127.0.0.1:<ephemeral> speaking the bytes recorded in shared/fixtures/freeswitch
 *   (greeting, auth, `event json|plain`, `api`, `bgapi`, `sendmsg`, `myevents`, `linger`, `exit`).
 * - Events are `text/event-json` (or `text/event-plain`) built from templates taken from the recorded events
 *   (same header names and order; all values strings; `_body` + `Content-Length` inside the JSON).
 * - `uuid_audio_fork … start` opens a real WebSocket to the given URL like mod_audio_fork (subprotocol
 *   `audio.drachtio.org`, metadata text frame first, then L16 LE binary frames every 20 ms in real time),
 *   answers marks with the recorded text and fires the CUSTOM mod_audio_fork::* events.
 * - `connectOutbound()` plays the dialplan's `socket host:port async full` (outbound ESL).
 *
 * Strict where the live switch is (shared/fixtures/freeswitch/live-2026-12-06):
 * - The park loop (park, `socket … async`, originate's `&park()`) reads `send_silence_when_idle` once, when the
 *   parked channel's media comes up (or when it parks with media up): set later, it changes nothing, and streamed
 *   agent audio never reaches the caller on that channel (no RTP at all; marks never answered).
 * - What the caller hears is clocked: agent audio goes into a per-channel buffer drained 20 ms a frame after an
 *   80 ms pre-buffer; `heard(uuid)` is that RTP-side timeline, marks answer `playout` when the audio before them
 *   has been heard, killAudio empties the buffer at once.
 * - A hangup closes the fork's WebSocket first; CHANNEL_HANGUP and the rest follow 2–40 ms later.
 * - uuid_transfer leaves the fork on the channel, still streaming, until `uuid_audio_fork <uuid> stop`.
 * - Events caused by api commands (CHANNEL_ANSWER, CHANNEL_UNPARK, mod_audio_fork::connect vs the first caller
 *   frames) arrive 0–`jitterMs` late under a seeded PRNG (`seed`, default FS_SIM_SEED or 1); one channel's
 *   events keep their order.
 *
 * Test-only code; nothing in src/ imports it.
 */
import { randomUUID } from "node:crypto";
import { createServer, connect as netConnect, type AddressInfo, type Server, type Socket } from "node:net";
import WebSocket from "ws";

// ---------------------------------------------------------------------------------------------------------
// Recorded constants (esl-inbound-modesl-status, esl-inbound-errors, esl-inbound-json)

export const DISCONNECT_BODY = "Disconnected, goodbye.\nSee you at ClueCon! http://www.cluecon.com/\n";
export const RECORDED_STATUS =
  "UP 0 years, 0 days, 0 hours, 4 minutes, 27 seconds, 918 milliseconds, 976 microseconds\n" +
  "FreeSWITCH (Version 1.10.12-release git a88d069 2024-08-02 21:02:27Z 64bit) is ready\n" +
  "6 session(s) since startup\n" +
  "0 session(s) - peak 1, last 5min 1 \n" +
  "0 session(s) per Sec out of max 30, peak 1, last 5min 1 \n" +
  "100 session(s) max\n" +
  "min idle cpu 0.00/97.13\n" +
  "Current Stack Size/Max 240K/8192K\n";
export const RECORDED_VERSION =
  "FreeSWITCH Version 1.10.12-release+git~20240802T210227Z~a88d069d6f~64bit (git a88d069 2024-08-02 21:02:27Z 64bit)\n";
export const RECORDED_SHOW_MODULES_AUDIO_FORK =
  "type,name,ikey,filename\n" +
  "api,uuid_audio_fork,mod_audio_fork,/usr/lib/freeswitch/install/lib/freeswitch/mod/mod_audio_fork.so\n\n1 total.\n";
export const AUDIO_FORK_USAGE =
  "-USAGE: <uuid> [start | stop | send_text | pause | resume | graceful-shutdown | stop_play ] [wss-url | path] " +
  "[mono | mixed | stereo] [8000 | 16000 | 24000 | 32000 | 64000] [bugname] [metadata] [bidirectionalAudio_enabled] " +
  "[bidirectionalAudio_stream_enabled] [bidirectionalAudio_stream_samplerate]\n";

const CORE_UUID = "184a9c7f-b61f-47b5-b349-51e08fa80f73";
const NO_SUCH_CHANNEL = "-ERR No such channel!\n";

/** Event names FS 1.10 knows (for `event` subscriptions; anything else is skipped). */
const KNOWN_EVENTS = new Set(
  (
    "CUSTOM CLONE CHANNEL_CREATE CHANNEL_DESTROY CHANNEL_STATE CHANNEL_CALLSTATE CHANNEL_ANSWER CHANNEL_HANGUP " +
    "CHANNEL_HANGUP_COMPLETE CHANNEL_EXECUTE CHANNEL_EXECUTE_COMPLETE CHANNEL_HOLD CHANNEL_UNHOLD CHANNEL_BRIDGE " +
    "CHANNEL_UNBRIDGE CHANNEL_PROGRESS CHANNEL_PROGRESS_MEDIA CHANNEL_OUTGOING CHANNEL_PARK CHANNEL_UNPARK CHANNEL_APPLICATION " +
    "CHANNEL_ORIGINATE CHANNEL_UUID API LOG INBOUND_CHAN OUTBOUND_CHAN STARTUP SHUTDOWN PUBLISH UNPUBLISH TALK NOTALK " +
    "SESSION_CRASH MODULE_LOAD MODULE_UNLOAD DTMF MESSAGE PRESENCE_IN NOTIFY_IN PRESENCE_OUT PRESENCE_PROBE MESSAGE_WAITING " +
    "MESSAGE_QUERY ROSTER CODEC BACKGROUND_JOB DETECTED_SPEECH DETECTED_TONE PRIVATE_COMMAND HEARTBEAT TRAP ADD_SCHEDULE " +
    "DEL_SCHEDULE EXE_SCHEDULE RE_SCHEDULE RELOADXML NOTIFY PHONE_FEATURE PHONE_FEATURE_SUBSCRIBE SEND_MESSAGE RECV_MESSAGE " +
    "REQUEST_PARAMS CHANNEL_DATA GENERAL COMMAND SESSION_HEARTBEAT CLIENT_DISCONNECTED SERVER_DISCONNECTED SEND_INFO " +
    "RECV_INFO RECV_RTCP_MESSAGE SEND_RTCP_MESSAGE CALL_SECURE NAT RECORD_START RECORD_STOP PLAYBACK_START PLAYBACK_STOP " +
    "CALL_UPDATE FAILURE SOCKET_DATA MEDIA_BUG_START MEDIA_BUG_STOP CONFERENCE_DATA_QUERY CONFERENCE_DATA CALL_SETUP_REQ " +
    "CALL_SETUP_RESULT CALL_DETAIL DEVICE_STATE TEXT SHUTDOWN_REQUESTED ALL"
  ).split(" "),
);

/** Event-Calling-File / Function / Line-Number as recorded. */
const CALLING: Record<string, [string, string, string]> = {
  CHANNEL_CREATE: ["switch_core_state_machine.c", "switch_core_session_run", "626"],
  CHANNEL_EXECUTE: ["switch_core_session.c", "switch_core_session_exec", "2944"],
  CHANNEL_EXECUTE_COMPLETE: ["switch_core_session.c", "switch_core_session_exec", "2967"],
  CHANNEL_PARK: ["switch_ivr.c", "switch_ivr_park", "1002"],
  CHANNEL_UNPARK: ["switch_ivr.c", "switch_ivr_park", "1213"],
  CHANNEL_ANSWER: ["switch_channel.c", "switch_channel_perform_mark_answered", "3846"],
  CHANNEL_PROGRESS: ["switch_channel.c", "switch_channel_perform_mark_ring_ready_value", "3566"],
  CHANNEL_PROGRESS_MEDIA: ["switch_channel.c", "switch_channel_perform_mark_pre_answered", "3658"],
  MEDIA_BUG_START: ["switch_core_media_bug.c", "switch_core_media_bug_add", "1014"],
  MEDIA_BUG_STOP: ["switch_core_media_bug.c", "switch_core_media_bug_destroy", "84"],
  PLAYBACK_START: ["switch_ivr_play_say.c", "switch_ivr_play_file", "1646"],
  PLAYBACK_STOP: ["switch_ivr_play_say.c", "switch_ivr_play_file", "2020"],
  DTMF: ["switch_channel.c", "switch_channel_dequeue_dtmf", "677"],
  BACKGROUND_JOB: ["mod_event_socket.c", "api_exec", "1572"],
  CHANNEL_HANGUP: ["switch_channel.c", "switch_channel_perform_hangup", "3445"],
  CHANNEL_HANGUP_COMPLETE: ["switch_core_state_machine.c", "switch_core_session_reporting_state", "943"],
  CHANNEL_DESTROY: ["switch_core_session.c", "switch_core_session_perform_destroy", "1584"],
  CHANNEL_DATA: ["mod_event_socket.c", "parse_command", "2021"],
  "mod_audio_fork::": ["mod_audio_fork.c", "responseHandler", "22"],
  "sofia::notify_refer": ["sofia.c", "sofia_handle_sip_i_notify", "1098"],
};

/** Channel variables of an inbound sofia channel (recorded CHANNEL_CREATE, values templated). */
const INBOUND_VARS: Array<[string, string]> = [
  ["direction", "inbound"],
  ["uuid", "{uuid}"],
  ["call_uuid", "{uuid}"],
  ["session_id", "{sid}"],
  ["sip_from_user", "{caller}"],
  ["sip_from_port", "15070"],
  ["sip_from_uri", "{caller}@127.0.0.1:15070"],
  ["sip_from_host", "127.0.0.1"],
  ["video_media_flow", "disabled"],
  ["text_media_flow", "disabled"],
  ["channel_name", "sofia/lo/{caller}@127.0.0.1:15070"],
  ["sip_call_id", "{sipCallId}"],
  ["sip_local_network_addr", "127.0.0.1"],
  ["sip_network_ip", "127.0.0.1"],
  ["sip_network_port", "15070"],
  ["sip_invite_stamp", "{created}"],
  ["sip_received_ip", "127.0.0.1"],
  ["sip_received_port", "15070"],
  ["sip_via_protocol", "udp"],
  ["sip_from_user_stripped", "{caller}"],
  ["sip_from_tag", "12476SIPpTag001"],
  ["sofia_profile_name", "lo"],
  ["sofia_profile_url", "sip:mod_sofia@127.0.0.1:5080"],
  ["recovery_profile_name", "lo"],
  ["sip_full_via", "SIP/2.0/UDP 127.0.0.1:15070;branch=z9hG4bK-12476-1-0"],
  ["sip_from_display", "{callerName}"],
  ["sip_full_from", '"{callerName}" <sip:{caller}@127.0.0.1:15070>;tag=12476SIPpTag001'],
  ["sip_full_to", "<sip:{callee}@127.0.0.1:5080>"],
  ["sip_req_user", "{callee}"],
  ["sip_req_port", "5080"],
  ["sip_req_uri", "{callee}@127.0.0.1:5080"],
  ["sip_req_host", "127.0.0.1"],
  ["sip_to_user", "{callee}"],
  ["sip_to_port", "5080"],
  ["sip_to_uri", "{callee}@127.0.0.1:5080"],
  ["sip_to_host", "127.0.0.1"],
  ["sip_contact_user", "{caller}"],
  ["sip_contact_port", "15070"],
  ["sip_contact_uri", "{caller}@127.0.0.1:15070"],
  ["sip_contact_host", "127.0.0.1"],
  ["sip_subject", "esl capture"],
  ["sip_via_host", "127.0.0.1"],
  ["sip_via_port", "15070"],
  ["max_forwards", "70"],
  [
    "switch_r_sdp",
    "v=0\r\no=user1 53655765 2353687637 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 26000 RTP/AVP 8 101\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-15\r\na=ptime:20\r\n",
  ],
  ["ep_codec_string", "CORE_PCM_MODULE.PCMA@8000h@20i@64000b"],
  ["rtp_use_codec_string", "PCMA,PCMU"],
  ["remote_video_media_flow", "inactive"],
  ["remote_text_media_flow", "inactive"],
  ["remote_audio_media_flow", "sendrecv"],
  ["audio_media_flow", "sendrecv"],
  ["remote_media_ip", "127.0.0.1"],
  ["remote_media_port", "26000"],
  ["rtp_audio_recv_pt", "8"],
  ["rtp_use_codec_name", "PCMA"],
  ["rtp_use_codec_rate", "8000"],
  ["rtp_use_codec_ptime", "20"],
  ["rtp_use_codec_channels", "1"],
  ["rtp_last_audio_codec_string", "PCMA@8000h@20i@1c"],
  ["read_codec", "PCMA"],
  ["original_read_codec", "PCMA"],
  ["read_rate", "8000"],
  ["original_read_rate", "8000"],
  ["write_codec", "PCMA"],
  ["write_rate", "8000"],
  ["dtmf_type", "rfc2833"],
  ["endpoint_disposition", "RECEIVED"],
];

/** Variables FS adds when the channel is answered (recorded CHANNEL_ANSWER). */
const ANSWER_VARS: Array<[string, string]> = [
  [
    "rtp_local_sdp_str",
    "v=0\r\no=FreeSWITCH 1795445159 1795445160 IN IP4 127.0.0.1\r\ns=FreeSWITCH\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 24026 RTP/AVP 8 101\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-15\r\na=ptime:20\r\na=sendrecv\r\n",
  ],
  ["local_media_ip", "127.0.0.1"],
  ["local_media_port", "24026"],
  ["advertised_media_ip", "127.0.0.1"],
  ["rtp_use_pt", "8"],
  ["rtp_use_ssrc", "722374185"],
  ["rtp_2833_send_payload", "101"],
  ["rtp_2833_recv_payload", "101"],
];

const CAUSE_Q850: Record<string, string> = {
  NORMAL_CLEARING: "16",
  USER_BUSY: "17",
  NO_USER_RESPONSE: "18",
  NO_ANSWER: "19",
  CALL_REJECTED: "21",
  UNALLOCATED_NUMBER: "1",
  ORIGINATOR_CANCEL: "487",
  BLIND_TRANSFER: "0",
  NORMAL_TEMPORARY_FAILURE: "41",
};

/** SIP code → cause, as mod_sofia maps `respond` codes. */
function sipToCause(code: number): string {
  const m: Record<number, string> = {
    404: "UNALLOCATED_NUMBER",
    408: "RECOVERY_ON_TIMER_EXPIRE",
    480: "NO_USER_RESPONSE",
    486: "USER_BUSY",
    487: "ORIGINATOR_CANCEL",
    488: "INCOMPATIBLE_DESTINATION",
    503: "NORMAL_TEMPORARY_FAILURE",
    603: "CALL_REJECTED",
  };
  return m[code] ?? "NORMAL_UNSPECIFIED";
}

/** switch_url_encode: the unsafe set `\r\n "#%&+:;<=>?@[\]^`{|}` and non-printable bytes. */
export function fsUrlEncode(s: string): string {
  const unsafe = '\r\n "#%&+:;<=>?@[\\]^`{|}';
  let out = "";
  for (const b of Buffer.from(s, "utf8")) {
    const c = String.fromCharCode(b);
    if (b < 32 || b > 126 || unsafe.includes(c)) out += "%" + b.toString(16).toUpperCase().padStart(2, "0");
    else out += c;
  }
  return out;
}

function pad(n: number, w = 2): string {
  return String(n).padStart(w, "0");
}

function fill(tpl: string, subs: Record<string, string>): string {
  return tpl.replace(/\{(\w+)\}/g, (m, k: string) => subs[k] ?? m);
}

// ---------------------------------------------------------------------------------------------------------
// Types

export interface PlaceCallOptions {
  uuid?: string;
  caller: string;
  callerName?: string;
  callee: string;
  /** Channel variables set by the dialplan (active_call, active_call_playbook, active_call_var_x, sip_h_X-Foo …). */
  variables?: Record<string, string>;
  /** Caller PCM, mono 16 kHz; forked at the fork rate (decimated 2:1 for 8k). */
  audio?: Int16Array;
  /** Loop the caller audio (default false: silence after its end). */
  loopAudio?: boolean;
  /** Caller packetisation: fork frame = rate × ptime (default 20 ms). */
  ptimeMs?: number;
  /** The dialplan answered before it parked (placeCall) or before `socket` (connectOutbound). */
  answered?: boolean;
}

/** One 20 ms RTP frame towards the caller. */
export interface HeardFrame {
  /** Epoch ms when the frame left for the caller. */
  atMs: number;
  rms: number;
  /** The frame carried agent audio from the fork's buffer (false: the park loop's idle silence). */
  agent: boolean;
}

/** What the caller heard of the agent: the RTP-side timeline. */
export interface Heard {
  frames: HeardFrame[];
  /** The frames' PCM at the fork's playback rate. */
  pcm: Int16Array;
  /** Start of the first / end of the last frame with rms > AUDIBLE_RMS (epoch ms). */
  firstAudibleAtMs: number | undefined;
  lastAudibleAtMs: number | undefined;
}

/** "Audio at the caller" in the live report: rms above 300. */
export const AUDIBLE_RMS = 300;
const FRAME_MS = 20;
const PREBUFFER_MS = 80;

export type EslEvent = Record<string, string>;

export interface MarkRecord {
  name: string;
  result?: "playout" | "cleared";
}

export interface ForkState {
  url: string;
  /** 8000 or 16000. */
  rate: number;
  metadata: string | undefined;
  bidirectional: boolean;
  streaming: boolean;
  playbackRate: number;
  ws: WebSocket | undefined;
  connected: boolean;
  paused: boolean;
  closed: boolean;
  /** Caller frames sent. */
  framesSent: number;
  /** Text frames FS sent (metadata first, then mark replies, send_text …). */
  textSent: string[];
  /** Text frames received from the controller. */
  textReceived: string[];
  timer: NodeJS.Timeout | undefined;
  /** Epoch ms of each killAudio received. */
  killAudioAt: number[];
  /** Caller frames streamed after a uuid_transfer moved the channel on (live fact 7). */
  framesAfterTransfer: number;
}

export interface SimChannel {
  uuid: string;
  direction: "inbound" | "outbound";
  caller: string;
  callerName: string;
  callee: string;
  created: number;
  answered: boolean;
  answeredAt: number;
  preAnswered: boolean;
  ringReady: boolean;
  parked: boolean;
  /** In a park loop (park, `socket … async`, `&park()`): where send_silence_when_idle is read. */
  inParkLoop: boolean;
  /** What the park loop read of send_silence_when_idle; undefined until it read it. */
  silenceLatched: boolean | undefined;
  /** The hangup began (fork closed); CHANNEL_HANGUP follows. */
  hangingUp: boolean;
  hungUp: boolean;
  hangupCause: string | undefined;
  /** Cause given to uuid_kill (or sendmsg hangup / respond). */
  killedCause: string | undefined;
  /** `respond` argument, when the controller rejected with a SIP code. */
  respondedWith: string | undefined;
  vars: Map<string, string>;
  /** Current fork (undefined when none was started or after stop). */
  fork: ForkState | undefined;
  /** URL of the last fork start. */
  forkUrl: string | undefined;
  forkStarts: number;
  /** Agent audio received over the fork WebSocket. */
  agentAudio: Buffer[];
  agentAudioBytes: number;
  marks: MarkRecord[];
  /** Digits sent with uuid_send_dtmf (raw argument, e.g. "123@100"). */
  dtmfSent: string[];
  transferredTo: string | undefined;
  transferredAtMs: number | undefined;
  deflectedTo: string | undefined;
  broadcasts: string[];
  breaks: number;
  executed: Array<{ app: string; arg: string; uuid: string }>;
  audio: Int16Array | undefined;
  loopAudio: boolean;
  audioPos: number;
  ptimeMs: number;
  /** Outbound-socket connection owning this channel, if any. */
  socketConn: EslConnection | undefined;
  sid: number;
}

interface QueuedApp {
  app: string;
  arg: string;
  appUuid: string;
}

interface PlaybackState {
  file: string;
  app: QueuedApp | undefined;
  timer: NodeJS.Timeout;
  done: () => void;
}

export interface OriginateOutcome {
  /** answer (default), or fail with a cause (USER_BUSY, NO_ANSWER, CALL_REJECTED …). */
  result: "answer" | "fail";
  cause?: string;
  /** `variable_sip_term_status` on the hangup (e.g. "486"). */
  sipTermStatus?: string;
  ringMs?: number;
  earlyMedia?: boolean;
  audio?: Int16Array;
}

export interface DeflectOutcome {
  /** The NOTIFY sipfrag; default "SIP/2.0 200 OK". null = no NOTIFY at all. */
  sipfrag: string | null;
  delayMs?: number;
}

export interface FreeSwitchSimOptions {
  password?: string;
  /** Playback duration of files/tones started by uuid_broadcast / playback (ms). */
  playbackMs?: number;
  /** Marks/streamed audio are ignored unless send_silence_when_idle was latched by the park loop. Default true. */
  requireSendSilence?: boolean;
  /** PRNG seed for event lateness and order (default FS_SIM_SEED or 1). */
  seed?: number;
  /** Most an api-caused event is late (ms); 0 = synchronous, as the byte-exact replays need. Default 25. */
  jitterMs?: number;
}

/** mulberry32: small, seedable, good enough to shuffle timings reproducibly. */
function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

interface PendingMark {
  name: string;
  /** Byte position in the playout buffer that must be heard before the mark answers. */
  pos: number;
  rec: MarkRecord;
}

/** Per-channel caller-side playout: the buffer mod_audio_fork writes into and the 20 ms clock that drains it. */
interface Playout {
  chunks: Buffer[];
  /** Bytes written into / taken out of the buffer since the fork started. */
  written: number;
  consumed: number;
  playing: boolean;
  waitingSince: number;
  marks: PendingMark[];
  timer: NodeJS.Timeout | undefined;
  frames: HeardFrame[];
  pcm: Int16Array[];
}

// ---------------------------------------------------------------------------------------------------------
// Connection

export class EslConnection {
  readonly id: number;
  readonly kind: "inbound" | "outbound";
  readonly socket: Socket;
  authed: boolean;
  format: "json" | "plain" = "json";
  readonly events = new Set<string>();
  readonly customSubs = new Set<string>();
  allEvents = false;
  /** myevents: only this channel's events. */
  myeventsUuid: string | undefined;
  /** Outbound socket: the channel it controls. */
  channelUuid: string | undefined;
  /** linger seconds (-1 forever); undefined = no linger. */
  linger: number | undefined;
  fullControl = true;
  /** Every command line received (first line of each command). */
  readonly commands: string[] = [];
  /** Every command with its header lines. */
  readonly raw: string[] = [];
  closed = false;
  private buf = Buffer.alloc(0);
  readonly jobs = new Set<string>();

  constructor(id: number, kind: "inbound" | "outbound", socket: Socket, private readonly sim: FreeSwitchSim) {
    this.id = id;
    this.kind = kind;
    this.socket = socket;
    this.authed = kind === "outbound";
    socket.on("data", (d: Buffer) => this.onData(d));
    socket.on("close", () => {
      this.closed = true;
      sim.onConnClosed(this);
    });
    socket.on("error", () => undefined);
  }

  write(s: string | Buffer): void {
    if (!this.closed && !this.socket.destroyed) this.socket.write(s);
  }

  reply(text: string, extra = ""): void {
    this.write(`Content-Type: command/reply\nReply-Text: ${text}\n${extra}\n`);
  }

  api(body: string): void {
    this.write(`Content-Type: api/response\nContent-Length: ${Buffer.byteLength(body)}\n\n${body}`);
  }

  disconnectNotice(disposition?: "disconnect"): void {
    const ctl = this.channelUuid !== undefined ? `Controlled-Session-UUID: ${this.channelUuid}\n` : "";
    const disp = disposition !== undefined && this.channelUuid !== undefined ? `Content-Disposition: ${disposition}\n` : "";
    this.write(
      `Content-Type: text/disconnect-notice\n${ctl}${disp}Content-Length: ${Buffer.byteLength(DISCONNECT_BODY)}\n\n${DISCONNECT_BODY}`,
    );
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.socket.end();
    setTimeout(() => this.socket.destroy(), 50).unref();
  }

  wants(ev: EslEvent): boolean {
    if (!this.authed || this.closed) return false;
    const name = ev["Event-Name"] ?? "";
    // CHANNEL_DESTROY never reaches an outbound socket (recorded).
    if (this.kind === "outbound" && name === "CHANNEL_DESTROY") return false;
    if (this.myeventsUuid !== undefined) {
      const uid = ev["Unique-ID"];
      if (name === "BACKGROUND_JOB") {
        if (!this.jobs.has(ev["Job-UUID"] ?? "")) return false;
        return this.allEvents || this.events.has(name);
      }
      if (uid !== this.myeventsUuid) return false;
      if (name === "CUSTOM") return this.allEvents || this.customSubs.has(ev["Event-Subclass"] ?? "");
      return true;
    }
    if (this.allEvents) return true;
    if (name === "CUSTOM") return this.customSubs.has(ev["Event-Subclass"] ?? "");
    return this.events.has(name);
  }

  sendEvent(ev: EslEvent): void {
    if (this.format === "json") {
      const json = JSON.stringify(ev);
      this.write(`Content-Length: ${Buffer.byteLength(json)}\nContent-Type: text/event-json\n\n${json}`);
      return;
    }
    let body = "";
    let inner: string | undefined;
    for (const [k, v] of Object.entries(ev)) {
      if (k === "_body") inner = v;
      else if (k !== "Content-Length") body += `${k}: ${fsUrlEncode(v)}\n`;
    }
    body += inner !== undefined ? `Content-Length: ${Buffer.byteLength(inner)}\n\n${inner}` : "\n";
    this.write(`Content-Length: ${Buffer.byteLength(body)}\nContent-Type: text/event-plain\n\n${body}`);
  }

  private onData(d: Buffer): void {
    this.buf = Buffer.concat([this.buf, d]);
    for (;;) {
      // Leading blank lines between commands are skipped (modesl sends a stray "\n").
      let start = 0;
      while (start < this.buf.length && (this.buf[start] === 0x0a || this.buf[start] === 0x0d)) start++;
      if (start > 0) this.buf = this.buf.subarray(start);
      const end = this.buf.indexOf("\n\n");
      if (end < 0) return;
      const head = this.buf.subarray(0, end).toString("utf8").replace(/\r/g, "");
      let rest = this.buf.subarray(end + 2);
      const lines = head.split("\n");
      const first = lines[0] ?? "";
      const headers = new Map<string, string>();
      for (const l of lines.slice(1)) {
        const i = l.indexOf(": ");
        if (i > 0) headers.set(l.slice(0, i).toLowerCase(), l.slice(i + 2));
        else {
          const j = l.indexOf(":");
          if (j > 0) headers.set(l.slice(0, j).toLowerCase(), l.slice(j + 1).trim());
        }
      }
      let body: string | undefined;
      const cl = headers.get("content-length");
      if (cl !== undefined) {
        const n = Number(cl);
        if (rest.length < n) return;
        body = rest.subarray(0, n).toString("utf8");
        rest = rest.subarray(n);
      }
      this.buf = rest;
      this.commands.push(first);
      this.raw.push(head);
      this.sim.onCommand(this, first, headers, body);
      if (this.closed) return;
    }
  }
}

// ---------------------------------------------------------------------------------------------------------
// The simulator

export class FreeSwitchSim {
  readonly password: string;
  playbackMs: number;
  requireSendSilence: boolean;
  /** Every command line received on any connection, in order. */
  readonly commands: string[] = [];
  /** Per-connection command lines (index = connection id order). */
  readonly connections: EslConnection[] = [];
  /** Every event emitted (whether or not someone was subscribed). */
  readonly events: EslEvent[] = [];
  /** How originate attempts end (per call; default: answer after 20 ms). */
  originateBehavior: (dial: string, vars: Record<string, string>) => OriginateOutcome = () => ({ result: "answer" });
  /** How uuid_deflect ends (default: NOTIFY with SIP/2.0 200 OK after 20 ms). */
  deflectBehavior: (uuid: string, target: string) => DeflectOutcome = () => ({ sipfrag: "SIP/2.0 200 OK" });
  /** Extra api commands: return the api/response body, or undefined to fall through. */
  apiHook: ((cmd: string, args: string) => string | undefined) | undefined;

  private server: Server | undefined;
  private readonly chans = new Map<string, SimChannel>();
  private seq = 784;
  private sid = 7;
  private connSeq = 0;
  private refuseUntil = 0;
  /** The ESL port while an `outage()` lasts. */
  private downPort: number | undefined;
  private readonly queues = new Map<string, QueuedApp[]>();
  private readonly running = new Set<string>();
  private readonly playing = new Map<string, PlaybackState>();
  private readonly timers = new Set<NodeJS.Timeout>();
  private tmpN = 3;
  readonly seed: number;
  readonly jitterMs: number;
  private readonly rand: () => number;
  /** Channel events waiting for their (late) time, per channel, in order. */
  private readonly lateEvents = new Map<string, { items: Array<{ at: number; ev: EslEvent }>; timer: NodeJS.Timeout | undefined }>();
  private readonly playouts = new Map<string, Playout>();

  constructor(opts: FreeSwitchSimOptions = {}) {
    this.password = opts.password ?? "ClueCon";
    this.playbackMs = opts.playbackMs ?? 500;
    this.requireSendSilence = opts.requireSendSilence ?? true;
    this.seed = opts.seed ?? (process.env.FS_SIM_SEED !== undefined ? Number(process.env.FS_SIM_SEED) : 1);
    this.jitterMs = opts.jitterMs ?? 25;
    this.rand = seededRandom(this.seed);
  }

  /** What the caller heard of the agent on this channel (empty before any fork played). */
  heard(uuid: string): Heard {
    const p = this.playouts.get(uuid);
    const frames = p?.frames ?? [];
    const audible = frames.filter((f) => f.rms > AUDIBLE_RMS);
    const last = audible[audible.length - 1];
    const total = (p?.pcm ?? []).reduce((n, c) => n + c.length, 0);
    const pcm = new Int16Array(total);
    let o = 0;
    for (const c of p?.pcm ?? []) {
      pcm.set(c, o);
      o += c.length;
    }
    return { frames, pcm, firstAudibleAtMs: audible[0]?.atMs, lastAudibleAtMs: last ? last.atMs + FRAME_MS : undefined };
  }

  /** A seeded delay in [minMs, minMs + maxMs); 0 when jitter is off. */
  private lateness(maxMs = this.jitterMs, minMs = 0): number {
    return this.jitterMs > 0 ? minMs + this.rand() * maxMs : 0;
  }

  get eslPort(): number {
    const a = this.server?.address() as AddressInfo | null | undefined;
    if (!a) throw new Error("FreeSwitchSim not started");
    return a.port;
  }

  async start(port = 0): Promise<void> {
    const server = createServer((socket) => {
      if (Date.now() < this.refuseUntil) {
        socket.destroy();
        return;
      }
      const conn = new EslConnection(++this.connSeq, "inbound", socket, this);
      this.connections.push(conn);
      conn.write("Content-Type: auth/request\n\n");
    });
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(port, "127.0.0.1", () => resolve());
    });
  }

  /**
   * FreeSWITCH goes away: the ESL port stops listening (a connect is refused, ECONNREFUSED, as with the process
   * down) and the inbound connections drop. Calls live on (a network outage, or mod_event_socket reloaded) unless
   * `restart`: then every channel is gone without an event, as after a FreeSWITCH restart. `restore()` listens again
   * on the same port.
   */
  async outage(o: { restart?: boolean } = {}): Promise<number> {
    const port = this.eslPort;
    const s = this.server;
    this.server = undefined;
    for (const c of this.connections) if (c.kind === "inbound" && !c.closed) c.socket.destroy();
    if (o.restart) {
      for (const ch of [...this.chans.values()]) {
        this.closeFork(ch, 1001, false);
        this.chans.delete(ch.uuid);
      }
    }
    if (s) await new Promise<void>((r) => s.close(() => r()));
    this.downPort = port;
    return port;
  }

  /** FreeSWITCH is back on the port it had before `outage()`. */
  async restore(): Promise<void> {
    if (this.downPort === undefined) throw new Error("FreeSwitchSim.restore without an outage");
    const port = this.downPort;
    this.downPort = undefined;
    await this.start(port);
  }

  async close(): Promise<void> {
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    for (const q of this.lateEvents.values()) if (q.timer) clearTimeout(q.timer);
    this.lateEvents.clear();
    for (const p of this.playouts.values()) if (p.timer) clearTimeout(p.timer);
    for (const p of this.playing.values()) clearTimeout(p.timer);
    this.playing.clear();
    for (const ch of this.chans.values()) this.closeFork(ch, 1001, false);
    for (const c of this.connections) c.socket.destroy();
    const s = this.server;
    this.server = undefined;
    if (s) await new Promise<void>((r) => s.close(() => r()));
  }

  /** Simulate an ESL outage: destroy every inbound connection; refuse new ones for `refuseMs`. */
  dropConnections(refuseMs = 0): void {
    this.refuseUntil = Date.now() + refuseMs;
    for (const c of this.connections) if (c.kind === "inbound" && !c.closed) c.socket.destroy();
  }

  channel(uuid: string): SimChannel | undefined {
    return this.chans.get(uuid);
  }

  /** The fork's WebSocket drops (network loss) while the channel lives: FS fires `mod_audio_fork::disconnect`. */
  dropFork(uuid: string): void {
    this.chans.get(uuid)?.fork?.ws?.terminate();
  }

  /** The channel disappears without any event (as if it ended while the controller was disconnected). */
  vanish(uuid: string): void {
    this.chans.delete(uuid);
  }

  get channels(): SimChannel[] {
    return [...this.chans.values()];
  }

  /** An inbound call reaching `park` in the dialplan: CHANNEL_CREATE, CHANNEL_EXECUTE park, CHANNEL_PARK. */
  placeCall(opts: PlaceCallOptions): string {
    const ch = this.newChannel("inbound", opts);
    this.emitChannel("CHANNEL_CREATE", ch);
    if (opts.answered) this.markAnswered(ch);
    this.execStart(ch, { app: "park", arg: "", appUuid: randomUUID() });
    ch.vars.set("current_application", "park");
    ch.parked = true;
    this.enterParkLoop(ch);
    this.emitChannel("CHANNEL_PARK", ch);
    return ch.uuid;
  }

  setCallerAudio(uuid: string, pcm: Int16Array, loop = false): void {
    const ch = this.mustChannel(uuid);
    ch.audio = pcm;
    ch.loopAudio = loop;
    ch.audioPos = 0;
  }

  /** DTMF from the caller (RFC 2833): DTMF-Duration in samples at 8 kHz. */
  pressDtmf(uuid: string, digit: string, durationMs = 280, source = "RTP"): void {
    const ch = this.mustChannel(uuid);
    this.emitChannel("DTMF", ch, {
      vars: false,
      extra: [
        ["DTMF-Digit", digit],
        ["DTMF-Duration", String(durationMs * 8)],
        ["DTMF-Source", source],
      ],
    });
  }

  callerHangup(uuid: string, cause = "NORMAL_CLEARING"): void {
    const ch = this.mustChannel(uuid);
    this.hangup(ch, cause, "recv_bye");
  }

  hold(uuid: string, on = true): void {
    this.emitChannel(on ? "CHANNEL_HOLD" : "CHANNEL_UNHOLD", this.mustChannel(uuid));
  }

  /** Fire a CUSTOM event for a channel (e.g. mod_audio_fork::buffer_overrun). */
  fireCustom(uuid: string, subclass: string, body?: string): void {
    this.emitCustom(this.mustChannel(uuid), subclass, body);
  }

  /**
   * The dialplan's `socket host:port async full`: connect to the controller, answer `connect` with the
   * URL-encoded CHANNEL_DATA (no Content-Length), then serve the per-call socket.
   */
  async connectOutbound(
    host: string,
    port: number,
    call: PlaceCallOptions & { mode?: "async full" | "async" | "" },
  ): Promise<string> {
    const ch = this.newChannel("inbound", call);
    this.emitChannel("CHANNEL_CREATE", ch);
    if (call.answered) this.markAnswered(ch);
    const mode = call.mode ?? "async full";
    const app: QueuedApp = { app: "socket", arg: `${host}:${port}${mode ? " " + mode : ""}`, appUuid: randomUUID() };
    this.execStart(ch, app);
    ch.vars.set("current_application_data", app.arg);
    ch.vars.set("current_application", "socket");
    ch.vars.set("socket_host", host);
    // mod_event_socket's async mode runs the channel in switch_ivr_park.
    if (mode.includes("async")) this.enterParkLoop(ch);
    const socket = netConnect({ host, port });
    const conn = new EslConnection(++this.connSeq, "outbound", socket, this);
    conn.channelUuid = ch.uuid;
    conn.fullControl = mode.includes("full");
    (conn as { asyncMode?: boolean }).asyncMode = mode.includes("async");
    ch.socketConn = conn;
    this.connections.push(conn);
    await new Promise<void>((resolve, reject) => {
      socket.once("connect", () => resolve());
      socket.once("error", reject);
    });
    return ch.uuid;
  }

  // ------------------------------------------------------------------------------------------------------
  // Channel model

  private newChannel(direction: "inbound" | "outbound", opts: PlaceCallOptions): SimChannel {
    const uuid = (opts.uuid ?? randomUUID()).slice(0, 36);
    if (this.chans.has(uuid)) throw new Error(`channel ${uuid} exists`);
    const created = Date.now() * 1000;
    const ch: SimChannel = {
      uuid,
      direction,
      caller: opts.caller,
      callerName: opts.callerName ?? opts.caller,
      callee: opts.callee,
      created,
      answered: false,
      answeredAt: 0,
      preAnswered: false,
      ringReady: false,
      parked: false,
      inParkLoop: false,
      silenceLatched: undefined,
      hangingUp: false,
      hungUp: false,
      hangupCause: undefined,
      killedCause: undefined,
      respondedWith: undefined,
      vars: new Map(),
      fork: undefined,
      forkUrl: undefined,
      forkStarts: 0,
      agentAudio: [],
      agentAudioBytes: 0,
      marks: [],
      dtmfSent: [],
      transferredTo: undefined,
      transferredAtMs: undefined,
      deflectedTo: undefined,
      broadcasts: [],
      breaks: 0,
      executed: [],
      audio: opts.audio,
      loopAudio: opts.loopAudio ?? false,
      audioPos: 0,
      ptimeMs: opts.ptimeMs ?? 20,
      socketConn: undefined,
      sid: ++this.sid,
    };
    const subs = {
      uuid,
      caller: opts.caller,
      callerName: ch.callerName,
      callee: opts.callee,
      created: String(created),
      sid: String(ch.sid),
      sipCallId: `${ch.sid}-12476@127.0.0.1`,
    };
    if (direction === "inbound") {
      for (const [k, v] of INBOUND_VARS) ch.vars.set(k, fill(v, subs));
    } else {
      ch.vars.set("direction", "outbound");
      ch.vars.set("uuid", uuid);
      ch.vars.set("session_id", String(ch.sid));
      ch.vars.set("channel_name", this.chanName(ch));
    }
    for (const [k, v] of Object.entries(opts.variables ?? {})) ch.vars.set(k, v);
    this.chans.set(uuid, ch);
    return ch;
  }

  private chanName(ch: SimChannel): string {
    return ch.direction === "inbound" ? `sofia/lo/${ch.caller}@127.0.0.1:15070` : `sofia/lo/${ch.callee}`;
  }

  private mustChannel(uuid: string): SimChannel {
    const ch = this.chans.get(uuid);
    if (!ch) throw new Error(`no channel ${uuid}`);
    return ch;
  }

  private live(uuid: string | undefined): SimChannel | undefined {
    if (uuid === undefined) return undefined;
    const ch = this.chans.get(uuid);
    return ch && !ch.hungUp ? ch : undefined;
  }

  private later(ms: number, fn: () => void): void {
    const t = setTimeout(() => {
      this.timers.delete(t);
      fn();
    }, ms);
    this.timers.add(t);
  }

  // ------------------------------------------------------------------------------------------------------
  // Event building

  private coreHeaders(name: string, calling: [string, string, string], subclass?: string): EslEvent {
    const now = new Date();
    const ev: EslEvent = {};
    if (subclass !== undefined) ev["Event-Subclass"] = subclass;
    ev["Event-Name"] = name;
    ev["Core-UUID"] = CORE_UUID;
    ev["FreeSWITCH-Hostname"] = "vm";
    ev["FreeSWITCH-Switchname"] = "vm";
    ev["FreeSWITCH-IPv4"] = "192.0.2.2";
    ev["FreeSWITCH-IPv6"] = "fd00::2";
    ev["Event-Date-Local"] =
      `${now.getUTCFullYear()}-${pad(now.getUTCMonth() + 1)}-${pad(now.getUTCDate())} ` +
      `${pad(now.getUTCHours())}:${pad(now.getUTCMinutes())}:${pad(now.getUTCSeconds())}`;
    ev["Event-Date-GMT"] = now.toUTCString();
    ev["Event-Date-Timestamp"] = String(now.getTime() * 1000);
    ev["Event-Calling-File"] = calling[0];
    ev["Event-Calling-Function"] = calling[1];
    ev["Event-Calling-Line-Number"] = calling[2];
    ev["Event-Sequence"] = String(this.seq++);
    return ev;
  }

  private channelState(name: string, ch: SimChannel): [string, string, string] {
    if (name === "CHANNEL_CREATE") return ["CS_INIT", "DOWN", "2"];
    if (name === "CHANNEL_HANGUP_COMPLETE") return ["CS_REPORTING", "HANGUP", "11"];
    if (name === "CHANNEL_DESTROY") return ["CS_REPORTING", "HANGUP", "12"];
    if (ch.hungUp) return ["CS_EXECUTE", ch.answered ? "ACTIVE" : "RINGING", "10"];
    const cs = ch.answered && name !== "CHANNEL_ANSWER" ? "ACTIVE" : ch.preAnswered ? "EARLY" : "RINGING";
    return ["CS_EXECUTE", cs, "4"];
  }

  /** Channel-* basic data, Caller-* profile, variables, extra headers, body (order as recorded). */
  private channelEvent(
    name: string,
    ch: SimChannel,
    o: { subclass?: string; vars?: boolean; extra?: Array<[string, string]>; body?: string; profilePrefix?: string } = {},
  ): EslEvent {
    const calling = CALLING[o.subclass?.startsWith("mod_audio_fork::") ? "mod_audio_fork::" : (o.subclass ?? name)] ??
      CALLING[name] ?? ["switch_channel.c", "switch_channel_event_set_data", "1"];
    const ev = this.coreHeaders(name, calling, o.subclass);
    const [state, callState, stateNum] = this.channelState(name, ch);
    const cause = ch.hangupCause;
    if (name === "CHANNEL_HANGUP_COMPLETE" && cause) ev["Hangup-Cause"] = cause;
    const profile = this.profile(ch);
    if (o.profilePrefix !== undefined) for (const [k, v] of profile) ev[`${o.profilePrefix}${k}`] = v;
    ev["Channel-State"] = state;
    ev["Channel-Call-State"] = callState;
    ev["Channel-State-Number"] = stateNum;
    ev["Channel-Name"] = this.chanName(ch);
    ev["Unique-ID"] = ch.uuid;
    ev["Call-Direction"] = ch.direction;
    ev["Presence-Call-Direction"] = ch.direction;
    ev["Channel-HIT-Dialplan"] = ch.direction === "inbound" ? "true" : "false";
    ev["Channel-Call-UUID"] = ch.uuid;
    ev["Answer-State"] = ch.hungUp ? "hangup" : ch.answered ? "answered" : ch.preAnswered ? "early" : "ringing";
    if (name !== "CHANNEL_HANGUP_COMPLETE" && cause) ev["Hangup-Cause"] = cause;
    ev["Channel-Read-Codec-Name"] = "PCMA";
    ev["Channel-Read-Codec-Rate"] = "8000";
    ev["Channel-Read-Codec-Bit-Rate"] = "64000";
    ev["Channel-Write-Codec-Name"] = "PCMA";
    ev["Channel-Write-Codec-Rate"] = "8000";
    ev["Channel-Write-Codec-Bit-Rate"] = "64000";
    for (const [k, v] of profile) ev[`Caller-${k}`] = v;
    if (o.vars !== false) {
      for (const [k, v] of ch.vars) ev[`variable_${k}`] = v;
    }
    for (const [k, v] of o.extra ?? []) ev[k] = v;
    if (o.body !== undefined) {
      ev["Content-Length"] = String(Buffer.byteLength(o.body));
      ev["_body"] = o.body;
    }
    return ev;
  }

  private profile(ch: SimChannel): Array<[string, string]> {
    const hangupTime = ch.hungUp ? String(Date.now() * 1000) : "0";
    return [
      ["Direction", ch.direction],
      ["Logical-Direction", ch.direction],
      ["Username", ch.direction === "inbound" ? ch.caller : "0000000000"],
      ["Dialplan", "XML"],
      ["Caller-ID-Name", ch.callerName],
      ["Caller-ID-Number", ch.caller],
      ["Orig-Caller-ID-Name", ch.callerName],
      ["Orig-Caller-ID-Number", ch.caller],
      ["Network-Addr", "127.0.0.1"],
      ["ANI", ch.caller],
      ["Destination-Number", ch.callee],
      ["Unique-ID", ch.uuid],
      ["Source", ch.direction === "inbound" ? "mod_sofia" : "src/switch_ivr_originate.c"],
      ["Context", ch.direction === "inbound" ? "public" : "default"],
      ["Channel-Name", this.chanName(ch)],
      ["Profile-Index", "1"],
      ["Profile-Created-Time", String(ch.created)],
      ["Channel-Created-Time", String(ch.created)],
      ["Channel-Answered-Time", ch.answered ? String(ch.answeredAt) : "0"],
      ["Channel-Progress-Time", "0"],
      ["Channel-Progress-Media-Time", "0"],
      ["Channel-Hangup-Time", hangupTime],
      ["Channel-Transfer-Time", "0"],
      ["Channel-Resurrect-Time", "0"],
      ["Channel-Bridged-Time", "0"],
      ["Channel-Last-Hold", "0"],
      ["Channel-Hold-Accum", "0"],
      ["Screen-Bit", "true"],
      ["Privacy-Hide-Name", "false"],
      ["Privacy-Hide-Number", "false"],
    ];
  }

  private emit(ev: EslEvent): void {
    this.events.push(ev);
    for (const c of this.connections) if (c.wants(ev)) c.sendEvent(ev);
  }

  private emitChannel(
    name: string,
    ch: SimChannel,
    o: { vars?: boolean; extra?: Array<[string, string]>; body?: string; lateMs?: number } = {},
  ): void {
    this.emitInOrder(ch, this.channelEvent(name, ch, o), o.lateMs ?? 0);
  }

  private emitCustom(ch: SimChannel, subclass: string, body?: string, extra?: Array<[string, string]>, lateMs = 0): void {
    this.emitInOrder(ch, this.channelEvent("CUSTOM", ch, { subclass, body, extra }), lateMs);
  }

  /**
   * Emits a channel's event `lateMs` from now, but never ahead of an earlier event of the same channel still
   * waiting: FreeSWITCH fires a channel's events from its own thread, in order, while api replies race them.
   */
  private emitInOrder(ch: SimChannel, ev: EslEvent, lateMs: number): void {
    const now = Date.now();
    let q = this.lateEvents.get(ch.uuid);
    if (lateMs <= 0 && (q === undefined || q.items.length === 0)) {
      this.emit(ev);
      return;
    }
    if (!q) {
      q = { items: [], timer: undefined };
      this.lateEvents.set(ch.uuid, q);
    }
    const prev = q.items[q.items.length - 1]?.at ?? 0;
    q.items.push({ at: Math.max(prev, now + lateMs), ev });
    if (!q.timer) this.pumpLate(ch.uuid, q);
  }

  private pumpLate(uuid: string, q: { items: Array<{ at: number; ev: EslEvent }>; timer: NodeJS.Timeout | undefined }): void {
    const head = q.items[0];
    if (!head) {
      q.timer = undefined;
      this.lateEvents.delete(uuid);
      return;
    }
    q.timer = setTimeout(() => {
      const now = Date.now();
      while (q.items.length > 0 && (q.items[0]?.at ?? 0) <= now) this.emit((q.items.shift() as { ev: EslEvent }).ev);
      this.pumpLate(uuid, q);
    }, Math.max(0, head.at - Date.now()));
  }

  private markAnswered(ch: SimChannel, lateMs = 0): void {
    if (ch.answered || ch.hungUp || ch.hangingUp) return;
    for (const [k, v] of ANSWER_VARS) ch.vars.set(k, v);
    ch.vars.set("endpoint_disposition", "ANSWER");
    ch.answered = true;
    ch.answeredAt = Date.now() * 1000;
    this.latchSilence(ch);
    this.emitChannel("CHANNEL_ANSWER", ch, { lateMs });
  }

  private enterParkLoop(ch: SimChannel): void {
    ch.inParkLoop = true;
    this.latchSilence(ch);
  }

  /**
   * switch_ivr_park reads send_silence_when_idle when it starts with media up (or when media comes up while it
   * runs) and keeps what it read: set afterwards, the variable changes nothing (live facts 3–5).
   */
  private latchSilence(ch: SimChannel): void {
    if (ch.silenceLatched !== undefined || !ch.inParkLoop || !(ch.answered || ch.preAnswered)) return;
    const v = Number(ch.vars.get("send_silence_when_idle") ?? "0");
    ch.silenceLatched = Number.isFinite(v) && v !== 0;
  }

  /** Streamed agent audio can reach this caller (the park loop writes frames). */
  private playsOut(ch: SimChannel): boolean {
    if (ch.transferredAtMs !== undefined) return false; // left our park loop for another extension
    return !this.requireSendSilence || ch.silenceLatched === true;
  }

  private hangup(ch: SimChannel, cause: string, disposition: string, sipTermStatus?: string): void {
    if (ch.hungUp || ch.hangingUp) return;
    ch.hangingUp = true;
    ch.hangupCause = cause;
    this.stopPlayback(ch, "break");
    this.queues.delete(ch.uuid);
    // The media bug closes with the session's media, before the state machine fires CHANNEL_HANGUP (live fact 8).
    if (ch.fork && !ch.fork.closed) this.closeFork(ch, 1000, true);
    this.stopPlayout(ch);
    const late = this.lateness(38, 2);
    if (late === 0) this.finishHangup(ch, cause, disposition, sipTermStatus);
    else this.later(late, () => this.finishHangup(ch, cause, disposition, sipTermStatus));
  }

  private finishHangup(ch: SimChannel, cause: string, disposition: string, sipTermStatus?: string): void {
    ch.hungUp = true;
    ch.vars.set("sip_hangup_disposition", disposition);
    if (sipTermStatus !== undefined) ch.vars.set("sip_term_status", sipTermStatus);
    this.emitChannel("CHANNEL_HANGUP", ch);
    if (ch.parked) {
      ch.parked = false;
      this.emitChannel("CHANNEL_UNPARK", ch);
      this.emitChannel("CHANNEL_EXECUTE_COMPLETE", ch, {
        extra: [
          ["Application", "park"],
          ["Application-Response", "_none_"],
          ["Application-UUID", randomUUID()],
        ],
      });
    }
    const now = Date.now();
    const startS = Math.floor(ch.created / 1e6);
    ch.vars.set("hangup_cause", cause);
    ch.vars.set("hangup_cause_q850", CAUSE_Q850[cause] ?? "16");
    ch.vars.set("start_epoch", String(startS));
    ch.vars.set("start_uepoch", String(ch.created));
    ch.vars.set("answer_epoch", ch.answered ? String(Math.floor(ch.answeredAt / 1e6)) : "0");
    ch.vars.set("answer_uepoch", ch.answered ? String(ch.answeredAt) : "0");
    ch.vars.set("end_epoch", String(Math.floor(now / 1000)));
    ch.vars.set("end_uepoch", String(now * 1000));
    ch.vars.set("duration", String(Math.floor(now / 1000) - startS));
    ch.vars.set("billsec", ch.answered ? String(Math.floor(now / 1000 - ch.answeredAt / 1e6)) : "0");
    this.emitChannel("CHANNEL_HANGUP_COMPLETE", ch);
    const conn = ch.socketConn;
    if (conn && !conn.closed) {
      if (conn.linger !== undefined) {
        conn.write(
          `Content-Type: text/disconnect-notice\nControlled-Session-UUID: ${ch.uuid}\nContent-Disposition: linger\n` +
            `Channel-Name: ${this.chanName(ch)}\nLinger-Time: ${conn.linger}\nContent-Length: 0\n\n`,
        );
        if (conn.linger >= 0) {
          this.later(conn.linger * 1000, () => {
            if (conn.closed) return;
            conn.disconnectNotice("disconnect");
            conn.close();
          });
        }
      } else {
        conn.disconnectNotice("disconnect");
        conn.close();
      }
    }
    this.emitChannel("CHANNEL_DESTROY", ch);
  }

  // ------------------------------------------------------------------------------------------------------
  // Applications (sendmsg execute, uuid_broadcast)

  private execStart(ch: SimChannel, app: QueuedApp): void {
    ch.executed.push({ app: app.app, arg: app.arg, uuid: app.appUuid });
    const extra: Array<[string, string]> = [["Application", app.app]];
    if (app.arg) extra.push(["Application-Data", app.arg]);
    extra.push(["Application-UUID", app.appUuid]);
    this.emitChannel("CHANNEL_EXECUTE", ch, { extra });
  }

  private execComplete(ch: SimChannel, app: QueuedApp, response: string): void {
    if (ch.hungUp && app.app !== "hangup") return;
    const extra: Array<[string, string]> = [["Application", app.app]];
    if (app.arg) extra.push(["Application-Data", app.arg]);
    extra.push(["Application-Response", response], ["Application-UUID", app.appUuid]);
    ch.vars.set("current_application_response", response);
    this.emitChannel("CHANNEL_EXECUTE_COMPLETE", ch, { extra });
  }

  private enqueue(ch: SimChannel, app: QueuedApp): void {
    const q = this.queues.get(ch.uuid) ?? [];
    q.push(app);
    this.queues.set(ch.uuid, q);
    if (!this.running.has(ch.uuid)) this.runQueue(ch);
  }

  private runQueue(ch: SimChannel): void {
    const q = this.queues.get(ch.uuid);
    const app = q?.shift();
    if (!app || ch.hungUp) {
      this.running.delete(ch.uuid);
      return;
    }
    this.running.add(ch.uuid);
    const next = (): void => {
      setImmediate(() => this.runQueue(ch));
    };
    this.execStart(ch, app);
    ch.vars.set("current_application", app.app);
    if (app.arg) ch.vars.set("current_application_data", app.arg);
    switch (app.app) {
      case "answer":
        this.markAnswered(ch);
        this.execComplete(ch, app, "_none_");
        next();
        return;
      case "pre_answer":
        this.preAnswer(ch);
        this.execComplete(ch, app, "_none_");
        next();
        return;
      case "ring_ready":
        this.ringReady(ch);
        this.execComplete(ch, app, "_none_");
        next();
        return;
      case "playback":
        this.startPlayback(ch, app.arg, app, next);
        return;
      case "respond": {
        ch.respondedWith = app.arg;
        const code = Number(app.arg.split(" ")[0]);
        this.execComplete(ch, app, "_none_");
        if (code >= 300) {
          ch.killedCause = sipToCause(code);
          this.hangup(ch, sipToCause(code), "send_refuse");
        } else if (code === 180) this.ringReady(ch);
        else if (code === 183) this.preAnswer(ch);
        else if (code === 200) this.markAnswered(ch);
        next();
        return;
      }
      case "park":
        if (!ch.parked) {
          ch.parked = true;
          this.enterParkLoop(ch);
          this.emitChannel("CHANNEL_PARK", ch);
        }
        next();
        return;
      case "hangup": {
        const cause = app.arg || "NORMAL_CLEARING";
        ch.killedCause = cause;
        this.hangup(ch, cause, "send_bye");
        this.running.delete(ch.uuid);
        return;
      }
      default:
        this.execComplete(ch, app, "_none_");
        next();
    }
  }

  private ringReady(ch: SimChannel): void {
    if (ch.ringReady || ch.answered) return;
    ch.ringReady = true;
    this.emitChannel("CHANNEL_PROGRESS", ch);
  }

  private preAnswer(ch: SimChannel): void {
    if (ch.preAnswered || ch.answered) return;
    ch.preAnswered = true;
    this.latchSilence(ch);
    this.emitChannel("CHANNEL_PROGRESS_MEDIA", ch);
  }

  private startPlayback(ch: SimChannel, file: string, app: QueuedApp | undefined, done: () => void): void {
    ch.vars.set("current_loop", "1");
    ch.vars.set("total_loops", "1");
    this.emitChannel("PLAYBACK_START", ch, { extra: [["Playback-File-Path", file]] });
    const timer = setTimeout(() => this.stopPlayback(ch, "done"), this.playbackMs);
    this.playing.set(ch.uuid, { file, app, timer, done });
  }

  private stopPlayback(ch: SimChannel, status: "done" | "break"): void {
    const p = this.playing.get(ch.uuid);
    if (!p) return;
    this.playing.delete(ch.uuid);
    clearTimeout(p.timer);
    ch.vars.set("playback_ms", String(this.playbackMs));
    this.emitChannel("PLAYBACK_STOP", ch, {
      extra: [
        ["Playback-File-Path", p.file],
        ["Playback-Status", status],
      ],
    });
    if (p.app) this.execComplete(ch, p.app, "FILE PLAYED");
    p.done();
  }

  // ------------------------------------------------------------------------------------------------------
  // Command handling

  onConnClosed(conn: EslConnection): void {
    void conn;
  }

  onCommand(conn: EslConnection, line: string, headers: Map<string, string>, body: string | undefined): void {
    this.commands.push(line);
    const sp = line.indexOf(" ");
    const verb = (sp < 0 ? line : line.slice(0, sp)).toLowerCase();
    const rest = sp < 0 ? "" : line.slice(sp + 1);

    if (conn.kind === "outbound" && verb === "connect") {
      this.connectReply(conn);
      return;
    }
    if (!conn.authed) {
      if (verb === "auth") {
        if (rest === this.password) {
          conn.authed = true;
          conn.reply("+OK accepted");
        } else {
          conn.reply("-ERR invalid");
          conn.disconnectNotice();
          conn.close();
        }
      } else {
        conn.reply("-ERR invalid");
      }
      return;
    }
    const outboundRestricted = conn.kind === "outbound" && !conn.fullControl;
    switch (verb) {
      case "auth":
        conn.reply("+OK accepted");
        return;
      case "event":
        if (outboundRestricted) return conn.reply("-ERR command not found");
        this.subscribe(conn, rest);
        return;
      case "myevents": {
        if (conn.myeventsUuid !== undefined) return conn.reply("-ERR aready enabled.");
        const parts = rest.split(" ").filter(Boolean);
        let uuid = conn.channelUuid;
        for (const p of parts) {
          if (p === "json" || p === "plain" || p === "xml") conn.format = p === "json" ? "json" : "plain";
          else uuid = p;
        }
        if (uuid === undefined) return conn.reply("-ERR Usage: myevents <uuid>");
        conn.myeventsUuid = uuid;
        conn.reply("+OK Events Enabled");
        return;
      }
      case "noevents":
        conn.events.clear();
        conn.customSubs.clear();
        conn.allEvents = false;
        conn.reply("+OK no longer listening for events");
        return;
      case "nixevent":
        if (outboundRestricted) return conn.reply("-ERR command not found");
        for (const n of rest.split(" ").filter(Boolean)) {
          conn.events.delete(n);
          conn.customSubs.delete(n);
        }
        conn.reply("+OK events nixed");
        return;
      case "linger": {
        if (outboundRestricted) return conn.reply("-ERR command not found");
        const n = rest.trim() === "" ? -1 : Number(rest.trim());
        conn.linger = n;
        conn.reply(n < 0 ? "+OK will linger" : `+OK will linger ${n} seconds`);
        return;
      }
      case "nolinger":
        conn.linger = undefined;
        conn.reply("+OK will not linger");
        return;
      case "getvar": {
        const ch = this.chans.get(conn.channelUuid ?? "");
        conn.reply(ch?.vars.get(rest.trim()) ?? "");
        return;
      }
      case "exit":
        conn.reply("+OK bye");
        conn.disconnectNotice(conn.kind === "outbound" ? "disconnect" : undefined);
        conn.close();
        return;
      case "api": {
        if (outboundRestricted) return conn.reply("-ERR command not found");
        conn.api(this.runApi(rest, conn));
        return;
      }
      case "bgapi": {
        if (outboundRestricted) return conn.reply("-ERR command not found");
        const job = headers.get("job-uuid") ?? randomUUID();
        conn.jobs.add(job);
        conn.reply(`+OK Job-UUID: ${job}`, `Job-UUID: ${job}\n`);
        this.runBgapi(rest, job);
        return;
      }
      case "sendmsg":
        this.sendmsg(conn, rest.trim(), headers, body);
        return;
      case "filter":
        conn.reply(`+OK filter added. [${rest}]`);
        return;
      case "log":
        conn.reply("+OK log level  [7]");
        return;
      case "nolog":
        conn.reply("+OK no longer logging");
        return;
      default:
        conn.reply("-ERR command not found");
    }
  }

  private connectReply(conn: EslConnection): void {
    const ch = this.chans.get(conn.channelUuid ?? "");
    if (!ch) return;
    const ev = this.channelEvent("CHANNEL_DATA", ch, { profilePrefix: "Channel-" });
    const mode = (conn as { asyncMode?: boolean }).asyncMode === false ? "static" : "async";
    let out = "";
    for (const [k, v] of Object.entries(ev)) out += `${k}: ${fsUrlEncode(v)}\n`;
    out += "Content-Type: command/reply\n";
    out += `Reply-Text: ${fsUrlEncode("+OK\n")}\n`;
    out += `Socket-Mode: ${mode}\n`;
    out += `Control: ${conn.fullControl ? "full" : "single-channel"}\n\n`;
    conn.write(out);
  }

  private subscribe(conn: EslConnection, rest: string): void {
    const parts = rest.split(" ").filter(Boolean);
    let fmt: "json" | "plain" = "plain";
    if (parts[0] === "json" || parts[0] === "plain" || parts[0] === "xml") {
      fmt = parts.shift() === "json" ? "json" : "plain";
    }
    let any = false;
    let custom = false;
    for (const p of parts) {
      if (custom) {
        conn.customSubs.add(p);
        any = true;
        continue;
      }
      const name = p.toUpperCase();
      if (name === "CUSTOM") {
        custom = true;
        any = true;
        continue;
      }
      if (name === "ALL") {
        conn.allEvents = true;
        any = true;
        continue;
      }
      if (KNOWN_EVENTS.has(name)) {
        conn.events.add(name);
        any = true;
      }
    }
    if (!any) return conn.reply("-ERR no keywords supplied");
    conn.format = fmt;
    conn.reply(`+OK event listener enabled ${fmt}`);
  }

  private sendmsg(conn: EslConnection, uuidArg: string, headers: Map<string, string>, body: string | undefined): void {
    const uuid = uuidArg || conn.channelUuid || headers.get("session-uuid") || "";
    const ch = this.live(uuid);
    if (!ch) return conn.reply(`-ERR invalid session id [${uuid}]`);
    conn.reply("+OK");
    const cmd = (headers.get("call-command") ?? "").toLowerCase();
    if (cmd === "execute") {
      const app = headers.get("execute-app-name") ?? "";
      const arg = headers.get("execute-app-arg") ?? body ?? "";
      const appUuid = headers.get("event-uuid") ?? randomUUID();
      const loops = Number(headers.get("loops") ?? "1");
      for (let i = 0; i < Math.max(1, loops); i++) this.enqueue(ch, { app, arg, appUuid });
    } else if (cmd === "hangup") {
      const cause = headers.get("hangup-cause") ?? "NORMAL_CLEARING";
      ch.killedCause = cause;
      setImmediate(() => this.hangup(ch, cause, "send_bye"));
    } else if (cmd === "unicast" || cmd === "nomedia") {
      // accepted, no effect
    }
  }

  /** Runs an api command; returns the api/response body. */
  runApi(cmdline: string, conn?: EslConnection): string {
    const sp = cmdline.indexOf(" ");
    const cmd = sp < 0 ? cmdline : cmdline.slice(0, sp);
    const args = sp < 0 ? "" : cmdline.slice(sp + 1);
    const hooked = this.apiHook?.(cmd, args);
    if (hooked !== undefined) return hooked;
    const argv = args.split(" ").filter((s) => s !== "");
    const ch = this.live(argv[0]);
    switch (cmd) {
      case "status":
        return RECORDED_STATUS;
      case "version":
        return RECORDED_VERSION;
      case "show":
        if (args.startsWith("modules mod_audio_fork")) return RECORDED_SHOW_MODULES_AUDIO_FORK;
        if (args.startsWith("channels")) return this.showChannels(args.includes("as json"));
        return "-ERR Unknown command\n";
      case "uuid_exists":
        return ch ? "true" : "false";
      case "uuid_answer":
        if (!ch) return NO_SUCH_CHANNEL;
        this.markAnswered(ch, this.lateness());
        return "+OK\n";
      case "uuid_pre_answer":
        if (!ch) return NO_SUCH_CHANNEL;
        this.preAnswer(ch);
        return "+OK\n";
      case "uuid_ring_ready":
        if (!ch) return NO_SUCH_CHANNEL;
        this.ringReady(ch);
        return "+OK\n";
      case "uuid_setvar": {
        if (!ch) return NO_SUCH_CHANNEL;
        const name = argv[1];
        if (name === undefined) return "-USAGE: <uuid> <var> [value]\n";
        const value = args.split(" ").slice(2).join(" ");
        if (value === "") ch.vars.delete(name);
        else ch.vars.set(name, value);
        return "+OK\n";
      }
      case "uuid_getvar": {
        if (!ch) return NO_SUCH_CHANNEL;
        return ch.vars.get(argv[1] ?? "") ?? "_undef_";
      }
      case "uuid_kill": {
        if (!ch) return NO_SUCH_CHANNEL;
        const cause = argv[1] ?? "NORMAL_CLEARING";
        ch.killedCause = cause;
        setImmediate(() => this.hangup(ch, cause, "send_bye"));
        return "+OK\n";
      }
      case "uuid_break": {
        if (!ch) return NO_SUCH_CHANNEL;
        ch.breaks++;
        if (argv[1] === "all") this.queues.delete(ch.uuid);
        setImmediate(() => this.stopPlayback(ch, "break"));
        return "+OK\n";
      }
      case "uuid_send_dtmf":
        if (!ch) return NO_SUCH_CHANNEL;
        ch.dtmfSent.push(argv[1] ?? "");
        return `+OK ${ch.uuid} sent DTMF ${argv[1] ?? ""}.\n`;
      case "uuid_transfer": {
        if (!ch) return NO_SUCH_CHANNEL;
        ch.transferredTo = argv.slice(1).join(" ");
        ch.transferredAtMs = Date.now();
        ch.inParkLoop = false;
        // The fork's media bug stays on the channel (live fact 7): only `uuid_audio_fork <uuid> stop` removes it.
        setImmediate(() => {
          if (ch.parked && !ch.hungUp) {
            ch.parked = false;
            this.emitChannel("CHANNEL_UNPARK", ch, { lateMs: this.lateness() });
          }
        });
        return "+OK\n";
      }
      case "uuid_broadcast": {
        if (!ch) return NO_SUCH_CHANNEL;
        const file = argv[1] ?? "";
        ch.broadcasts.push(file);
        const app: QueuedApp = { app: "playback", arg: file, appUuid: randomUUID() };
        setImmediate(() => this.enqueue(ch, app));
        return "+OK Message sent\n";
      }
      case "uuid_fileman":
        return ch ? "+OK\n" : NO_SUCH_CHANNEL;
      case "uuid_dump":
        if (!ch) return NO_SUCH_CHANNEL;
        return JSON.stringify(this.channelEvent("CHANNEL_DATA", ch));
      case "uuid_audio_fork":
        return this.audioForkApi(args);
      case "uuid_deflect":
        if (!ch) return NO_SUCH_CHANNEL;
        return this.deflect(ch, argv[1] ?? "");
      case "originate":
        return "-ERR use bgapi originate in the simulator\n";
      default:
        void conn;
        return `-ERR ${cmd} Command not found!\n`;
    }
  }

  private runBgapi(cmdline: string, job: string): void {
    const sp = cmdline.indexOf(" ");
    const cmd = sp < 0 ? cmdline : cmdline.slice(0, sp);
    const args = sp < 0 ? "" : cmdline.slice(sp + 1);
    const finish = (out: string): void => {
      const ev = this.coreHeaders("BACKGROUND_JOB", CALLING.BACKGROUND_JOB ?? ["", "", ""]);
      ev["Job-UUID"] = job;
      ev["Job-Command"] = cmd;
      if (args) ev["Job-Command-Arg"] = args;
      ev["Content-Length"] = String(Buffer.byteLength(out));
      ev["_body"] = out;
      this.emit(ev);
    };
    if (cmd === "originate") {
      this.originate(args, finish);
      return;
    }
    setImmediate(() => finish(this.runApi(cmdline)));
  }

  private originate(args: string, finish: (out: string) => void): void {
    // {a=b,c='d e'}dialstring &park()
    let vars: Record<string, string> = {};
    let rest = args.trim();
    if (rest.startsWith("{")) {
      const end = rest.indexOf("}");
      vars = parseOriginateVars(rest.slice(1, end));
      rest = rest.slice(end + 1);
    }
    const [dial = "", ...appParts] = rest.split(" ");
    const appStr = appParts.join(" ");
    const outcome = this.originateBehavior(dial, vars);
    const { origination_uuid, origination_caller_id_number, origination_caller_id_name, ...chanVars } = vars;
    const callee = dial.replace(/^.*\//, "").replace(/@.*$/, "");
    const ch = this.newChannel("outbound", {
      uuid: origination_uuid,
      caller: origination_caller_id_number ?? "0000000000",
      callerName: origination_caller_id_name ?? "Outbound Call",
      callee,
      variables: chanVars,
      audio: outcome.audio,
    });
    this.emitChannel("CHANNEL_CREATE", ch);
    const ringMs = outcome.ringMs ?? 20;
    this.later(5, () => {
      if (ch.hungUp) return;
      if (outcome.earlyMedia) this.preAnswer(ch);
      else this.ringReady(ch);
    });
    this.later(ringMs + 5, () => {
      if (ch.hungUp) return finish(`-ERR ${ch.hangupCause ?? "NORMAL_CLEARING"}\n`);
      if (outcome.result === "fail") {
        const cause = outcome.cause ?? "USER_BUSY";
        this.hangup(ch, cause, "recv_refuse", outcome.sipTermStatus);
        finish(`-ERR ${cause}\n`);
        return;
      }
      this.markAnswered(ch, this.lateness());
      finish(`+OK ${ch.uuid}\n`);
      const m = /^&?(\w+)\((.*)\)$/.exec(appStr.trim());
      const app = m?.[1] ?? "park";
      this.enqueue(ch, { app, arg: m?.[2] ?? "", appUuid: randomUUID() });
    });
  }

  private deflect(ch: SimChannel, target: string): string {
    ch.deflectedTo = target;
    const outcome = this.deflectBehavior(ch.uuid, target);
    if (outcome.sipfrag !== null) {
      const frag = outcome.sipfrag;
      this.later(outcome.delayMs ?? 20, () => {
        const ev = this.coreHeaders("CUSTOM", CALLING["sofia::notify_refer"] ?? ["", "", ""], "sofia::notify_refer");
        ev["content-type"] = "message/sipfrag;version=2.0";
        ev["event-package"] = "refer";
        ev["event-id"] = "1";
        ev["UniqueID"] = ch.uuid;
        ev["Content-Length"] = String(Buffer.byteLength(frag));
        ev["_body"] = frag;
        const code = /SIP\/2\.0 (\d+)/.exec(frag)?.[1];
        if (code) ch.vars.set("sip_refer_target_status_code", code);
        this.emit(ev);
      });
    }
    return "+OK\n";
  }

  private showChannels(json: boolean): string {
    const live = [...this.chans.values()].filter((c) => !c.hungUp);
    if (!json) {
      return `uuid,direction,created,created_epoch,name,state,cid_name,cid_num,ip_addr,dest,application,application_data\n\n${live.length} total.\n`;
    }
    if (live.length === 0) return '{"row_count":0}\n';
    const rows = live.map((c) => ({
      uuid: c.uuid,
      direction: c.direction,
      created: new Date(c.created / 1000).toISOString().replace("T", " ").slice(0, 19),
      created_epoch: String(Math.floor(c.created / 1e6)),
      name: this.chanName(c),
      state: "CS_EXECUTE",
      cid_name: c.callerName,
      cid_num: c.caller,
      ip_addr: "127.0.0.1",
      dest: c.callee,
      application: c.vars.get("current_application") ?? "",
      application_data: c.vars.get("current_application_data") ?? "",
      dialplan: "XML",
      context: "public",
      read_codec: "PCMA",
      read_rate: "8000",
      read_bit_rate: "64000",
      write_codec: "PCMA",
      write_rate: "8000",
      write_bit_rate: "64000",
      secure: "",
      hostname: "vm",
      presence_id: "",
      presence_data: "",
      accountcode: "",
      callstate: c.answered ? "ACTIVE" : "RINGING",
      callee_name: "",
      callee_num: "",
      callee_direction: "",
      call_uuid: "",
      sent_callee_name: "",
      sent_callee_num: "",
      initial_cid_name: c.callerName,
      initial_cid_num: c.caller,
      initial_ip_addr: "127.0.0.1",
      initial_dest: c.callee,
      initial_dialplan: "XML",
      initial_context: "public",
    }));
    return JSON.stringify({ row_count: rows.length, rows }) + "\n";
  }

  // ------------------------------------------------------------------------------------------------------
  // mod_audio_fork

  private audioForkApi(args: string): string {
    let argv: string[];
    if (args.startsWith("^^")) {
      const sep = args.charAt(2);
      argv = args.slice(3).split(sep);
    } else {
      argv = args.split(" ").filter((s) => s !== "");
    }
    if (argv.length < 2) return AUDIO_FORK_USAGE;
    const ch = this.live(argv[0]);
    const sub = argv[1];
    if (!ch) return "-ERR Operation Failed\n";
    if (sub === "start") {
      const url = argv[2];
      const mix = argv[3];
      const rateArg = argv[4] ?? "8k";
      if (!url || !mix) return AUDIO_FORK_USAGE;
      if (!ch.answered && !ch.preAnswered) return "-ERR Operation Failed\n";
      if (ch.hangingUp) return "-ERR Operation Failed\n";
      if (ch.fork && !ch.fork.closed) return "-ERR Operation Failed\n";
      const rate = rateArg === "16k" || rateArg === "16000" ? 16000 : rateArg === "8k" || rateArg === "8000" ? 8000 : Number(rateArg);
      let metadata: string | undefined;
      let bidi = true;
      let streaming = false;
      let playbackRate = 0;
      if (argv.length >= 10) {
        metadata = argv[6];
        bidi = argv[7] === "true";
        streaming = argv[8] === "true";
        playbackRate = Number(argv[9]);
      } else if (argv.length >= 7) metadata = argv[6];
      else if (argv.length === 6) metadata = argv[5]?.startsWith("{") ? argv[5] : undefined;
      this.startFork(ch, { url, rate, metadata, bidi, streaming, playbackRate });
      return "+OK Success\n";
    }
    const fork = ch.fork;
    if (!fork || fork.closed) return "-ERR Operation Failed\n";
    switch (sub) {
      case "stop": {
        const text = argv.length >= 4 ? argv.slice(3).join(" ") : argv[2]?.startsWith("{") ? argv.slice(2).join(" ") : undefined;
        if (text !== undefined) this.forkSendText(fork, text);
        setImmediate(() => this.closeFork(ch, 1000, false));
        return "+OK Success\n";
      }
      case "send_text": {
        const text = argv.length >= 4 ? argv.slice(3).join(" ") : argv.slice(2).join(" ");
        this.forkSendText(fork, text);
        return "+OK Success\n";
      }
      case "pause":
        fork.paused = true;
        return "+OK Success\n";
      case "resume":
        fork.paused = false;
        return "+OK Success\n";
      case "graceful-shutdown":
        fork.paused = true;
        if (fork.ws?.readyState === WebSocket.OPEN) fork.ws.send(Buffer.alloc(0));
        return "+OK Success\n";
      case "stop_play":
        this.clearMarks(ch);
        return "+OK Success\n";
      default:
        return AUDIO_FORK_USAGE;
    }
  }

  private forkSendText(fork: ForkState, text: string): void {
    fork.textSent.push(text);
    if (fork.ws?.readyState === WebSocket.OPEN) fork.ws.send(text);
  }

  private startFork(
    ch: SimChannel,
    o: { url: string; rate: number; metadata: string | undefined; bidi: boolean; streaming: boolean; playbackRate: number },
  ): void {
    const fork: ForkState = {
      url: o.url,
      rate: o.rate,
      metadata: o.metadata,
      bidirectional: o.bidi,
      streaming: o.streaming,
      playbackRate: o.playbackRate,
      ws: undefined,
      connected: false,
      paused: false,
      closed: false,
      framesSent: 0,
      textSent: [],
      textReceived: [],
      timer: undefined,
      killAudioAt: [],
      framesAfterTransfer: 0,
    };
    ch.fork = fork;
    ch.forkUrl = o.url;
    ch.forkStarts++;
    this.stopPlayout(ch);
    const prev = this.playouts.get(ch.uuid);
    this.playouts.set(ch.uuid, {
      chunks: [],
      written: 0,
      consumed: 0,
      playing: false,
      waitingSince: 0,
      marks: [],
      timer: undefined,
      frames: prev?.frames ?? [],
      pcm: prev?.pcm ?? [],
    });
    setImmediate(() => {
      if (fork.closed) return;
      this.emitChannel("MEDIA_BUG_START", ch, {
        extra: [
          ["Media-Bug-Function", "audio_fork"],
          ["Media-Bug-Target", "N/A"],
        ],
      });
      const url = o.url.replace(/^http(s?):/, "ws$1:");
      let ws: WebSocket;
      try {
        ws = new WebSocket(url, "audio.drachtio.org", {
          headers: { Pragma: "no-cache", "Cache-Control": "no-cache", Origin: "http://127.0.0.1" },
        });
      } catch {
        this.emitCustom(ch, "mod_audio_fork::connect_failed", '{"reason":"Unable to connect"}');
        return;
      }
      fork.ws = ws;
      ws.binaryType = "nodebuffer";
      ws.on("open", () => {
        if (fork.closed) return ws.close(1000);
        fork.connected = true;
        if (fork.metadata !== undefined) this.forkSendText(fork, fork.metadata);
        // The connect event races the first caller frames (different threads in mod_audio_fork).
        this.emitCustom(ch, "mod_audio_fork::connect", undefined, undefined, this.lateness());
        this.startFrames(ch, fork);
        if (fork.bidirectional && fork.streaming && fork.playbackRate > 0) this.startPlayout(ch, fork);
      });
      ws.on("error", () => {
        if (!fork.connected && !fork.closed) {
          fork.closed = true;
          this.emitCustom(ch, "mod_audio_fork::connect_failed", '{"reason":"Unable to connect"}');
        }
      });
      ws.on("message", (data: Buffer, isBinary: boolean) => this.onForkMessage(ch, fork, data, isBinary));
      ws.on("close", () => {
        if (fork.timer) clearTimeout(fork.timer);
        const wasOpen = fork.connected && !fork.closed;
        fork.connected = false;
        if (wasOpen && !ch.hungUp) {
          fork.closed = true;
          this.emitCustom(ch, "mod_audio_fork::disconnect");
        }
      });
    });
  }

  private startFrames(ch: SimChannel, fork: ForkState): void {
    const frameSamples = (fork.rate * ch.ptimeMs) / 1000;
    const t0 = Date.now();
    let n = 0;
    const tick = (): void => {
      if (fork.closed || !fork.ws || fork.ws.readyState !== WebSocket.OPEN) return;
      if (!fork.paused) {
        fork.ws.send(this.nextCallerFrame(ch, frameSamples, fork.rate));
        fork.framesSent++;
        if (ch.transferredAtMs !== undefined) fork.framesAfterTransfer++;
      }
      n++;
      fork.timer = setTimeout(tick, Math.max(0, t0 + (n + 1) * ch.ptimeMs - Date.now()));
    };
    fork.timer = setTimeout(tick, ch.ptimeMs);
  }

  private nextCallerFrame(ch: SimChannel, samples: number, rate: number): Buffer {
    const out = Buffer.alloc(samples * 2);
    const src = ch.audio;
    if (!src || src.length === 0) return out;
    const step = rate === 8000 ? 2 : 1;
    for (let i = 0; i < samples; i++) {
      if (ch.audioPos >= src.length) {
        if (!ch.loopAudio) break;
        ch.audioPos = 0;
      }
      out.writeInt16LE(src[ch.audioPos] ?? 0, i * 2);
      ch.audioPos += step;
    }
    return out;
  }

  private onForkMessage(ch: SimChannel, fork: ForkState, data: Buffer, isBinary: boolean): void {
    const playout = this.playouts.get(ch.uuid);
    if (isBinary) {
      const copy = Buffer.from(data);
      ch.agentAudio.push(copy);
      ch.agentAudioBytes += data.length;
      if (fork.streaming && playout && fork.playbackRate > 0) {
        if (playout.chunks.length === 0 && !playout.playing) playout.waitingSince = Date.now();
        playout.chunks.push(copy);
        playout.written += copy.length;
      }
      return;
    }
    const text = data.toString("utf8");
    fork.textReceived.push(text);
    let msg: { type?: string; data?: Record<string, unknown> };
    try {
      msg = JSON.parse(text) as typeof msg;
    } catch {
      return; // non-JSON: only logged by FS
    }
    switch (msg.type) {
      case "mark": {
        const name = typeof msg.data?.name === "string" ? msg.data.name : "";
        const rec: MarkRecord = { name };
        ch.marks.push(rec);
        if (!playout) return;
        // Marks ride the played audio; where the park loop writes nothing they never come back (recorded).
        playout.marks.push({ name, pos: playout.written, rec });
        if (!(fork.streaming && fork.playbackRate > 0) && this.playsOut(ch)) this.answerMarks(ch, fork, playout, Infinity);
        return;
      }
      case "killAudio":
        fork.killAudioAt.push(Date.now());
        if (playout) {
          playout.chunks = [];
          playout.consumed = playout.written;
          playout.playing = false;
        }
        this.clearMarks(ch);
        this.emitCustom(ch, "mod_audio_fork::kill_audio");
        setImmediate(() => this.stopPlayback(ch, "break"));
        return;
      case "clearMarks":
        this.clearMarks(ch);
        return;
      case "playAudio": {
        if (!fork.bidirectional || fork.streaming) return;
        const d = { ...(msg.data ?? {}) };
        const sr = Number(d.sampleRate ?? 8000);
        const ext = d.audioContentType === "wave" ? "wav" : `r${Math.round(sr / 1000)}`;
        delete d.audioContent;
        d.file = `/usr/lib/freeswitch/run/temp/${ch.uuid}_${++this.tmpN}.tmp.${ext}`;
        this.emitCustom(ch, "mod_audio_fork::play_audio", JSON.stringify(d));
        return;
      }
      case "disconnect":
        this.emitCustom(ch, "mod_audio_fork::disconnect");
        return;
      case "json":
        this.emitCustom(ch, "mod_audio_fork::json", text);
        return;
      case "transcription":
      case "transfer":
      case "error":
        this.emitCustom(ch, `mod_audio_fork::${msg.type}`, JSON.stringify(msg.data ?? {}));
        return;
      default:
        return;
    }
  }

  private clearMarks(ch: SimChannel): void {
    const fork = ch.fork;
    const playout = this.playouts.get(ch.uuid);
    if (!fork || !playout) return;
    for (const m of playout.marks.splice(0)) {
      m.rec.result = "cleared";
      this.forkSendText(fork, `{"type": "mark", "data": {"name":"${m.name}", "event": "cleared"}}`);
    }
  }

  private answerMarks(ch: SimChannel, fork: ForkState, playout: Playout, upTo: number): void {
    while (playout.marks.length > 0 && (playout.marks[0]?.pos ?? 0) <= upTo) {
      const m = playout.marks.shift() as PendingMark;
      m.rec.result = "playout";
      this.forkSendText(fork, `{"type": "mark", "data": {"name":"${m.name}", "event": "playout"}}`);
    }
    void ch;
  }

  /** The caller-side clock: every 20 ms one frame of the buffer goes to the caller (silence when it is empty). */
  private startPlayout(ch: SimChannel, fork: ForkState): void {
    const playout = this.playouts.get(ch.uuid);
    if (!playout) return;
    const frameBytes = (fork.playbackRate * FRAME_MS * 2) / 1000;
    const t0 = Date.now();
    let n = 0;
    const tick = (): void => {
      if (fork.closed || ch.hangingUp || ch.hungUp) return;
      n++;
      playout.timer = setTimeout(tick, Math.max(0, t0 + (n + 1) * FRAME_MS - Date.now()));
      if (!this.playsOut(ch)) return; // no RTP at all towards the caller
      const now = Date.now();
      const buffered = playout.written - playout.consumed;
      if (!playout.playing && buffered > 0) {
        const bufferedMs = (buffered / 2 / fork.playbackRate) * 1000;
        playout.playing = bufferedMs >= PREBUFFER_MS || now - playout.waitingSince >= PREBUFFER_MS;
      }
      const frame = new Int16Array(frameBytes / 2);
      let filled = 0;
      if (playout.playing) {
        while (filled < frameBytes && playout.chunks.length > 0) {
          const c = playout.chunks[0] as Buffer;
          const take = Math.min(c.length, frameBytes - filled);
          for (let i = 0; i + 1 < take; i += 2) frame[(filled + i) / 2] = c.readInt16LE(i);
          filled += take;
          if (take === c.length) playout.chunks.shift();
          else playout.chunks[0] = c.subarray(take);
        }
        playout.consumed += filled;
        if (playout.chunks.length === 0) playout.playing = false;
      }
      let sum = 0;
      for (const v of frame) sum += v * v;
      playout.frames.push({ atMs: now, rms: Math.sqrt(sum / frame.length), agent: filled > 0 });
      playout.pcm.push(frame);
      this.answerMarks(ch, fork, playout, playout.consumed);
    };
    playout.timer = setTimeout(tick, FRAME_MS);
  }

  private stopPlayout(ch: SimChannel): void {
    const p = this.playouts.get(ch.uuid);
    if (p?.timer) clearTimeout(p.timer);
    if (p) p.timer = undefined;
  }

  private closeFork(ch: SimChannel, code: number, fromHangup: boolean): void {
    const fork = ch.fork;
    if (!fork || fork.closed) return;
    fork.closed = true;
    if (fork.timer) clearTimeout(fork.timer);
    this.stopPlayout(ch);
    const ws = fork.ws;
    if (ws && (ws.readyState === WebSocket.OPEN || ws.readyState === WebSocket.CONNECTING)) {
      if (ws.readyState === WebSocket.OPEN) ws.close(code);
      else ws.terminate();
    }
    if (!this.server && !fromHangup) return;
    this.emitChannel("MEDIA_BUG_STOP", ch, {
      extra: [
        ["Media-Bug-Function", "audio_fork"],
        ["Media-Bug-Target", "N/A"],
      ],
    });
  }
}

/** `{a=b,c='d,e',f=g\,h}` → record (FS's originate variable splitter, simplified). */
export function parseOriginateVars(s: string): Record<string, string> {
  const out: Record<string, string> = {};
  let cur = "";
  let quoted = false;
  const parts: string[] = [];
  for (let i = 0; i < s.length; i++) {
    const c = s[i] ?? "";
    if (c === "\\" && i + 1 < s.length) {
      cur += s[++i] ?? "";
    } else if (c === "'") quoted = !quoted;
    else if (c === "," && !quoted) {
      parts.push(cur);
      cur = "";
    } else cur += c;
  }
  if (cur) parts.push(cur);
  for (const p of parts) {
    const eq = p.indexOf("=");
    if (eq > 0) out[p.slice(0, eq)] = p.slice(eq + 1);
  }
  return out;
}
