import { createServer, type IncomingMessage, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadPlaybook, makeRunner } from "./testutil.js";

interface Seen {
  method: string;
  url: string;
  headers: IncomingMessage["headers"];
  body: string;
}

let server: Server;
let base: string;
const seen: Seen[] = [];

beforeAll(async () => {
  server = createServer((req, res) => {
    let body = "";
    req.on("data", (c: Buffer) => (body += c.toString()));
    req.on("end", () => {
      seen.push({ method: req.method ?? "", url: req.url ?? "", headers: req.headers, body });
      if (req.url?.startsWith("/orders/1234")) {
        res.setHeader("content-type", "application/json");
        res.end(JSON.stringify({ status: "shipped", eta: "Monday" }));
      } else if (req.url?.startsWith("/orders/")) {
        res.statusCode = 404;
        res.end("no such order");
      } else if (req.url === "/slow") {
        setTimeout(() => res.end("late"), 2000);
      } else if (req.url === "/echo") {
        res.end(JSON.stringify({ got: body }));
      } else {
        res.statusCode = 500;
        res.end("boom");
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
});

const playbook = (extra = "") =>
  loadPlaybook(`---
llm: { provider: scripted }
greeting: false
variables: { token: "t0k" }
httpAllow: ["${base}/echo"]
tools:
  - name: lookup_order
    description: Look up an order.
    parameters:
      type: object
      properties:
        order_number: { type: string, pattern: "^[0-9]{4,10}$" }
      required: [order_number]
    http:
      url: "${base}/orders/{{ args.order_number }}"
      headers: { Authorization: "Bearer {{ token }}" }
      query: { src: "{{ caller }}" }
      timeoutMs: 300
    setVars:
      order_status: "{{ result.status }}"
  - name: slow
    description: Slow.
    http: { url: "${base}/slow", timeoutMs: 200 }
  - name: create
    description: Create.
    parameters: { type: object, properties: { x: { type: integer } } }
    http: { url: "${base}/echo", method: POST }
${extra}---
Help with orders.
`);

const toolResults = (messages: readonly { role: string }[]) =>
  messages.filter((m): m is { role: "tool"; toolCallId: string; content: string } => m.role === "tool").map((m) => JSON.parse(m.content) as unknown);

describe("HTTP tools (§2.14) against a local server", () => {
  it("validates the arguments, makes the request, returns {status, body}, and sets variables", async () => {
    const { runner, call, llm } = makeRunner(playbook(), [{ tools: [{ name: "lookup_order", args: { order_number: "1234" }, id: "a" }] }, "It shipped."]);
    runner.start();
    runner.handle({ type: "callerTurn", text: "order 1234" });
    await runner.idle();
    const req = seen.find((s) => s.url.startsWith("/orders/1234"));
    expect(req).toMatchObject({ method: "GET", url: "/orders/1234?src=%2B15551230000" });
    expect(req?.headers.authorization).toBe("Bearer t0k");
    expect(toolResults(llm.requests[1]!.messages)).toEqual([{ status: 200, body: { status: "shipped", eta: "Monday" } }]);
    expect(runner.snapshot().variables).toEqual({ order_status: "shipped" });
    expect(call.eventsOf("functionResult")[0]).toMatchObject({ callId: "a", name: "lookup_order", ok: true });
    expect(call.spoken()).toEqual(["It shipped."]);
  });

  it("refuses arguments that do not match the schema without a request; a non-2xx status is a result", async () => {
    const before = seen.length;
    const { runner, call, llm } = makeRunner(playbook(), [
      {
        tools: [
          { name: "lookup_order", args: { order_number: "12a" }, id: "bad" },
          { name: "lookup_order", args: { order_number: "99999" }, id: "missing" },
        ],
      },
      "Sorry.",
    ]);
    runner.start();
    runner.handle({ type: "callerTurn", text: "order" });
    await runner.idle();
    expect(seen.slice(before).map((s) => s.url)).toEqual(["/orders/99999?src=%2B15551230000"]);
    const [bad, missing] = toolResults(llm.requests[1]!.messages) as [{ error: string }, unknown];
    expect(bad.error).toMatch(/^invalid arguments: order_number: /);
    expect(missing).toEqual({ status: 404, body: "no such order" });
    expect(call.eventsOf("error")).toMatchObject([{ sender: "tool", code: "TOOL_ERROR" }]);
    expect(runner.snapshot().variables).toEqual({});
  });

  it("a timeout or an unreachable server becomes an error result for the model, and the call goes on", async () => {
    const { runner, call, llm } = makeRunner(playbook(), [{ tools: [{ name: "slow", args: {}, id: "s" }] }, "The service is slow.", "ok"]);
    runner.start();
    runner.handle({ type: "callerTurn", text: "go" });
    await runner.idle();
    expect(toolResults(llm.requests[1]!.messages)).toEqual([{ error: "no response within 200 ms" }]);
    expect(call.eventsOf("functionResult")[0]).toMatchObject({ ok: false });
    expect(call.eventsOf("error")[0]).toMatchObject({ sender: "tool", code: "TOOL_ERROR" });
    expect(call.spoken()).toEqual(["The service is slow."]);
  });

  it("POST sends the arguments as JSON; http_request is limited to httpAllow", async () => {
    const { runner, llm } = makeRunner(playbook(), [
      {
        tools: [
          { name: "create", args: { x: 5 }, id: "c" },
          { name: "http_request", args: { url: `${base}/echo`, method: "POST", body: { y: 1 } }, id: "h1" },
          { name: "http_request", args: { url: `${base}/orders/1234` }, id: "h2" },
        ],
      },
      "Done.",
    ]);
    runner.start();
    runner.handle({ type: "callerTurn", text: "go" });
    await runner.idle();
    const results = toolResults(llm.requests[1]!.messages);
    expect(results[0]).toEqual({ status: 200, body: { got: '{"x":5}' } });
    expect(results[1]).toEqual({ status: 200, body: { got: '{"y":1}' } });
    expect(results[2]).toEqual({ error: `URL not allowed by httpAllow: ${base}/orders/1234` });
  });

  it("<http> in a reply runs after the reply; its result is a system message and the LLM is called again", async () => {
    const { runner, call, llm } = makeRunner(playbook(), [`Checking.<http url="${base}/echo" method="POST" body="hi"/>`, "Got it.", "x"]);
    runner.start();
    runner.handle({ type: "callerTurn", text: "go" });
    await runner.idle();
    expect(llm.requests).toHaveLength(2);
    const last = llm.requests[1]!.messages.at(-1) as { role: string; content: string };
    expect(last).toEqual({ role: "system", content: `[http POST ${base}/echo result: {"status":200,"body":{"got":"hi"}}]` });
    expect(call.spoken()).toEqual(["Checking.", "Got it."]);

    const denied = makeRunner(playbook(), [`Checking.<http url="${base}/orders/1"/>`]);
    denied.runner.start();
    denied.runner.handle({ type: "callerTurn", text: "go" });
    await denied.runner.idle();
    expect(denied.llm.requests).toHaveLength(1);
    expect(denied.call.eventsOf("error")[0]).toMatchObject({ sender: "playbook" });
  });

  it("stop() aborts a request in flight", async () => {
    const { runner, call } = makeRunner(playbook(), [{ tools: [{ name: "slow", args: {} }] }, "never"]);
    runner.start();
    runner.handle({ type: "callerTurn", text: "go" });
    await new Promise((r) => setTimeout(r, 50));
    runner.stop();
    await runner.idle();
    expect(call.spoken()).toEqual([]);
    expect(call.eventsOf("functionResult")).toEqual([]);
  });
});
