/**
 * Test helpers for the runner (excluded from the build): a scripted LLM, a fake call that records commands
 * and plays utterances out on request, and playbook loading.
 */
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { makeSoundsDir } from "../../../test/fixtures/playbooks/sounds.js";
import { parsePlaybook } from "../parse.js";
import type { Playbook } from "../types.js";
import type { CallFacts } from "../variables.js";
import { PlaybookRunner, type RunnerOptions } from "./runner.js";
import type { LlmRequest, LlmStreamEvent, RunnerCommand, RunnerEvent, RunnerLlm, RunnerSink } from "./types.js";

const ROOT = fileURLToPath(new URL("../../..", import.meta.url));

export function loadPlaybook(nameOrText: string, file = "test.md"): Playbook {
  const sounds = makeSoundsDir(["hello.wav", "bank/welcome.wav", "a.wav", "b.wav"]);
  try {
    const text = nameOrText.startsWith("---") ? nameOrText : readFileSync(`${ROOT}/playbooks/${nameOrText}`, "utf8");
    const r = parsePlaybook(text, {
      file: nameOrText.startsWith("---") ? file : `playbooks/${nameOrText}`,
      env: { OPENAI_API_KEY: "sk-test" },
      soundsDir: sounds.dir,
    });
    const errors = r.diagnostics.filter((d) => d.severity === "error");
    if (!r.playbook) throw new Error(`playbook does not parse: ${JSON.stringify(errors)}`);
    return r.playbook;
  } finally {
    sounds.remove();
  }
}

export type ScriptedReply =
  | string
  | { text?: string; chunks?: string[]; tools?: { name: string; args: Record<string, unknown> | string; id?: string }[]; fail?: Error };

/** An LLM that plays replies in order (a function reply sees the request); text streams in 3-character deltas. */
export class ScriptLlm implements RunnerLlm {
  readonly requests: LlmRequest[] = [];
  private n = 0;
  constructor(private readonly replies: (ScriptedReply | ((req: LlmRequest) => ScriptedReply))[]) {}

  async *chat(request: LlmRequest): AsyncGenerator<LlmStreamEvent> {
    this.requests.push({ ...request, messages: request.messages.map((m) => ({ ...m })) });
    const next = this.replies[this.n++] ?? "";
    const reply = typeof next === "function" ? next(request) : next;
    const r = typeof reply === "string" ? { text: reply } : reply;
    if (r.fail) throw r.fail;
    const chunks = r.chunks ?? (r.text ?? "").match(/[\s\S]{1,3}/g) ?? [];
    for (const delta of chunks) {
      await Promise.resolve();
      if (request.signal?.aborted) return;
      yield { type: "text", delta };
    }
    for (const [i, t] of (r.tools ?? []).entries()) {
      const text = typeof t.args === "string" ? t.args : JSON.stringify(t.args);
      let args: Record<string, unknown> | undefined;
      try {
        args = JSON.parse(text) as Record<string, unknown>;
      } catch {
        args = undefined;
      }
      yield { type: "tool_call", id: t.id ?? `call_${this.n}_${i}`, name: t.name, arguments: args, argumentsText: text, ...(args ? {} : { error: "invalid arguments" }) };
    }
    yield { type: "done", finishReason: r.tools?.length ? "tool_calls" : "stop" };
  }
}

interface Utterance {
  playId: string;
  kind: "tts" | "play";
  text: string;
  complete: boolean;
  ended: boolean;
  interruptible: boolean;
}

/** Records what the runner issues; plays utterances out when told to. */
export class FakeCall implements RunnerSink {
  readonly commands: RunnerCommand[] = [];
  readonly events: RunnerEvent[] = [];
  readonly utterances: Utterance[] = [];
  runner!: PlaybookRunner;

  command(c: RunnerCommand): void {
    this.commands.push(c);
    if (c.command === "tts") {
      let u = this.utterances.find((x) => x.playId === c.playId && !x.complete);
      if (!u) {
        u = { playId: c.playId, kind: "tts", text: "", complete: false, ended: false, interruptible: c.interruptible };
        this.utterances.push(u);
      }
      u.text += c.text;
      u.interruptible = c.interruptible;
      if (!c.streaming || c.endOfStream) u.complete = true;
    } else if (c.command === "play") {
      this.utterances.push({ playId: c.playId, kind: "play", text: c.url, complete: true, ended: false, interruptible: c.interruptible });
    } else if (c.command === "interrupt") {
      for (const u of this.utterances) {
        if (!u.ended) {
          u.ended = true;
          u.complete = true;
          queueMicrotask(() => this.runner.handle({ type: "agentSpeechEnded", playId: u.playId, interrupted: true, heard: "" }));
        }
      }
    }
  }

  event(e: RunnerEvent): void {
    this.events.push(e);
  }

  /** Plays out every complete utterance not yet ended, in order (trackEnd for each). */
  finishPlayback(): string[] {
    const done: string[] = [];
    for (const u of this.utterances) {
      if (u.complete && !u.ended) {
        u.ended = true;
        done.push(u.playId);
        this.runner.handle({ type: "agentSpeechEnded", playId: u.playId });
      }
    }
    return done;
  }

  /** The caller barges in on `playId` after hearing `heard`. */
  bargeIn(playId: string, heard: string): void {
    const u = this.utterances.find((x) => x.playId === playId && !x.ended);
    if (u) u.ended = true;
    this.runner.handle({ type: "agentSpeechEnded", playId, interrupted: true, heard });
  }

  /** Spoken text of each tts utterance, in order. */
  spoken(): string[] {
    return this.utterances.filter((u) => u.kind === "tts").map((u) => u.text);
  }

  /** Commands of one kind. */
  of<K extends RunnerCommand["command"]>(kind: K): Extract<RunnerCommand, { command: K }>[] {
    return this.commands.filter((c): c is Extract<RunnerCommand, { command: K }> => c.command === kind);
  }

  eventsOf<K extends RunnerEvent["event"]>(kind: K): Extract<RunnerEvent, { event: K }>[] {
    return this.events.filter((e): e is Extract<RunnerEvent, { event: K }> => e.event === kind);
  }

  /** Short trace of commands, for order checks (repeated streaming chunks of one utterance shown once). */
  trace(): string[] {
    const all = this.commands.map((c) => {
      switch (c.command) {
        case "tts":
          return c.endOfStream ? `end:${c.playId}` : `tts:${c.playId}`;
        case "play":
          return `play:${c.url}`;
        case "hangup":
          return `hangup:${c.reason}`;
        case "refer":
          return `refer:${c.callee}`;
        case "transfer":
          return `transfer:${c.target}`;
        case "interrupt":
          return "interrupt";
        case "dtmf":
          return `dtmf:${c.digits}`;
      }
    });
    return all.filter((t, i) => !(t.startsWith("tts:") && all[i - 1] === t));
  }
}

export const CALL: CallFacts = {
  callId: "c1",
  callType: "freeswitch",
  direction: "inbound",
  caller: "+15551230000",
  callee: "200",
  startTime: new Date("2026-11-23T10:00:00Z"),
  playbook: "test.md",
};

export function makeRunner(
  playbook: Playbook,
  replies: ConstructorParameters<typeof ScriptLlm>[0],
  opts: Partial<RunnerOptions> = {},
): { runner: PlaybookRunner; call: FakeCall; llm: ScriptLlm } {
  const call = new FakeCall();
  const llm = new ScriptLlm(replies);
  const runner = new PlaybookRunner({ playbook, call: CALL, llm, sink: call, ...opts });
  call.runner = runner;
  return { runner, call, llm };
}
