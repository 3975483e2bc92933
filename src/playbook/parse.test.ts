import { describe, expect, it } from "vitest";
import type { Config } from "../config/schema.js";
import type { PlaybookConfig, ParseOptions } from "./options.js";
import { parsePlaybook } from "./parse.js";

const parse = (text: string, opts: Partial<ParseOptions> = {}) => parsePlaybook(text, { file: "p.md", env: {}, ...opts });
const lines = (r: ReturnType<typeof parse>) => r.diagnostics.map((d) => `${d.line}:${d.column} ${d.severity}[${d.code}] ${d.message}`);
const fm = (yaml: string, body = "Talk.") => `---\n${yaml}\n---\n${body}\n`;

describe("aliases are normalised to canonical names", () => {
  it("maps every documented alias", () => {
    const r = parse(
      fm(
        [
          "followUp: { timeout: 5000, maxCount: 2 }",
          "extra: { company: Acme }",
          "asr: { provider: openai, secretKey: k1, endpoint: 'http://localhost:9/v1' }",
          "tts: { provider: scripted, speaker: coral, samplerate: 8000 }",
          "llm: { provider: scripted, greeting: 'Hello {{ company }}', deployment: gpt-x, features: [context_repair] }",
          "vad: { provider: silero, voiceThreshold: 0.6, speechPadding: 200, silencePadding: 120, maxBufferDurationSecs: 12.5 }",
          "interruption: { volumeFadeMs: 30 }",
          "posthook: { url: 'https://hooks.example/x', include_history: false }",
          "sip: { extract_headers: [X-Id], hangup_headers: { X-R: '{{ reason }}' } }",
          "dtmfCollectors: { pin: { description: PIN, digits: 4, timeout: 12, interDigitTimeout: 2.5, retries: 1 } }",
          "recorder: { path: 'calls-{id}.wav', sampleRate: 8000 }",
        ].join("\n"),
      ),
    );
    expect(lines(r)).toEqual([]);
    const p = r.playbook;
    expect(p?.settings).toEqual({
      followup: { timeout: 5000, max: 2 },
      variables: { company: "Acme" },
      asr: { provider: "openai", apiKey: "k1", baseUrl: "http://localhost:9/v1" },
      tts: { provider: "scripted", voice: "coral", sampleRate: 8000 },
      llm: { provider: "scripted", model: "gpt-x", features: ["contextRepair"] },
      greeting: "Hello {{ company }}",
      vad: { type: "tinysilero", threshold: 0.6, minSpeechMs: 200, minSilenceMs: 120, maxSpeechMs: 12500 },
      interruption: { fadeOutMs: 30 },
      posthook: { url: "https://hooks.example/x", includeHistory: false },
      sip: { extractHeaders: ["X-Id"], hangupHeaders: { "X-R": "{{ reason }}" } },
      dtmfCollectors: { pin: { description: "PIN", digits: 4, timeoutMs: 12000, interDigitTimeoutMs: 2500, retryTimes: 1 } },
      recorder: { recorderFile: "calls-{id}.wav", samplerate: 8000 },
    });
    expect(p?.greeting).toEqual({ text: "Hello {{ company }}", interruptible: true, generate: false });
  });

  it("realtime: extra.voice / extra.instructions and snake_case turn detection fields", () => {
    const r = parse(
      fm(
        [
          "realtime:",
          "  provider: openai",
          "  apiKey: k",
          "  extra: { voice: verse, instructions: 'Be kind.' }",
          "  turnDetection: { type: server_vad, prefix_padding_ms: 200, silence_duration_ms: 400 }",
        ].join("\n"),
      ),
    );
    expect(lines(r)).toEqual([]);
    expect(r.playbook?.pipeline).toBe("realtime");
    expect(r.playbook?.settings.realtime).toEqual({
      provider: "openai",
      apiKey: "k",
      voice: "verse",
      instructions: "Be kind.",
      turnDetection: { type: "server_vad", prefixPaddingMs: 200, silenceDurationMs: 400 },
    });
  });

  it("errors name and point at the key as written", () => {
    const r = parse(fm("followUp:\n  timeout: 5000\n  maxCount: many\nrealtime: { provider: openai, apiKey: k, extra: { voice: v, speed: 2 } }"));
    expect(lines(r)).toEqual([
      '4:13 error[type] followUp.maxCount must be an integer ≥ 0, got "many"',
      '5:61 error[unknown-key] unknown key "speed" in realtime.extra; it accepts voice and instructions',
    ]);
  });

  it("both names of a pair are an error at the second name", () => {
    const r = parse(fm("variables: { a: 1 }\nextra: { b: 2 }\nasr: { apiKey: x, secretKey: y }\nrealtime: { provider: openai, voice: a, extra: { voice: b } }"), { env: { OPENAI_API_KEY: "k" } });
    expect(lines(r)).toEqual([
      "3:1 error[alias-conflict] variables and extra are both set; keep one",
      "4:19 error[alias-conflict] asr.apiKey and asr.secretKey are both set; keep one",
      "5:50 error[alias-conflict] realtime.voice and realtime.extra.voice are both set; keep one",
    ]);
  });
});

describe("providers", () => {
  const openai = fm("llm: { provider: openai }\nasr: { provider: scripted }\ntts: { provider: scripted }");

  it("a missing OpenAI key is an error at load and a warning in lint", () => {
    expect(lines(parse(openai))).toEqual([
      '2:18 error[provider] llm.provider "openai" needs an API key: set llm.apiKey, [providers.openai] api_key or OPENAI_API_KEY',
    ]);
    expect(parse(openai).playbook).toBeUndefined();
    const lint = parse(openai, { missingCredentials: "warning" });
    expect(lint.diagnostics.map((d) => d.severity)).toEqual(["warning"]);
    expect(lint.playbook).toBeDefined();
  });

  it("the key may come from the playbook, the config defaults, [providers.openai] or OPENAI_API_KEY", () => {
    expect(parse(fm("llm: { provider: openai, apiKey: k }")).diagnostics).toEqual([]);
    expect(parse(openai, { env: { OPENAI_API_KEY: "k" } }).diagnostics).toEqual([]);
    expect(parse(openai, { config: { providers: { openai: { api_key: "k" } } } }).diagnostics).toEqual([]);
    expect(parse(openai, { config: { defaults: { llm: { apiKey: "k" } } } }).diagnostics).toEqual([]);
  });

  it("a provider chosen by the config defaults is checked too, at line 1", () => {
    const r = parse("---\n---\nHi\n", { config: { defaults: { asr: { provider: "scripted" }, tts: { provider: "scripted" }, llm: { provider: "openai" } } } });
    expect(lines(r)).toEqual(['1:1 error[provider] llm.provider "openai" needs an API key: set llm.apiKey, [providers.openai] api_key or OPENAI_API_KEY']);
  });

  it("auto never needs a key; azure needs a key and an endpoint", () => {
    expect(parse(fm("llm: { provider: auto }")).diagnostics).toEqual([]);
    expect(lines(parse(fm("llm: { provider: azure }")))).toEqual([
      '2:18 error[provider] llm.provider "azure" needs an API key: set llm.apiKey, [providers.azure] api_key or AZURE_OPENAI_API_KEY',
      '2:18 error[provider] llm.provider "azure" needs an endpoint: set llm.baseUrl, [providers.azure] endpoint or AZURE_OPENAI_ENDPOINT',
    ]);
    expect(parse(fm("llm: { provider: azure }"), { env: { AZURE_OPENAI_API_KEY: "k", AZURE_OPENAI_ENDPOINT: "https://r.openai.azure.com" } }).diagnostics).toEqual([]);
  });

  it("with realtime, asr and tts are not used, so their keys are not needed", () => {
    const r = parse(fm("realtime: { provider: openai, apiKey: k }\nasr: { provider: openai }\ntts: { provider: openai }"));
    expect(lines(r)).toEqual([]);
  });

  it("unknown names list the available ones", () => {
    expect(lines(parse(fm("tts: { provider: supertonic }\nllm: { provider: deepgram }\nrealtime: { provider: tencent }")))).toEqual([
      '2:18 error[provider] tts.provider "supertonic" is not available; available: openai, deepgram, elevenlabs, flite, espeak, scripted',
      '3:18 error[provider] llm.provider "deepgram" is not available; available: openai, azure, scripted',
      '4:23 error[provider] realtime.provider "tencent" is not available; available: openai, azure',
    ]);
  });
});

describe("pipeline", () => {
  it("needs an LLM or realtime when the config has no default LLM", () => {
    const config: PlaybookConfig = { defaults: {} };
    expect(lines(parse("---\n---\nHi\n", { config }))).toEqual([
      "1:1 error[pipeline] no LLM: set llm (or [defaults.llm] in the config), or realtime for a speech-to-speech model",
    ]);
    expect(parse(fm("llm: { provider: scripted }"), { config }).diagnostics).toEqual([]);
    expect(parse(fm("realtime: { provider: openai, apiKey: k }"), { config }).diagnostics).toEqual([]);
  });

  it("vad none only with realtime server turn detection", () => {
    expect(parse(fm("vad: { type: none }\nrealtime: { provider: openai, apiKey: k }")).diagnostics).toEqual([]);
    expect(lines(parse(fm("vad: { type: none }\nrealtime: { provider: openai, apiKey: k, turnDetection: { type: local } }")))).toEqual([
      '2:14 error[pipeline] vad.type "none" cannot be used with realtime.turnDetection.type "local", which needs the VAD',
    ]);
  });

  it("eou.silenceMs is at least the effective vad.minSilenceMs", () => {
    expect(lines(parse(fm("vad: { minSilenceMs: 700 }\neou: { silenceMs: 600 }")))).toEqual([
      "3:19 error[type] eou.silenceMs must be ≥ vad.minSilenceMs (700), got 600",
    ]);
    expect(parse(fm("eou: { silenceMs: 600 }"), { config: { defaults: { llm: {}, vad: { minSilenceMs: 800 } } } }).diagnostics).toHaveLength(1);
  });

  it("the loaded config type can be passed as it is", () => {
    const config = {} as Config;
    const asOption: PlaybookConfig = config;
    expect(asOption).toBe(config);
  });
});

describe("scenes", () => {
  const text = [
    "---",
    'dtmf: { "0": { action: hangup } }',
    "followup: { timeout: 9000, max: 1 }",
    "initialScene: b",
    "---",
    "<!-- shared rules -->",
    "Be brief. <!-- inline note --> Always.",
    '<dtmf digit="*" action="goto" scene="a"/>',
    '<play file="jingle.wav"/>',
    "",
    "# Scene: a",
    '<play file="a.wav" interruptible="true"/>',
    '<dtmf digit="0" action="goto" scene="b"/>',
    "",
    "Scene A text.",
    "",
    "",
    "",
    "More A.",
    "# Scene:b",
    '<followup timeout="3000" max="2" text="Hello?"/>',
    "Scene B. <goto scene=\"a\"/>",
  ].join("\n");

  it("preamble, per-scene keys over global ones, plays in order, follow-up per scene, comments removed", () => {
    const r = parse(text);
    expect(lines(r)).toEqual([]);
    const p = r.playbook;
    expect(p?.preamble).toBe("Be brief.  Always.");
    expect(p?.initialScene).toBe("b");
    expect(p?.dtmf).toEqual({ "0": { action: "hangup" }, "*": { action: "goto", scene: "a" } });
    const a = p?.scenes.get("a");
    expect(a).toEqual({
      id: "a",
      line: 11,
      prompt: "Scene A text.\n\nMore A.",
      dtmf: { "0": { action: "goto", scene: "b" }, "*": { action: "goto", scene: "a" } },
      plays: [
        { file: "jingle.wav", interruptible: false },
        { file: "a.wav", interruptible: true },
      ],
      followup: { timeout: 9000, max: 1 },
    });
    expect(p?.scenes.get("b")?.followup).toEqual({ timeout: 3000, max: 2, text: "Hello?" });
    expect(p?.scenes.get("b")?.prompt).toBe('Scene B. <goto scene="a"/>');
    expect(p?.playFiles).toEqual(["jingle.wav", "a.wav"]);
  });

  it("without headers the body is the scene default; a scene with only tags is empty", () => {
    const r = parse(fm("", "# Scene: x\n<play file=\"a.wav\"/>\n<!-- nothing -->\n"));
    expect(lines(r)).toEqual(['4:1 warning[empty-scene] scene "x" has no prompt text']);
    const d = parse("---\n---\n# Title\nHello\n");
    expect([...(d.playbook?.scenes.keys() ?? [])]).toEqual(["default"]);
    expect(d.playbook?.scenes.get("default")?.prompt).toBe("# Title\nHello");
  });

  it("a scene reached only through a global key or the preamble is reachable", () => {
    const r = parse(fm('dtmf: { "1": { action: goto, scene: c } }', "Use <goto scene=\"b\"/>.\n# Scene: a\nA\n# Scene: b\nB\n# Scene: c\nC\n# Scene: d\nD"));
    expect(lines(r)).toEqual(['11:1 warning[unreachable-scene] scene "d" is never entered']);
  });

  it("a header inside an HTML comment does not count", () => {
    const r = parse(fm("", "Hi\n<!--\n# Scene: hidden\n-->\nThere"));
    expect([...(r.playbook?.scenes.keys() ?? [])]).toEqual(["default"]);
    expect(r.playbook?.scenes.get("default")?.prompt).toBe("Hi\nThere");
  });

  it("a <play> inside a line of text stays in the prompt", () => {
    const r = parse(fm("", 'Say hi, then <play file="x.wav"/> and stop.'));
    expect(r.playbook?.scenes.get("default")).toMatchObject({ plays: [], prompt: 'Say hi, then <play file="x.wav"/> and stop.' });
  });

  it("diagnostics are sorted by position and the playbook is withheld on any error", () => {
    const r = parse(fm("llm: { temprature: 1 }\ngreeting: 5", "# Scene: a\nA\n# Scene: a\nB"));
    expect(r.playbook).toBeUndefined();
    expect(r.diagnostics.map((d) => [d.line, d.column])).toEqual([
      [2, 8],
      [3, 11],
      [7, 1],
    ]);
  });
});

describe("http and tools", () => {
  it("<http> is fine when httpAllow is set; the tool URL may be a template", () => {
    const r = parse(
      fm(
        "httpAllow: ['https://api.example.com/']\ntools:\n  - { name: t, description: d, http: { url: '{{ base }}/x' } }\nvariables: { base: 'https://api.example.com' }",
        'Use <http url="https://api.example.com/a"/>.',
      ),
    );
    expect(lines(r)).toEqual([]);
  });

  it("httpAllow entries are URLs; builtinTools are built-in names", () => {
    expect(lines(parse(fm("httpAllow: [api.example.com]\nllm: { builtinTools: [hangup_cal] }")))).toEqual([
      '2:13 error[type] httpAllow[0] must be an http(s) URL prefix such as https://api.example.com/, got "api.example.com"',
      '3:23 error[type] llm.builtinTools[0] must be one of "hangup_call", "transfer_call", "goto_scene", "play_audio", "set_variable", "collect_digits", "http_request", "send_dtmf"; got "hangup_cal"; did you mean "hangup_call"?',
    ]);
  });
});
