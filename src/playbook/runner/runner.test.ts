import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { trimHistory } from "./prompt.js";
import { loadPlaybook, makeRunner } from "./testutil.js";
import type { ChatMessage } from "./types.js";

const bank = () => loadPlaybook("bank-ivr.md");
const support = () => loadPlaybook("support.md");

const sys = (m: readonly ChatMessage[]) => (m[0] as { content: string }).content;
const texts = (m: readonly ChatMessage[]) => m.map((x) => `${x.role}:${"content" in x ? x.content : ""}`);

describe("system prompt and tools (§4.1, §4.3)", () => {
  it("builds the bank IVR prompt: preamble, scene, tag lines, collectors", () => {
    const { runner } = makeRunner(bank(), []);
    runner.start();
    const p = runner.prompt;
    expect(p.indexOf("You are the voice menu of Harbor Bank")).toBe(0);
    expect(p).toContain("Welcome the caller in one sentence");
    expect(p).not.toContain("To give a balance");
    expect(p).toContain("<goto scene=\"SCENE\"/> moves the conversation to SCENE. Scenes: menu, balance, card, closing.");
    expect(p).toContain('<collect type="COLLECTOR"');
    expect(p).toContain('<play file="FILE"/>');
    expect(p).not.toContain("<http");
    expect(p).toContain("- account: 8-digit account number; exactly 8 digits; the caller ends with #.");
    expect(p).toContain("- pin: 4-digit telephone PIN; exactly 4 digits; no finish key.");
    const names = runner.tools.map((t) => t.name);
    expect(names).toEqual(["hangup_call", "transfer_call", "goto_scene", "play_audio", "set_variable", "collect_digits", "send_dtmf"]);
    const gotoTool = runner.tools.find((t) => t.name === "goto_scene");
    expect(gotoTool?.parameters).toMatchObject({ properties: { scene: { enum: ["menu", "balance", "card", "closing"] } } });
  });

  it("renders templates with the call's facts and offers the playbook's HTTP tools; toolMode and builtinTools filter", () => {
    const { runner } = makeRunner(support(), []);
    runner.start();
    expect(runner.prompt).toContain("You are Ava, a friendly support agent for Northwind");
    expect(runner.prompt).not.toContain("<!--");
    expect(runner.tools.map((t) => t.name)).toEqual(["hangup_call", "transfer_call", "set_variable", "send_dtmf", "lookup_order"]);
    expect(runner.tools.at(-1)?.parameters).toMatchObject({ required: ["order_number"] });

    const native = loadPlaybook(`---\nllm: { provider: scripted, toolMode: native, builtinTools: [hangup_call] }\n---\nBe brief.\n`);
    const r2 = makeRunner(native, []).runner;
    r2.start();
    expect(r2.prompt).toBe("Be brief.");
    expect(r2.tools.map((t) => t.name)).toEqual(["hangup_call"]);

    const tags = loadPlaybook(`---\nllm: { provider: scripted, toolMode: tags }\n---\nBe brief.\n`);
    const r3 = makeRunner(tags, [], { call: { ...makeCall(), callType: "twilio" } }).runner;
    r3.start();
    expect(r3.tools).toEqual([]);
    expect(r3.prompt).toContain("<hangup/> ends the call");
    expect(r3.prompt).not.toContain("<refer");
  });
});

function makeCall() {
  return { callId: "c1", callType: "freeswitch" as const, direction: "inbound" as const, startTime: new Date(0), playbook: "t.md", caller: "+1555" };
}

describe("greeting (§2.8)", () => {
  it("speaks the text with the interruptible flag of the playbook, after the initial scene's plays", async () => {
    const { runner, call } = makeRunner(support(), []);
    runner.start();
    expect(call.of("tts")).toEqual([
      { command: "tts", text: "Hi there, thanks for calling Northwind support. How can I help?", playId: "greeting", interruptible: true, queue: true },
    ]);
    const pb = loadPlaybook(`---\nllm: { provider: scripted }\ngreeting: { text: "Hello {{ caller }}", play: hello.wav, interruptible: false }\n---\n<play file="a.wav"/>\nHi\n`);
    const r = makeRunner(pb, []);
    r.runner.start();
    expect(r.call.trace()).toEqual(["play:a.wav", "play:hello.wav", "tts:greeting"]);
    expect(r.call.of("tts")[0]).toMatchObject({ text: "Hello +15551230000", interruptible: false });
    expect(r.call.of("play")[1]).toMatchObject({ url: "hello.wav", interruptible: false });
    await r.runner.idle();
    expect(r.llm.requests).toHaveLength(0);
  });

  it("lets the LLM write the opening line when the greeting generates; false waits for the caller", async () => {
    const pb = loadPlaybook(`---\nllm: { provider: scripted }\ngreeting: { generate: true, interruptible: false }\n---\nHi\n`);
    const r = makeRunner(pb, ["Good morning!"]);
    r.runner.start();
    await r.runner.idle();
    expect(r.call.spoken()).toEqual(["Good morning!"]);
    expect(r.call.of("tts").every((c) => c.interruptible === false)).toBe(true);
    const b = makeRunner(bank(), []);
    b.runner.start();
    await b.runner.idle();
    expect(b.call.trace()).toEqual(["play:bank/welcome.wav"]);
    expect(b.llm.requests).toHaveLength(0);
  });
});

describe("application-driven calls (respond: false)", () => {
  it("keeps caller turns in the history but never asks the LLM or speaks", async () => {
    const pb = loadPlaybook(`---\nllm: { provider: scripted }\ngreeting: false\n---\nHi\n`);
    const r = makeRunner(pb, ["should never be said"], { respond: false });
    r.runner.start();
    r.runner.handle({ type: "callerTurn", text: "what is my balance" });
    await r.runner.idle();
    expect(r.llm.requests).toHaveLength(0);
    expect(r.call.spoken()).toEqual([]);
    expect(r.runner.snapshot().history.map((h) => h.message)).toEqual([{ role: "user", content: "what is my balance" }]);
    // The same playbook answering (the default) does ask the LLM.
    const answering = makeRunner(pb, ["Sure."]);
    answering.runner.start();
    answering.runner.handle({ type: "callerTurn", text: "what is my balance" });
    await answering.runner.idle();
    expect(answering.llm.requests).toHaveLength(1);
  });
});

describe("scene switching (§3.3)", () => {
  it("switches on a <goto> tag: the rest of the reply is spoken, then a continuation turn in the new scene", async () => {
    const { runner, call, llm } = makeRunner(bank(), ['Sure. <goto scene="balance"/>Let me help.', "Please have your account number ready."]);
    runner.start();
    runner.handle({ type: "callerTurn", text: "balance please" });
    await runner.idle();
    expect(call.eventsOf("sceneChange")).toEqual([{ event: "sceneChange", from: "menu", to: "balance", trigger: "llm" }]);
    expect(call.spoken()).toEqual(["Sure. Let me help.", "Please have your account number ready."]);
    expect(llm.requests).toHaveLength(2);
    expect(sys(llm.requests[0]!.messages)).toContain("Welcome the caller");
    const second = llm.requests[1]!.messages;
    expect(sys(second)).toContain("To give a balance you need the account number");
    expect(texts(second).slice(1)).toEqual(["user:balance please", "system:[scene changed to balance]", "assistant:Sure. Let me help."]);
    expect(runner.snapshot().scenes).toEqual(["menu", "balance"]);
  });

  it("switches on the goto_scene tool; the tool result and the new prompt go to the next call", async () => {
    const { runner, call, llm } = makeRunner(bank(), [{ text: "One moment.", tools: [{ name: "goto_scene", args: { scene: "card" }, id: "t1" }] }, "Was it lost or stolen?"]);
    runner.start();
    runner.handle({ type: "callerTurn", text: "I lost my card" });
    await runner.idle();
    expect(call.eventsOf("sceneChange")).toEqual([{ event: "sceneChange", from: "menu", to: "card", trigger: "tool" }]);
    const m = llm.requests[1]!.messages;
    expect(sys(m)).toContain("Ask whether the card was lost or stolen");
    expect(m.slice(-3)).toEqual([
      { role: "assistant", content: "One moment.", toolCalls: [{ id: "t1", name: "goto_scene", arguments: '{"scene":"card"}' }] },
      { role: "system", content: "[scene changed to card]" },
      { role: "tool", toolCallId: "t1", content: '{"ok":true}' },
    ]);
    expect(call.eventsOf("functionCall")).toHaveLength(1);
    expect(call.eventsOf("functionResult")[0]).toMatchObject({ callId: "t1", ok: true });
  });

  it("ignores an unknown scene in a tag with an error event, and does not continue", async () => {
    const { runner, call, llm } = makeRunner(bank(), ['Okay <goto scene="nowhere"/> then.']);
    runner.start();
    runner.handle({ type: "callerTurn", text: "x" });
    await runner.idle();
    expect(call.eventsOf("error")[0]).toMatchObject({ sender: "playbook", code: "BAD_REQUEST" });
    expect(runner.scene).toBe("menu");
    expect(llm.requests).toHaveLength(1);
    expect(call.spoken()).toEqual(["Okay  then."]);
  });

  it("switches on a goto key: interrupts interruptible playback, queues the plays, then the LLM replies", async () => {
    const pb = loadPlaybook(`---\nllm: { provider: scripted }\ngreeting: "Press 1 for sales."\n---\n# Scene: a\n<dtmf digit="1" action="goto" scene="b"/>\nHi\n# Scene: b\n<play file="b.wav"/>\nSales here.\n`);
    const { runner, call, llm } = makeRunner(pb, ["Welcome to sales."]);
    runner.start();
    runner.handle({ type: "dtmf", digit: "1" });
    await runner.idle();
    expect(call.trace()).toEqual(["tts:greeting", "interrupt", "play:b.wav", "tts:r-2", "end:r-2"]);
    expect(call.eventsOf("sceneChange")).toEqual([{ event: "sceneChange", from: "a", to: "b", trigger: "dtmf" }]);
    expect(sys(llm.requests[0]!.messages)).toBe(
      "Sales here.\n\nYou are talking with a caller on the phone. Answer in short spoken sentences; each sentence is spoken as soon as you finish it.\nYou can act on the call by writing these tags in your reply. Tags are never spoken.\n<hangup/> ends the call after you finish speaking.\n<refer to=\"TARGET\"/> transfers the caller to TARGET.\n<goto scene=\"SCENE\"/> moves the conversation to SCENE. Scenes: a, b.\n<play file=\"FILE\"/> plays a recording to the caller.\n<set_var key=\"NAME\" value=\"VALUE\"/> remembers a value for later.",
    );
  });
});

describe("DTMF actions (§2.9)", () => {
  it("global key with say: the say is not interruptible and the transfer runs after it was played", async () => {
    const { runner, call } = makeRunner(bank(), []);
    runner.start();
    call.finishPlayback();
    runner.handle({ type: "dtmf", digit: "0" });
    expect(call.of("tts")).toEqual([{ command: "tts", text: "Connecting you to an operator.", playId: expect.any(String), interruptible: false, queue: true }]);
    expect(call.of("transfer")).toEqual([]);
    call.finishPlayback();
    expect(call.of("transfer")).toEqual([{ command: "transfer", target: "operator", context: "bank", mode: "dialplan" }]);
    expect(runner.snapshot().transfers).toEqual([{ mode: "dialplan", target: "operator", context: "bank", trigger: "dtmf", at: expect.any(Number) }]);
    // The call is ending: further keys and turns are ignored.
    runner.handle({ type: "dtmf", digit: "1" });
    runner.handle({ type: "callerTurn", text: "hello?" });
    await runner.idle();
    expect(call.eventsOf("sceneChange")).toEqual([]);
  });

  it("a scene's key overrides the global one; unmapped keys do nothing; hangup and refer keys", async () => {
    const pb = loadPlaybook(
      `---\nllm: { provider: scripted }\ngreeting: false\ndtmf:\n  "1": { action: hangup }\n  "2": { action: transfer, target: "sip:desk@example.com" }\n---\n# Scene: a\n<dtmf digit="1" action="goto" scene="b"/>\nA\n# Scene: b\nB\n`,
    );
    const { runner, call, llm } = makeRunner(pb, ["In b.", "Sorry, the desk is busy."]);
    runner.start();
    runner.handle({ type: "dtmf", digit: "5" });
    expect(call.commands).toEqual([]);
    runner.handle({ type: "dtmf", digit: "1" });
    await runner.idle();
    expect(runner.scene).toBe("b");
    call.finishPlayback();
    runner.handle({ type: "dtmf", digit: "2" });
    expect(call.of("refer")).toEqual([{ command: "refer", callee: "sip:desk@example.com" }]);
    const asked = llm.requests.length;
    runner.handle({ type: "transferFailed", reason: "486" });
    await runner.idle();
    // The agent tells the caller: an LLM turn that hears why.
    expect(llm.requests).toHaveLength(asked + 1);
    expect(llm.requests.at(-1)?.messages.at(-1)).toMatchObject({ role: "system", content: "[the transfer failed: 486]" });
    expect(call.spoken().at(-1)).toBe("Sorry, the desk is busy.");
    call.finishPlayback();
    runner.handle({ type: "dtmf", digit: "1" });
    expect(call.of("hangup")).toEqual([{ command: "hangup", reason: "agent", initiator: "agent" }]);
  });

  it("a mapped key cancels the reply being generated", async () => {
    const pb = loadPlaybook(`---\nllm: { provider: scripted }\ngreeting: false\ndtmf:\n  "9": { action: goto, scene: b }\n---\n# Scene: a\nA\n# Scene: b\nB\n`);
    const { runner, call, llm } = makeRunner(pb, [{ chunks: ["This is a long ", "answer ", "that goes on ", "and on."] }, "Scene b."]);
    runner.start();
    runner.handle({ type: "callerTurn", text: "tell me" });
    while (call.spoken().length === 0) await Promise.resolve();
    runner.handle({ type: "dtmf", digit: "9" });
    await runner.idle();
    expect(call.trace()).toContain("interrupt");
    expect(llm.requests).toHaveLength(2);
    expect(call.spoken().at(-1)).toBe("Scene b.");
    expect(call.spoken()[0]).not.toContain("and on.");
  });
});

describe("DTMF collectors (§2.10)", () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  const inBalance = async (replies: Parameters<typeof makeRunner>[1]) => {
    const r = makeRunner(bank(), ['<goto scene="balance"/>', ...replies]);
    r.runner.start();
    r.runner.handle({ type: "callerTurn", text: "balance" });
    await r.runner.idle();
    return r;
  };
  const keys = (runner: { handle: (i: { type: "dtmf"; digit: string }) => void }, digits: string) => {
    for (const d of digits) runner.handle({ type: "dtmf", digit: d });
  };

  it("valid input: prompt not interruptible, text after the tag dropped, key actions suspended, variable set, LLM replies", async () => {
    const { runner, call, llm } = await inBalance([
      'Sure. <collect type="account" var="account" prompt="Please enter your eight digit account number, then press hash."/> never said',
      "Thanks, now your PIN.",
    ]);
    expect(call.spoken()).toEqual(["Sure. ", "Please enter your eight digit account number, then press hash."]);
    expect(call.of("tts").at(-1)).toMatchObject({ interruptible: false });
    vi.advanceTimersByTime(60_000); // the timer starts at the end of the prompt
    call.finishPlayback();
    keys(runner, "0123456");
    expect(call.of("transfer")).toEqual([]); // "0" went to the collector
    keys(runner, "7");
    expect(call.eventsOf("collected")).toEqual([{ event: "collected", collector: "account", var: "account", digits: "01234567", valid: true, attempt: 1 }]);
    await runner.idle();
    expect(llm.requests).toHaveLength(3);
    expect(texts(llm.requests[2]!.messages).at(-1)).toBe("system:[keypad input for account: 01234567]");
    expect(runner.snapshot()).toMatchObject({ variables: { account: "01234567" }, collected: { account: "01234567" } });
    expect(call.eventsOf("variableChanged")).toEqual([{ event: "variableChanged", name: "account", value: "01234567", source: "collector" }]);
  });

  it("invalid input re-prompts with the error message; the finish key ends input and is not part of it", async () => {
    const { runner, call } = await inBalance(['<collect type="account" var="account"/>', "ok"]);
    // No prompt given and none configured: the overall timer starts at once.
    keys(runner, "123#");
    expect(call.eventsOf("collected")).toEqual([]);
    expect(call.spoken().at(-1)).toBe("That account number was not valid. Please enter the eight digits, then the hash key.");
    call.finishPlayback();
    keys(runner, "87654321");
    expect(call.eventsOf("collected")).toEqual([{ event: "collected", collector: "account", var: "account", digits: "87654321", valid: true, attempt: 2 }]);
    await runner.idle();
  });

  it("the inter-digit timeout ends input; retries exhausted gives collected {valid:false} and a system message", async () => {
    const { runner, call, llm } = await inBalance(['<collect type="pin" var="pin" prompt="Now enter your four digit PIN."/>', "Sorry about that."]);
    call.finishPlayback();
    for (let attempt = 1; attempt <= 3; attempt++) {
      keys(runner, "12");
      vi.advanceTimersByTime(4999);
      expect(call.eventsOf("collected")).toHaveLength(0);
      vi.advanceTimersByTime(1);
      if (attempt < 3) {
        expect(call.spoken().slice(-2)).toEqual(["Sorry, that is not valid.", "Now enter your four digit PIN."]);
        call.finishPlayback();
      }
    }
    expect(call.eventsOf("collected")).toEqual([{ event: "collected", collector: "pin", var: "pin", digits: "12", valid: false, attempt: 3 }]);
    await runner.idle();
    expect(texts(llm.requests.at(-1)!.messages).at(-1)).toBe("system:[keypad input for pin failed after 3 attempts]");
    expect(runner.snapshot().collected).toEqual({});
  });

  it("the overall timeout counts from the end of the prompt; caller speech is ignored while collecting", async () => {
    const { runner, call, llm } = await inBalance(['<collect type="account" var="acct" prompt="Enter it."/>', "x"]);
    vi.advanceTimersByTime(60_000); // the prompt has not finished playing
    expect(call.spoken().filter((t) => t.startsWith("That account"))).toEqual([]);
    call.finishPlayback();
    runner.handle({ type: "callerTurn", text: "I don't know it" });
    vi.advanceTimersByTime(19_999);
    expect(call.spoken().at(-1)).toBe("Enter it.");
    vi.advanceTimersByTime(1);
    expect(call.spoken().slice(-2)).toEqual(["That account number was not valid. Please enter the eight digits, then the hash key.", "Enter it."]);
    await runner.idle();
    expect(llm.requests).toHaveLength(2);
  });

  it("starts from a collect key action and from the collect_digits tool", async () => {
    const pb = loadPlaybook(
      `---\nllm: { provider: scripted }\ngreeting: false\ndtmf:\n  "*": { action: collect, collector: code, var: code }\ndtmfCollectors:\n  code: { description: a code, minDigits: 2, maxDigits: 3, prompt: "Enter the code." }\n---\nHi\n`,
    );
    const { runner, call } = makeRunner(pb, ["Got it.", { tools: [{ name: "collect_digits", args: { collector: "code", var: "code2", prompt: "Again." } }] }, "Thanks."]);
    runner.start();
    runner.handle({ type: "dtmf", digit: "*" });
    expect(call.spoken()).toEqual(["Enter the code."]);
    call.finishPlayback();
    keys(runner, "123");
    await runner.idle();
    expect(runner.snapshot().variables).toEqual({ code: "123" });
    runner.handle({ type: "callerTurn", text: "again" });
    await runner.idle();
    expect(call.spoken().at(-1)).toBe("Again.");
    call.finishPlayback();
    keys(runner, "45#");
    await runner.idle();
    expect(runner.snapshot().variables).toEqual({ code: "123", code2: "45" });
  });
});

describe("follow-up (§2.11)", () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it("asks the LLM after the timeout, up to max in a row, then says goodbye and hangs up (maxFollowUp)", async () => {
    const { runner, call, llm } = makeRunner(support(), ["Are you there?", "Still there?"]);
    runner.start();
    vi.advanceTimersByTime(60_000);
    expect(llm.requests).toHaveLength(0); // the greeting has not finished playing
    call.finishPlayback();
    vi.advanceTimersByTime(8999);
    expect(llm.requests).toHaveLength(0);
    vi.advanceTimersByTime(1);
    await runner.idle();
    expect(texts(llm.requests[0]!.messages).at(-1)).toBe("system:[the caller has been silent for 9 seconds]");
    call.finishPlayback();
    vi.advanceTimersByTime(9000);
    await runner.idle();
    expect(llm.requests).toHaveLength(2);
    call.finishPlayback();
    vi.advanceTimersByTime(9000);
    await runner.idle();
    expect(llm.requests).toHaveLength(2);
    expect(call.of("tts").at(-1)).toMatchObject({ text: "I haven't heard from you, so I'll hang up now. Goodbye!", interruptible: false });
    expect(call.of("hangup")).toEqual([]);
    call.finishPlayback();
    expect(call.of("hangup")).toEqual([{ command: "hangup", reason: "maxFollowUp", initiator: "agent", headers: { "X-Disposition": "unresolved" } }]);
    expect(runner.snapshot().followUps).toBe(2);
  });

  it("caller activity resets the counter; the scene's <followup> text replaces the global one; paused suspends", async () => {
    const { runner, call } = makeRunner(bank(), ['<goto scene="card"/>', "Lost or stolen?"]);
    runner.start();
    runner.handle({ type: "callerTurn", text: "card" });
    await runner.idle();
    call.finishPlayback();
    vi.advanceTimersByTime(3000);
    runner.handle({ type: "paused" });
    vi.advanceTimersByTime(10_000);
    runner.handle({ type: "resumed" });
    vi.advanceTimersByTime(2999);
    expect(call.spoken().at(-1)).toBe("Lost or stolen?");
    vi.advanceTimersByTime(1);
    expect(call.spoken().at(-1)).toBe("Do you want to block your card? Please say yes or no.");
    call.finishPlayback();
    runner.handle({ type: "callerSpeechStarted" });
    vi.advanceTimersByTime(6000);
    expect(call.spoken().at(-1)).toBe("Do you want to block your card? Please say yes or no.");
    expect(call.spoken().filter((t) => t.startsWith("Do you want"))).toHaveLength(1);
    // No more timer until the agent speaks again; a key press also resets.
    runner.handle({ type: "dtmf", digit: "7" });
    expect(call.of("hangup")).toEqual([]);
  });

  it("a stopped runner emits nothing and runs no timer", async () => {
    const { runner, call } = makeRunner(support(), []);
    runner.start();
    call.finishPlayback();
    const before = call.commands.length;
    runner.handle({ type: "hangup" });
    vi.advanceTimersByTime(100_000);
    runner.handle({ type: "callerTurn", text: "hello" });
    runner.handle({ type: "dtmf", digit: "1" });
    await runner.idle();
    expect(call.commands.length).toBe(before);
    expect(vi.getTimerCount()).toBe(0);
  });
});

describe("reply tags and tools (§4.2, §4.3)", () => {
  it("terminal tag: the text after it is still spoken and not interruptible; the hangup waits for playout", async () => {
    const { runner, call, llm } = makeRunner(support(), ['Glad I could help. <set_var key="disposition" value="resolved"/>Goodbye!<hangup reason="done"/> Take care.<hangup/>']);
    runner.start();
    call.finishPlayback();
    runner.handle({ type: "callerTurn", text: "thanks, bye" });
    await runner.idle();
    expect(call.spoken().at(-1)).toBe("Glad I could help. Goodbye! Take care.");
    const tts = call.of("tts").filter((c) => c.playId === "r-1");
    expect(tts[0]?.interruptible).toBe(true);
    expect(tts.at(-1)).toMatchObject({ endOfStream: true, interruptible: false });
    expect(call.eventsOf("error")).toHaveLength(1); // the second terminal tag
    expect(call.of("hangup")).toEqual([]);
    call.finishPlayback();
    expect(call.of("hangup")).toEqual([{ command: "hangup", reason: "agent", initiator: "agent", detail: "done", headers: { "X-Disposition": "resolved" } }]);
    expect(llm.requests).toHaveLength(1);
  });

  it("set_var is visible on the next render; built-in names are refused", async () => {
    const pb = loadPlaybook(`---\nllm: { provider: scripted }\ngreeting: false\n---\n# Scene: a\nA {{ name }}\n# Scene: b\nHello {{ name | default('stranger') }} from {{ scene }}.\n`);
    const { runner, call, llm } = makeRunner(pb, ['<set_var key="caller" value="x"/><set_var name="name" value="Ada &amp; Bob"/>Noted.<goto scene="b"/>', "Hi."]);
    runner.start();
    runner.handle({ type: "callerTurn", text: "I'm Ada" });
    await runner.idle();
    expect(call.eventsOf("error")[0]).toMatchObject({ error: '"caller" is a built-in variable and cannot be set' });
    expect(sys(llm.requests[1]!.messages).startsWith("Hello Ada & Bob from b.")).toBe(true);
    expect(runner.snapshot().variables).toEqual({ name: "Ada & Bob" });
  });

  it("<play> queues the file after the speech before it; the text after it is a new utterance", async () => {
    const pb = loadPlaybook(`---\nllm: { provider: scripted }\ngreeting: false\n---\nHi <play file="a.wav"/> in text is an instruction.\n`);
    const { runner, call } = makeRunner(pb, ['Listen: <play file="a.wav"/>That was it.']);
    runner.start();
    runner.handle({ type: "callerTurn", text: "play it" });
    await runner.idle();
    expect(call.trace()).toEqual(["tts:r-1", "end:r-1", "play:a.wav", "tts:r-1.2", "end:r-1.2"]);
    expect(call.spoken()).toEqual(["Listen: ", "That was it."]);
  });

  it("native terminal tools return ok, end the turn, and act after playout; transfer_call with a sip: target refers", async () => {
    const { runner, call, llm } = makeRunner(support(), [{ text: "Transferring you.", tools: [{ name: "refer_call", args: { target: "sip:team@example.com" }, id: "x" }] }]);
    runner.start();
    call.finishPlayback();
    runner.handle({ type: "callerTurn", text: "a human please" });
    await runner.idle();
    expect(llm.requests).toHaveLength(1);
    expect(call.of("refer")).toEqual([]);
    call.finishPlayback();
    expect(call.of("refer")).toEqual([{ command: "refer", callee: "sip:team@example.com" }]);
    expect(runner.snapshot().history.at(-1)?.message).toEqual({ role: "tool", toolCallId: "x", content: '{"ok":true}' });
  });

  it("send_dtmf, set_variable, unknown tools and bad arguments", async () => {
    const { runner, call, llm } = makeRunner(support(), [
      {
        tools: [
          { name: "send_dtmf", args: { digits: "12#" } },
          { name: "set_variable", args: { name: "tier", value: "gold" } },
          { name: "goto_scene", args: { scene: "x" } },
          { name: "set_variable", args: "{oops" },
        ],
      },
      "Done.",
    ]);
    runner.start();
    runner.handle({ type: "callerTurn", text: "go" });
    await runner.idle();
    expect(call.of("dtmf")).toEqual([{ command: "dtmf", digits: "12#" }]);
    expect(runner.snapshot().variables).toEqual({ tier: "gold" });
    const results = llm.requests[1]!.messages.filter((m) => m.role === "tool").map((m) => m.content);
    expect(results).toEqual(['{"ok":true}', '{"ok":true}', '{"error":"unknown tool \\"goto_scene\\""}', '{"error":"invalid arguments: not a JSON object"}']);
  });

  it("stops after maxToolRounds LLM calls following tool results", async () => {
    const pb = loadPlaybook(`---\nllm: { provider: scripted, maxToolRounds: 2 }\ngreeting: false\n---\nHi\n`);
    const loop = { tools: [{ name: "set_variable", args: { name: "n", value: "1" } }] };
    const { runner, llm } = makeRunner(pb, [loop, loop, loop, loop, loop]);
    runner.start();
    runner.handle({ type: "callerTurn", text: "go" });
    await runner.idle();
    expect(llm.requests).toHaveLength(3);
  });

  it("a barge-in keeps only what the caller heard in the history", async () => {
    const { runner, call, llm } = makeRunner(support(), ["The order shipped yesterday and arrives Monday.", "Sure."]);
    runner.start();
    call.finishPlayback();
    runner.handle({ type: "callerTurn", text: "where is my order" });
    await runner.idle();
    call.bargeIn("r-1", "The order shipped");
    runner.handle({ type: "callerTurn", text: "wait" });
    await runner.idle();
    expect(texts(llm.requests[1]!.messages).slice(-3)).toEqual(["user:where is my order", "assistant:The order shipped", "user:wait"]);
    expect(runner.snapshot().history.find((h) => h.interrupted)).toBeDefined();
  });

  it("an LLM failure becomes an error event and the call goes on", async () => {
    const { runner, call } = makeRunner(support(), [{ fail: new Error("boom") }, "Hello again."]);
    runner.start();
    runner.handle({ type: "callerTurn", text: "hi" });
    await runner.idle();
    expect(call.eventsOf("error")).toEqual([{ event: "error", sender: "llm", code: "PROVIDER_ERROR", error: "boom" }]);
    runner.handle({ type: "callerTurn", text: "hi" });
    await runner.idle();
    expect(call.spoken().at(-1)).toBe("Hello again.");
  });
});

describe("history trimming", () => {
  it("drops the oldest messages and never leaves a tool result without its call", () => {
    const msgs: ChatMessage[] = [
      { role: "user", content: "1" },
      { role: "assistant", content: null, toolCalls: [{ id: "a", name: "t", arguments: "{}" }, { id: "b", name: "t", arguments: "{}" }] },
      { role: "tool", toolCallId: "a", content: "A" },
      { role: "tool", toolCallId: "b", content: "B" },
      { role: "assistant", content: "2" },
      { role: "user", content: "3" },
    ];
    expect(trimHistory(msgs, 10)).toEqual(msgs);
    expect(trimHistory(msgs, 5)).toEqual(msgs.slice(1));
    expect(trimHistory(msgs, 4)).toEqual(msgs.slice(4));
    expect(trimHistory(msgs, 3)).toEqual(msgs.slice(4));
    expect(trimHistory(msgs, 2)).toEqual(msgs.slice(4));
  });

  it("the runner sends at most historyLimit messages besides the system prompt", async () => {
    const pb = loadPlaybook(`---\nllm: { provider: scripted, historyLimit: 4 }\ngreeting: false\n---\nHi\n`);
    const set = (name: string) => ({ name: "set_variable", args: { name, value: "1" } });
    const { runner, llm } = makeRunner(pb, [{ tools: [set("a"), set("b")] }, "one", "two", "three"]);
    runner.start();
    for (const t of ["a", "b", "c"]) {
      runner.handle({ type: "callerTurn", text: t });
      await runner.idle();
    }
    // History before "b": user a, assistant (2 calls), tool, tool, assistant one, user b: the last 4 start with
    // a tool result, so both results are dropped with their call.
    expect(texts(llm.requests[2]!.messages).slice(1)).toEqual(["assistant:one", "user:b"]);
    const last = llm.requests.at(-1)!.messages;
    expect(last).toHaveLength(5);
    expect(texts(last).slice(1)).toEqual(["assistant:one", "user:b", "assistant:two", "user:c"]);
  });
});
