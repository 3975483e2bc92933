/**
 * The /phone page's PBX presets: where the lab's FreeSWITCH and Asterisk take SIP over secure WebSocket, who
 * registers, and which numbers reach an agent. test/phone-presets.test.ts checks every value against the lab's
 * files (lab/freeswitch, lab/asterisk, the drop-in dialplans), so a change there cannot leave the page behind.
 */
export const PRESETS = {
  freeswitch: {
    label: "FreeSWITCH (lab)",
    // lab/freeswitch/sip_profiles/lab.xml: wss-binding :7443; users 1000-1003 in lab/freeswitch/directory.
    port: 7443,
    path: "",
    user: "1000",
    extensions: [
      { number: "7700", what: "hello.md, park mode" },
      { number: "7701", what: "the [handler] playbook, socket mode" },
    ],
  },
  asterisk: {
    label: "Asterisk (lab)",
    // lab/asterisk/http.conf: TLS on 8089, res_http_websocket's /ws; endpoint 7001 in lab/asterisk/pjsip.conf.
    port: 8089,
    path: "/ws",
    user: "7001",
    extensions: [
      { number: "9000", what: "hello.md" },
      { number: "9001", what: "the [handler] playbook" },
    ],
  },
};

/** The WebSocket address of a preset on `host` (an IPv6 literal gets its brackets). */
export function presetServer(preset, host) {
  const h = host.includes(":") && !host.startsWith("[") ? `[${host}]` : host;
  return `wss://${h}:${preset.port}${preset.path}`;
}

/** `wss://host:port/path` -> `https://host:port/path`: the page a browser must open once to accept the certificate. */
export function certificatePage(server) {
  try {
    const u = new URL(server);
    if (u.protocol !== "wss:") return undefined;
    u.protocol = "https:";
    return u.toString();
  } catch {
    return undefined;
  }
}
