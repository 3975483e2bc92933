/**
 * The /phone page: a WebRTC softphone on JsSIP (bundled by web/build-phone.mjs into dist/web/phone.js, then
 * inlined into the page by the controller). It registers with the lab's FreeSWITCH or Asterisk over WSS and calls
 * an agent extension: the same path a SIP phone takes, so the PBX, not the controller, does SIP, SRTP and codecs.
 */
import JsSIP from "jssip";
import { PRESETS, certificatePage, presetServer } from "./phone-presets.js";

const $ = (id) => document.getElementById(id);
const host = location.hostname || "localhost";
const causes = JsSIP.C.causes;

let ua;
let session;
let connectedOnce = false;

function log(text, kind = "") {
  const li = document.createElement("li");
  li.textContent = `${new Date().toISOString().slice(11, 23)} ${text}`;
  if (kind) li.className = kind;
  $("log").append(li);
  li.scrollIntoView({ block: "nearest" });
}

function showError(text) {
  $("error").textContent = text;
  $("error").hidden = false;
  log(text, "error");
}

function clearError() {
  $("error").hidden = true;
  $("error").textContent = "";
}

function setRegState(text) {
  $("reg-state").textContent = text;
}

function setCallState(text) {
  $("call-state").textContent = text;
  log(`call: ${text}`);
}

function updateButtons() {
  const registered = ua?.isRegistered() ?? false;
  $("register").disabled = ua !== undefined && ua.isConnected() && registered;
  $("unregister").disabled = ua === undefined;
  $("call").disabled = !registered || session !== undefined;
  $("hangup").disabled = session === undefined;
  $("mute").disabled = session === undefined || !session.isEstablished();
  for (const b of $("keypad").querySelectorAll("button")) b.disabled = session === undefined || !session.isEstablished();
}

function updateCertLink() {
  const page = certificatePage($("server").value.trim());
  $("cert-link").href = page ?? "#";
  $("cert-link").textContent = page ?? "the WebSocket's address over https";
}

function applyPreset(name) {
  const preset = PRESETS[name];
  const list = $("extensions");
  list.replaceChildren();
  if (preset) {
    $("server").value = presetServer(preset, host);
    $("user").value = preset.user;
    $("domain").value = host;
    $("target").value = preset.extensions[0].number;
    for (const e of preset.extensions) {
      const o = document.createElement("option");
      o.value = e.number;
      o.label = e.what;
      list.append(o);
    }
    $("extension-hint").textContent = preset.extensions.map((e) => `${e.number}: ${e.what}`).join(" · ");
  } else {
    $("extension-hint").textContent = "Any number your PBX routes to the controller.";
  }
  updateCertLink();
}

/** The account fields, or an error that names the field. */
function account() {
  const server = $("server").value.trim();
  const user = $("user").value.trim();
  const domain = $("domain").value.trim();
  const password = $("password").value;
  if (!/^wss?:\/\/[^/]+/.test(server)) return { error: "WebSocket: give a ws:// or wss:// address, e.g. wss://localhost:7443" };
  if (!/^[^\s@:;]+$/.test(user)) return { error: "User: give the SIP user name, e.g. 1000" };
  if (!/^[^\s@/;]+$/.test(domain)) return { error: "Domain: give the host or SIP domain, e.g. localhost" };
  if (password === "") return { error: "Password: give the SIP password (LAB_SIP_PASSWORD in the lab's .env)" };
  return { server, user, domain, password };
}

function register() {
  clearError();
  const a = account();
  if (a.error) return showError(a.error);
  stopUa();
  connectedOnce = false;
  const socket = new JsSIP.WebSocketInterface(a.server);
  ua = new JsSIP.UA({
    sockets: [socket],
    uri: `sip:${a.user}@${a.domain}`,
    password: a.password,
    display_name: `Browser ${a.user}`,
    user_agent: "active-call-phone",
    register: true,
    session_timers: false,
    connection_recovery_min_interval: 2,
    connection_recovery_max_interval: 30,
  });
  ua.on("connecting", () => setRegState(`connecting to ${a.server}…`));
  ua.on("connected", () => {
    connectedOnce = true;
    log(`connected to ${a.server}`);
    setRegState("connected, registering…");
  });
  ua.on("disconnected", (e) => {
    setRegState("disconnected");
    if (!connectedOnce && e.error) {
      const page = certificatePage(a.server);
      showError(
        page
          ? `Cannot connect to ${a.server}. Is the PBX running? If it is, the browser has not accepted its certificate: open ${page} once, accept it, then register again.`
          : `Cannot connect to ${a.server}. Is the PBX running and listening there?`,
      );
    } else if (e.error) log(`connection to ${a.server} lost; reconnecting`, "error");
    updateButtons();
  });
  ua.on("registered", () => {
    clearError();
    setRegState(`registered as ${a.user}@${a.domain}`);
    log(`registered as ${a.user}@${a.domain}`);
    updateButtons();
  });
  ua.on("unregistered", () => {
    setRegState("not registered");
    updateButtons();
  });
  ua.on("registrationFailed", (e) => {
    setRegState("registration failed");
    const why = e.cause === causes.AUTHENTICATION_ERROR || e.cause === causes.REJECTED ? ": check the user and the password (LAB_SIP_PASSWORD in .env)" : "";
    const status = e.response ? ` (${e.response.status_code} ${e.response.reason_phrase})` : "";
    showError(`Registration failed: ${e.cause}${status}${why}`);
    updateButtons();
  });
  ua.on("newRTCSession", (e) => {
    if (e.originator !== "remote") return;
    // This page only calls out; a call to it is refused rather than left ringing.
    log(`incoming call from ${e.request.from.uri.toString()} refused (486)`);
    e.session.terminate({ status_code: 486, reason_phrase: "Busy Here" });
  });
  ua.start();
  updateButtons();
}

function stopUa() {
  if (!ua) return;
  if (session) session.terminate();
  ua.stop();
  ua = undefined;
  setRegState("not registered");
}

function call() {
  clearError();
  const target = $("target").value.trim();
  if (!/^[^\s@]+$/.test(target)) return showError("Number: give the extension to call, e.g. 7700");
  if (!navigator.mediaDevices?.getUserMedia) {
    return showError("This browser gives no microphone to this page: open it on localhost or over HTTPS.");
  }
  const domain = $("domain").value.trim();
  setCallState(`calling ${target}… (allow the microphone if the browser asks)`);
  try {
    session = ua.call(`sip:${target}@${domain}`, callOptions(target));
  } catch (err) {
    // JsSIP refuses a target it cannot parse synchronously: say so instead of leaving the page half-calling.
    session = undefined;
    setCallState("idle");
    showError(`Number: ${err.message}`);
  }
  updateButtons();
}

function callOptions(target) {
  return {
    mediaConstraints: { audio: true, video: false },
    pcConfig: { iceServers: [] },
    eventHandlers: {
      // Attached before JsSIP creates the RTCPeerConnection (inside ua.call), so the remote track is never missed.
      peerconnection: (e) => attachRemote(e.peerconnection),
      progress: () => setCallState(`ringing ${target}`),
      accepted: () => setCallState(`answered by ${target}`),
      confirmed: () => {
        setCallState(`in call with ${target}`);
        updateButtons();
      },
      ended: (e) => endSession(`ended (${e.originator === "local" ? "you hung up" : e.cause})`),
      failed: (e) => {
        if (e.cause === causes.USER_DENIED_MEDIA_ACCESS) {
          showError("The microphone is blocked: allow it for this page (the icon in the address bar) and call again.");
        } else if (e.cause !== causes.CANCELED) {
          const status = e.message?.status_code ? ` (${e.message.status_code} ${e.message.reason_phrase})` : "";
          showError(`Call failed: ${e.cause}${status}`);
        }
        endSession(`failed (${e.cause})`);
      },
    },
  };
}

function attachRemote(pc) {
  pc.addEventListener("track", (ev) => {
    $("remote").srcObject = ev.streams[0] ?? new MediaStream([ev.track]);
  });
}

function endSession(state) {
  setCallState(state);
  session = undefined;
  $("mute").setAttribute("aria-pressed", "false");
  $("mute").textContent = "Mute";
  $("remote").srcObject = null;
  updateButtons();
}

function toggleMute() {
  if (!session) return;
  const muted = session.isMuted().audio;
  if (muted) session.unmute({ audio: true });
  else session.mute({ audio: true });
  $("mute").setAttribute("aria-pressed", String(!muted));
  $("mute").textContent = muted ? "Mute" : "Unmute";
  log(muted ? "microphone on" : "microphone muted");
}

function sendTone(tone) {
  if (!session?.isEstablished()) return;
  // SIP INFO (application/dtmf-relay): FreeSWITCH takes it as is, the lab's Asterisk endpoint has dtmf_mode=info.
  session.sendDTMF(tone, { transportType: "INFO", duration: 160 });
  log(`DTMF ${tone}`);
}

$("pbx").addEventListener("change", () => applyPreset($("pbx").value));
$("server").addEventListener("input", updateCertLink);
$("register").addEventListener("click", register);
$("unregister").addEventListener("click", () => {
  stopUa();
  updateButtons();
});
$("call").addEventListener("click", call);
$("hangup").addEventListener("click", () => session?.terminate());
$("mute").addEventListener("click", toggleMute);
$("keypad").addEventListener("click", (ev) => {
  const tone = ev.target.closest?.("button")?.dataset.tone;
  if (tone) sendTone(tone);
});
document.addEventListener("keydown", (ev) => {
  if (ev.target instanceof HTMLInputElement) return;
  if (/^[0-9*#]$/.test(ev.key)) sendTone(ev.key);
});
window.addEventListener("beforeunload", stopUa);

const preset = new URLSearchParams(location.search).get("pbx");
if (preset && preset in PRESETS) $("pbx").value = preset;
applyPreset($("pbx").value);
updateButtons();
// For tests and the browser console: the live call, if any.
window.activeCallPhone = { get session() { return session; } };
