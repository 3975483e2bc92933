// active-call web console: a microphone test client for the /call WebSocket API (spec/ws-call-api.md).
// Plain browser JavaScript, no bundler, nothing fetched from elsewhere.
//
// Audio formats: the microphone is captured at the AudioContext rate, downsampled to 16 kHz PCM16 LE in an
// AudioWorklet and sent as 20 ms (640-byte) binary frames once the call is answered. Agent audio arrives as
// PCM16 LE 16 kHz binary frames and is scheduled back to back on the AudioContext clock.

const SAMPLE_RATE = 16000;
const FRAME_SAMPLES = 320; // 20 ms at 16 kHz
const PLAYBACK_LEAD_S = 0.06; // first frame after a gap starts this far ahead, to absorb network jitter

const $ = (id) => /** @type {HTMLElement} */ (document.getElementById(id));
const ui = {
  playbook: /** @type {HTMLSelectElement} */ ($("playbook")),
  call: /** @type {HTMLButtonElement} */ ($("call")),
  hangup: /** @type {HTMLButtonElement} */ ($("hangup")),
  say: /** @type {HTMLInputElement} */ ($("say")),
  saySend: /** @type {HTMLButtonElement} */ ($("say-send")),
  interrupt: /** @type {HTMLButtonElement} */ ($("interrupt")),
  state: $("state"),
  media: $("media"),
  notice: $("notice"),
  transcript: $("transcript"),
  log: $("log"),
};

// The API token, if any, comes from ?token= on this page's URL. REST calls send it as a bearer header; the
// WebSocket (which cannot carry headers from a browser) sends it as ?token=.
const token = new URLSearchParams(location.search).get("token") ?? "";

// Test hooks, read by the browser tests.
const hooks = {
  state: "idle",
  events: [],
  transcript: [],
  receivedAudioBytes: 0,
  receivedAudioPeak: 0,
  sentAudioFrames: 0,
  scheduledSources: 0, // agent audio frames scheduled and not yet played; 0 right after an interruption
  micError: null,
};
window.__console = hooks;

/** @type {WebSocket | null} */
let ws = null;
/** @type {AudioContext | null} */
let ctx = null;
/** @type {{ stream: MediaStream, source: MediaStreamAudioSourceNode, node: AudioWorkletNode } | null} */
let mic = null;
let answered = false;
let sayCount = 0;

// ------------------------------------------------------------------------------------------------------------
// UI helpers

function setState(state, detail = "") {
  hooks.state = state;
  ui.state.textContent = detail ? `${state} (${detail})` : state;
  const live = state === "connecting" || state === "ringing" || state === "active";
  ui.call.disabled = live || ui.playbook.options.length === 0;
  ui.playbook.disabled = live;
  ui.hangup.disabled = !live;
  ui.say.disabled = ui.saySend.disabled = ui.interrupt.disabled = state !== "active";
}

function notify(text) {
  ui.notice.textContent = text;
  ui.notice.hidden = !text;
}

const MAX_LOG_LINES = 500;
function log(kind, text) {
  const li = document.createElement("li");
  li.className = kind;
  const time = new Date().toISOString().slice(11, 23);
  li.textContent = `${time} ${text}`;
  ui.log.append(li);
  while (ui.log.childElementCount > MAX_LOG_LINES) ui.log.firstElementChild?.remove();
  li.scrollIntoView({ block: "nearest" });
}

/** Adds to the transcript, or updates the agent entry of the same playId. */
function say(who, text, playId, replace = false) {
  let entry = playId ? hooks.transcript.find((e) => e.who === who && e.playId === playId) : undefined;
  if (!entry) {
    entry = { who, text: "", playId, el: document.createElement("li") };
    entry.el.className = who;
    ui.transcript.append(entry.el);
    // Keep `el` out of the test hook's JSON.
    Object.defineProperty(entry, "el", { enumerable: false });
    hooks.transcript.push(entry);
  }
  entry.text = replace ? text : entry.text + text;
  entry.el.textContent = `${who === "caller" ? "Caller" : "Agent"}: ${entry.text}`;
  entry.el.scrollIntoView({ block: "nearest" });
}

// ------------------------------------------------------------------------------------------------------------
// REST

async function api(path) {
  const res = await fetch(path, { headers: token ? { Authorization: `Bearer ${token}` } : {} });
  if (!res.ok) throw new Error(`${path}: HTTP ${res.status}`);
  return res.json();
}

async function loadPlaybooks() {
  try {
    const { playbooks } = await api("/api/playbooks");
    ui.playbook.replaceChildren(
      ...playbooks.map((p) => {
        const opt = document.createElement("option");
        opt.value = p.name;
        opt.textContent = p.valid === false ? `${p.name} (invalid)` : p.name;
        return opt;
      }),
    );
    if (playbooks.some((p) => p.name === "hello.md")) ui.playbook.value = "hello.md";
    if (playbooks.length === 0) notify("No playbooks found.");
  } catch (err) {
    ui.playbook.replaceChildren();
    notify(`Cannot list playbooks: ${err.message}`);
    log("error", `playbooks: ${err.message}`);
  }
  setState(hooks.state);
}

// ------------------------------------------------------------------------------------------------------------
// Microphone: AudioWorklet that downsamples to 16 kHz PCM16 and posts 20 ms frames.
// Inline (Blob URL) so the page is three static files. `sampleRate` is a global of AudioWorkletGlobalScope.
const WORKLET = `
class Pcm16Downsampler extends AudioWorkletProcessor {
  constructor() {
    super();
    this.ratio = sampleRate / ${SAMPLE_RATE};  // input samples per output sample, e.g. 3 or 2.75625
    this.acc = 0; this.sum = 0; this.n = 0;     // box filter over each output sample's input span
    this.frame = new Int16Array(${FRAME_SAMPLES});
    this.fill = 0;
  }
  process(inputs) {
    const input = inputs[0];
    const ch = input && input[0];
    if (!ch) return true;
    for (let i = 0; i < ch.length; i++) {
      this.sum += ch[i]; this.n++; this.acc += 1;
      if (this.acc >= this.ratio) {
        this.acc -= this.ratio;
        const v = Math.max(-1, Math.min(1, this.sum / this.n));
        this.sum = 0; this.n = 0;
        this.frame[this.fill++] = v < 0 ? v * 0x8000 : v * 0x7fff;
        if (this.fill === this.frame.length) {
          this.port.postMessage(this.frame.buffer, [this.frame.buffer]);
          this.frame = new Int16Array(${FRAME_SAMPLES});
          this.fill = 0;
        }
      }
    }
    return true;
  }
}
registerProcessor("pcm16-downsampler", Pcm16Downsampler);
`;

let workletLoaded = false;
async function startMic() {
  const stream = await navigator.mediaDevices.getUserMedia({
    audio: { echoCancellation: true, noiseSuppression: true },
  });
  if (!workletLoaded) {
    const url = URL.createObjectURL(new Blob([WORKLET], { type: "text/javascript" }));
    try {
      await ctx.audioWorklet.addModule(url);
    } finally {
      URL.revokeObjectURL(url);
    }
    workletLoaded = true;
  }
  const source = ctx.createMediaStreamSource(stream);
  const node = new AudioWorkletNode(ctx, "pcm16-downsampler", { numberOfInputs: 1, numberOfOutputs: 1, outputChannelCount: [1] });
  node.port.onmessage = (e) => {
    // Caller audio is accepted from `answer` on (§5.2); earlier frames are dropped here.
    if (answered && ws && ws.readyState === WebSocket.OPEN) {
      ws.send(e.data);
      hooks.sentAudioFrames++;
    }
  };
  source.connect(node);
  // The node writes silence; connecting it keeps the graph pulling it in every browser.
  node.connect(ctx.destination);
  mic = { stream, source, node };
}

function stopMic() {
  if (!mic) return;
  mic.stream.getTracks().forEach((t) => t.stop());
  mic.source.disconnect();
  mic.node.port.onmessage = null;
  mic.node.disconnect();
  mic = null;
}

// ------------------------------------------------------------------------------------------------------------
// Playback: each received frame becomes an AudioBufferSourceNode started exactly where the previous one ends,
// so consecutive frames play without gaps. Stopping all scheduled sources cuts playback at once (barge-in).

let cursor = 0; // AudioContext time at which the next frame starts
const scheduled = new Set();

function playFrame(arrayBuffer) {
  const view = new DataView(arrayBuffer);
  const n = arrayBuffer.byteLength >> 1;
  hooks.receivedAudioBytes += arrayBuffer.byteLength;
  if (n === 0 || !ctx) return;
  const buffer = ctx.createBuffer(1, n, SAMPLE_RATE);
  const data = buffer.getChannelData(0);
  let peak = hooks.receivedAudioPeak;
  for (let i = 0; i < n; i++) {
    const s = view.getInt16(i * 2, true);
    const a = Math.abs(s);
    if (a > peak) peak = a;
    data[i] = s / 0x8000;
  }
  hooks.receivedAudioPeak = peak;
  const src = ctx.createBufferSource();
  src.buffer = buffer;
  src.connect(ctx.destination);
  // After a gap (or at the start) the cursor lies in the past: restart a little ahead of now.
  if (cursor < ctx.currentTime) cursor = ctx.currentTime + PLAYBACK_LEAD_S;
  src.start(cursor);
  cursor += buffer.duration;
  scheduled.add(src);
  hooks.scheduledSources = scheduled.size;
  src.onended = () => {
    scheduled.delete(src);
    hooks.scheduledSources = scheduled.size;
  };
}

function stopPlayback() {
  for (const src of scheduled) {
    try {
      src.stop();
    } catch {
      // already stopped
    }
  }
  scheduled.clear();
  hooks.scheduledSources = 0;
  cursor = 0;
}

// ------------------------------------------------------------------------------------------------------------
// Events (§4)

function onEvent(ev) {
  hooks.events.push(ev);
  const { event, timestamp: _t, ...rest } = ev;
  log(event === "error" ? "error" : "event", `${event} ${JSON.stringify(rest)}`);
  switch (event) {
    case "answer":
      answered = true;
      setState("active");
      if (ev.media) ui.media.textContent = `${ev.media.codec}/${ev.media.sampleRate} in, ${ev.media.outputCodec}/${ev.media.outputSampleRate} out`;
      break;
    case "ringing":
      setState("ringing");
      break;
    case "reject":
      notify(`Rejected: ${ev.reason}`);
      break;
    case "interruption":
      stopPlayback();
      break;
    case "trackEnd":
      if (ev.reason === "interrupted") stopPlayback();
      break;
    case "asrFinal":
      if (ev.text) say("caller", ev.text);
      break;
    case "llmDelta":
      say("agent", ev.text, ev.playId);
      break;
    case "llmFinal":
      // The final reply text supersedes the streamed pieces.
      if (ev.text) say("agent", ev.text, ev.playId, true);
      break;
    case "error":
      notify(`${ev.code}: ${ev.error}`);
      break;
    case "hangup":
      setState("ended", ev.reason);
      break;
  }
}

// ------------------------------------------------------------------------------------------------------------
// Call lifecycle

async function call() {
  notify("");
  const playbook = ui.playbook.value;
  if (!playbook) return;
  // Each call starts with fresh test hooks and transcript.
  hooks.events.length = 0;
  hooks.transcript.length = 0;
  hooks.receivedAudioBytes = hooks.receivedAudioPeak = hooks.sentAudioFrames = 0;
  ui.transcript.replaceChildren();
  answered = false;
  setState("connecting");

  // Created on the click (a user gesture), so the browser lets it play; kept for later calls.
  ctx ??= new AudioContext();
  await ctx.resume();

  try {
    await startMic();
    hooks.micError = null;
  } catch (err) {
    // Without a microphone the call still works for listening.
    hooks.micError = String(err?.message ?? err);
    notify(`Microphone unavailable (${hooks.micError}); you can still listen.`);
    log("error", `microphone: ${hooks.micError}`);
  }

  const scheme = location.protocol === "https:" ? "wss" : "ws";
  const tokenQuery = token ? `?token=${encodeURIComponent(token)}` : "";
  const socket = new WebSocket(`${scheme}://${location.host}/call${tokenQuery}`);
  socket.binaryType = "arraybuffer";
  ws = socket;

  socket.onopen = () => {
    const invite = {
      command: "invite",
      option: { codec: "pcm", sampleRate: SAMPLE_RATE, outputCodec: "pcm", outputSampleRate: SAMPLE_RATE, playbook },
    };
    socket.send(JSON.stringify(invite));
    log("command", `invite ${JSON.stringify(invite.option)}`);
  };
  socket.onmessage = (msg) => {
    if (typeof msg.data !== "string") {
      playFrame(msg.data);
      return;
    }
    let ev;
    try {
      ev = JSON.parse(msg.data);
    } catch {
      log("error", `not JSON: ${msg.data.slice(0, 200)}`);
      return;
    }
    if (ev && typeof ev.event === "string") onEvent(ev);
  };
  socket.onclose = (e) => {
    log("event", `socket closed ${e.code}${e.reason ? ` ${e.reason}` : ""}`);
    if (ws === socket) ws = null;
    stopMic();
    answered = false;
    if (hooks.state !== "ended") setState("ended", `close ${e.code}`);
  };
  socket.onerror = () => log("error", "WebSocket error");
}

function sendCommand(cmd) {
  if (!ws || ws.readyState !== WebSocket.OPEN) return false;
  ws.send(JSON.stringify(cmd));
  log("command", JSON.stringify(cmd));
  return true;
}

function hangup() {
  if (!sendCommand({ command: "hangup" })) {
    stopMic();
    setState("ended", "local");
  }
}

function speak() {
  const text = ui.say.value.trim();
  if (!text) return;
  const playId = `console-${++sayCount}`;
  if (sendCommand({ command: "tts", text, playId })) {
    say("agent", text, playId);
    ui.say.value = "";
  }
}

ui.call.addEventListener("click", () => {
  call().catch((err) => {
    log("error", String(err?.message ?? err));
    notify(String(err?.message ?? err));
    stopMic();
    setState("ended", "error");
  });
});
ui.hangup.addEventListener("click", hangup);
ui.saySend.addEventListener("click", speak);
ui.say.addEventListener("keydown", (e) => {
  if (e.key === "Enter") speak();
});
ui.interrupt.addEventListener("click", () => sendCommand({ command: "interrupt" }));

setState("idle");
loadPlaybooks();
