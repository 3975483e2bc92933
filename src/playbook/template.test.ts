import { describe, expect, it, vi } from "vitest";
import { parsePlaybook } from "./parse.js";
import { checkTemplate, CompiledTemplate, TemplateSet, TemplateSyntaxError, templateNames } from "./template.js";
import { builtinVariables, clockVariables, selectSipHeaders, templateContext, type CallFacts } from "./variables.js";

describe("template syntax errors carry their offset", () => {
  it.each([
    ["Hi {{ caller", 3, 'expected "}}" to close "{{ caller"'],
    ["x {{ a }} {{ b and more", 10, 'expected "}}" to close "{{ b"'],
    ["{{ a }\nnext {{ b }}", 0, 'expected "}}" to close "{{ a"'],
    ["a {% if x %}b", 2, '"{% if x %}" is never closed; add "{% endif %}"'],
    ["{% for i in xs %}{% endif %}", 17, '"{% endif %}" does not close "{% for i in xs %}"; expected "{% endfor %}"'],
    ["text {% endif %}", 5, '"{% endif %}" has no opening "{% if %}"'],
    ["{{ a | nope }}", 7, 'unknown filter "nope"'],
    ["{{ a b }}", 5, "expected variable end"],
    ["line1\n  {{ 'a' + }}", 17, "unexpected token: }}"],
    ["{% include 'x.md' %}", 0, '"{% include %}" is not supported in playbooks'],
    ["{# note", 0, 'expected "#}" to close the comment "{#"'],
    ["{% raw %}{{ {% endraw %}", undefined, undefined],
    ["{% set y = 1 %}{{ y }} {{ '}}' }}", undefined, undefined],
  ])("%j", (source, offset, message) => {
    const p = checkTemplate(source);
    expect(p && { offset: p.offset, message: p.message }).toEqual(offset === undefined ? undefined : { offset, message });
  });

  it("are reported at their line and column in the file: body, front matter string, block scalar, tag attribute", () => {
    const text = [
      "---", //                                  1
      "llm:", //                                 2
      "  prompt: |", //                          3
      "    Be brief.", //                        4
      "    Use {{ name | uper }} always.", //    5
      'greeting: "Hi {{ caller }"', //           6
      "---", //                                  7
      "# Scene: a", //                           8
      '<dtmf digit="1" action="hangup" say="Bye {% if %}"/>', // 9
      "Talk {% for x in y %} to them.", //       10
    ].join("\n");
    const r = parsePlaybook(text, { file: "p.md" });
    expect(r.diagnostics.filter((d) => d.code === "template").map((d) => `${d.line}:${d.column} ${d.message}`)).toEqual([
      '5:19 unknown filter "uper"',
      '6:15 expected "}}" to close "{{ caller"',
      '9:42 "{% if %}" is never closed; add "{% endif %}"',
      '10:6 "{% for x in y %}" is never closed; add "{% endfor %}"',
    ]);
  });
});

describe("names a template uses", () => {
  it("lists free variables, marking those guarded by default(), if or is defined", () => {
    const uses = templateNames(
      "{{ a.b | default(c) }}{% set z = 1 %}{{ z }}{% for i in y %}{{ i }}{{ loop.index }}{% endfor %}{% if q %}{{ r }}{% endif %}{{ w is defined }}{{ range(2) }}{{ {k: v} }}",
    );
    expect(uses.map((u) => `${u.name}${u.guarded ? "?" : ""}`)).toEqual(["a?", "c", "y", "q?", "r", "w?", "v"]);
  });
});

describe("rendering", () => {
  const call: CallFacts = {
    callId: "call-1",
    callType: "asterisk",
    direction: "inbound",
    caller: "1001",
    callee: "200",
    startTime: new Date("2026-03-01T23:30:00Z"),
    playbook: "p.md",
    scene: "menu",
    sipHeaders: { "X-Customer-Id": "42" },
  };

  it("a missing variable renders empty and is reported once, never thrown", () => {
    const t = new CompiledTemplate("Hi {{ name }} {{ name }}, {{ other | default('you') }} {% if flag %}yes{% endif %}({{ caller }})");
    const onMissing = vi.fn();
    expect(t.render({ caller: "1001" }, { onMissing })).toBe("Hi  , you (1001)");
    expect(onMissing.mock.calls).toEqual([["name"]]);
  });

  it("a missing member renders empty; a set member renders", () => {
    const t = new CompiledTemplate("[{{ sip.x_nothing }}][{{ sip.x_customer_id }}]");
    expect(t.render(templateContext(call, []))).toBe("[][42]");
  });

  it("a runtime error renders empty and is reported", () => {
    const onError = vi.fn();
    expect(new CompiledTemplate("{{ nothing() }}").render({}, { onError })).toBe("");
    expect(onError).toHaveBeenCalledOnce();
  });

  it("autoescape is off; tojson is dump", () => {
    const t = new CompiledTemplate("{{ s }} {{ o | tojson }} {{ o | dump }}");
    expect(t.render({ s: "<b>&'\"", o: { a: [1, "x"] } })).toBe(`<b>&'" {"a":[1,"x"]} {"a":[1,"x"]}`);
  });

  it("plain text needs no compiling and renders as itself", () => {
    expect(new CompiledTemplate("no templates here").render({})).toBe("no templates here");
  });

  it("a syntax error throws at compile time, not at render time", () => {
    expect(() => new CompiledTemplate("{{ x")).toThrow(TemplateSyntaxError);
  });

  it("a template set compiles each source once and renders unknown sources on the fly", () => {
    const set = new TemplateSet();
    const a = set.add("Hello {{ who }}");
    expect(set.add("Hello {{ who }}")).toBe(a);
    expect(set.size).toBe(1);
    expect(set.render("Bye {{ who }}", { who: "Ada" })).toBe("Bye Ada");
    const onError = vi.fn();
    expect(set.render("broken {{", {}, { onError })).toBe("broken {{");
    expect(onError).toHaveBeenCalledOnce();
  });

  it("built-ins: ids, numbers, times in a time zone, sip headers with aliases", () => {
    const vars = builtinVariables(call, { timeZone: "Europe/Berlin", now: new Date("2026-03-01T23:30:00Z") });
    expect(vars).toEqual({
      call_id: "call-1",
      session_id: "call-1",
      call_type: "asterisk",
      direction: "inbound",
      caller: "1001",
      callee: "200",
      start_time: "2026-03-01T23:30:00.000Z",
      date: "2026-03-02",
      time: "00:30",
      weekday: "Monday",
      playbook: "p.md",
      scene: "menu",
      sip: { "X-Customer-Id": "42", x_customer_id: "42" },
    });
    expect(clockVariables({ timeZone: "America/New_York", now: new Date("2026-03-01T23:30:00Z") })).toEqual({
      date: "2026-03-01",
      time: "18:30",
      weekday: "Sunday",
    });
  });

  it("variables layer lowest first; built-ins cannot be overridden; internal names are hidden", () => {
    const ctx = templateContext(call, [{ a: "fm", b: "fm", caller: "fake" }, { b: "call", _secret: "x" }, undefined], {
      local: { args: { id: 1 } },
    });
    expect(ctx.a).toBe("fm");
    expect(ctx.b).toBe("call");
    expect(ctx.caller).toBe("1001");
    expect(ctx.args).toEqual({ id: 1 });
    expect("_secret" in ctx).toBe(false);
  });

  it("INVITE headers: the listed ones (any case), or every X- header", () => {
    const all = { "X-Customer-Id": "42", "x-other": "o", "User-Agent": "ua" };
    expect(selectSipHeaders(all)).toEqual({ "X-Customer-Id": "42", "x-other": "o" });
    expect(selectSipHeaders(all, ["user-agent", "X-CUSTOMER-ID"])).toEqual({ "X-Customer-Id": "42", "User-Agent": "ua" });
  });
});

describe("undefined-variable warnings", () => {
  it("names nothing defines; built-ins, variables, set_var, collectors, tool setVars and render locals are defined", () => {
    const text = [
      "---",
      "variables: { company: Acme }",
      "dtmf:",
      '  "5": { action: collect, collector: acct, var: account_no }',
      "dtmfCollectors:",
      "  acct: { description: account, digits: 4 }",
      "tools:",
      "  - name: t",
      "    description: d",
      '    http: { url: "https://x.example/{{ args.id }}/{{ arg.id }}" }',
      '    setVars: { status: "{{ result.status }}" }',
      "sip:",
      '  hangupHeaders: { X-R: "{{ reason }}/{{ status }}" }',
      "---",
      "{{ company }} {{ compny }} {{ caller }} {{ account_no }} {{ flag }} {{ pin }} {{ flag }}",
      '<set_var name="flag" value="1"/> <collect type="acct" var="pin"/>',
    ].join("\n");
    const r = parsePlaybook(text, { file: "p.md" });
    expect(r.diagnostics.map((d) => `${d.line}:${d.column} ${d.severity}[${d.code}] ${d.message}`)).toEqual([
      '10:54 warning[undefined-variable] variable "arg" is never defined in this playbook; did you mean "args"?',
      '15:18 warning[undefined-variable] variable "compny" is never defined in this playbook; did you mean "company"?',
    ]);
    expect(r.playbook).toBeDefined();
  });
});
