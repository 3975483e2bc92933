/**
 * The dialplan model (dialplan.ts) on small inline dialplans, then against the live FreeSWITCH 1.10.12 recordings:
 * the stock configuration with the old drop-in (git 9f338bb) must route the way the recorded traces show.
 */
import { execFileSync } from "node:child_process";
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { sharedFixtures } from "../../shared-fixtures.js";
import { useCleanups } from "../../wait.js";
import { loadDialplan, route, type RouteInput } from "./dialplan.js";

const REPO = fileURLToPath(new URL("../../..", import.meta.url));
const cleanup = useCleanups();

/** A conf dir made of the given files (paths relative to it). */
function confDir(files: Record<string, string>, base?: string): string {
  const dir = mkdtempSync(join(tmpdir(), "dialplan-model-"));
  cleanup(() => rmSync(dir, { recursive: true, force: true }));
  if (base) cpSync(base, dir, { recursive: true });
  for (const [rel, text] of Object.entries(files)) {
    mkdirSync(dirname(join(dir, rel)), { recursive: true });
    writeFileSync(join(dir, rel), text);
  }
  return dir;
}

/** A conf dir with one dialplan file holding the given contexts. */
function contexts(xml: string, vars = ""): string {
  return confDir({ "vars.xml": `<include>\n${vars}\n</include>\n`, "dialplan/test.xml": `<include>\n${xml}\n</include>\n` });
}

const run = (dir: string, input: Partial<RouteInput> & { destination: string }) => route(loadDialplan(dir), { context: "t", ...input });
const apps = (r: ReturnType<typeof route>) => r.trace.flatMap((s) => s.actions.map((a) => `${a.app} ${a.data}`.trim()));

describe("loading (preprocessor)", () => {
  it("includes globs in byte order, in place, relative to the including file; the first context of a name wins", () => {
    const dir = confDir({
      "vars.xml": "<include>\n</include>\n",
      "dialplan/b.xml": '<include>\n<context name="t">\n<extension name="from-b"><condition><action application="hangup"/></condition></extension>\n</context>\n</include>\n',
      "dialplan/a.xml": [
        "<include>",
        '<context name="t">',
        '  <extension name="before" continue="true"><condition><action application="set" data="x=before"/></condition></extension>',
        '  <X-PRE-PROCESS cmd="include" data="a/*.xml"/>',
        '  <extension name="after"><condition><action application="park"/></condition></extension>',
        "</context>",
        "</include>",
      ].join("\n"),
      "dialplan/a/2_two.xml": '<include>\n<extension name="two" continue="true"><condition><action application="set" data="x=two"/></condition></extension>\n</include>\n',
      "dialplan/a/10_ten.xml": '<include>\n<extension name="ten" continue="true"><condition><action application="set" data="x=ten"/></condition></extension>\n</include>\n',
      "dialplan/a/.hidden.xml": "not xml at all <",
    });
    const dp = loadDialplan(dir);
    expect(dp.files).toEqual(["vars.xml", "dialplan/a.xml", "dialplan/a/10_ten.xml", "dialplan/a/2_two.xml", "dialplan/b.xml"]);
    expect(dp.contexts.map((c) => `${c.name}@${c.file}`)).toEqual(["t@dialplan/a.xml", "t@dialplan/b.xml"]);
    expect(dp.contexts[0]?.extensions.map((e) => `${e.name}@${e.file}`)).toEqual([
      "before@dialplan/a.xml",
      "ten@dialplan/a/10_ten.xml",
      "two@dialplan/a/2_two.xml",
      "after@dialplan/a.xml",
    ]);
    const r = route(dp, { context: "t", destination: "1" });
    expect(r.trace.map((s) => s.extension)).toEqual(["before", "ten", "two", "after"]);
    expect(r.final).toMatchObject({ extension: "after", app: "park" });
    expect(r.variables.x).toBe("two");
  });

  it("a glob that matches nothing is a warning, as FreeSWITCH logs it and goes on", () => {
    const dp = loadDialplan(contexts('<context name="t">\n<X-PRE-PROCESS cmd="include" data="t/*.xml"/>\n</context>'));
    expect(dp.warnings).toEqual([expect.stringContaining("t/*.xml")]);
    expect(dp.contexts[0]?.extensions).toEqual([]);
  });

  it("sets globals in document order, replaces $${var} per line, and runs X-PRE-PROCESS lines even inside comments", () => {
    const dir = contexts(
      '<context name="t">\n<extension name="e"><condition><action application="playback" data="$${b}|$${unset}|$${c}"/></condition></extension>\n</context>',
      [
        '<X-PRE-PROCESS cmd="set" data="a=1"/>',
        '<X-PRE-PROCESS cmd="set" data="b = $${a}2"/>',
        "<!--",
        '  <X-PRE-PROCESS cmd="set" data="c=commented-out-but-set"/>',
        '  <XX-PRE-PROCESS cmd="set" data="d=not-set"/>',
        "-->",
      ].join("\n"),
    );
    const dp = loadDialplan(dir);
    expect(dp.globals).toMatchObject({ a: "1", b: "12", c: "commented-out-but-set" });
    expect(dp.globals.d).toBeUndefined();
    expect(route(dp, { context: "t", destination: "x" }).final?.data).toBe("12||commented-out-but-set");
  });

  it("a malformed file is an error naming its path and line", () => {
    const dir = contexts('<context name="t">\n<extension name="e">\n<condition>\n</extension>\n</context>');
    expect(() => loadDialplan(dir)).toThrow(/dialplan\/test\.xml:5: malformed XML/);
  });

  it("a bad regular expression is an error naming the file, the extension and the condition", () => {
    const dir = contexts('<context name="t">\n<extension name="broken"><condition field="destination_number" expression="^(1$"/></extension>\n</context>');
    expect(() => loadDialplan(dir)).toThrow(/dialplan\/test\.xml: context "t", extension "broken", condition 1: bad regular expression/);
  });

  it("reads CDATA expressions and action text", () => {
    const dir = contexts(
      '<context name="t">\n<extension name="e"><condition field="${sip_refer_to}"><expression><![CDATA[<sip:(\\d+)@example>]]></expression><action application="bridge">user/$1</action></condition></extension>\n</context>',
    );
    expect(run(dir, { destination: "x", variables: { sip_refer_to: "<sip:1001@example>" } }).final).toMatchObject({ app: "bridge", data: "user/1001" });
  });
});

describe("routing (mod_dialplan_xml)", () => {
  const ext = (name: string, body: string, attrs = "") => `<extension name="${name}"${attrs}>${body}</extension>`;
  const ctx = (...exts: string[]) => `<context name="t">\n${exts.join("\n")}\n</context>`;
  const dest = (re: string, actions: string, extra = "") => `<condition field="destination_number" expression="${re}"${extra}>${actions}</condition>`;
  const act = (app: string, data = "") => `<action application="${app}" data="${data}"/>`;
  const anti = (app: string, data = "") => `<anti-action application="${app}" data="${data}"/>`;

  it("the first matching extension ends the search; continue=true keeps searching", () => {
    const dir = contexts(
      ctx(
        ext("tag", `<condition>${act("set", "tagged=yes")}</condition>`, ' continue="true"'),
        ext("miss", dest("^2$", act("hangup"))),
        ext("hit", dest("^1$", act("park"))),
        ext("later", dest("^1$", act("hangup"))),
      ),
    );
    const r = run(dir, { destination: "1" });
    expect(r.trace.map((s) => [s.extension, s.matched])).toEqual([
      ["tag", true],
      ["hit", true],
    ]);
    expect(r.final).toMatchObject({ extension: "hit", app: "park" });
    expect(r.variables.tagged).toBe("yes");
  });

  it("break: on-false stops the extension at a failing condition, never goes on, on-true and always stop after a pass", () => {
    const two = (first: string) =>
      contexts(ctx(ext("e", `<condition field="destination_number" expression="^1$"${first}>${act("set", "a=1")}</condition>${dest("^.*$", act("set", "b=1"))}`, ' continue="true"'), ext("end", `<condition>${act("park")}</condition>`)));
    expect(run(two(""), { destination: "1" }).variables).toMatchObject({ a: "1", b: "1" });
    expect(run(two(""), { destination: "2" }).variables).not.toHaveProperty("b");
    expect(run(two(' break="never"'), { destination: "2" }).variables).toMatchObject({ b: "1" });
    expect(run(two(' break="on-true"'), { destination: "1" }).variables).not.toHaveProperty("b");
    expect(run(two(' break="on-true"'), { destination: "2" }).variables).toMatchObject({ b: "1" });
    expect(run(two(' break="always"'), { destination: "2" }).variables).not.toHaveProperty("b");
  });

  it("anti-actions run on a failing condition and make the extension a match", () => {
    const dir = contexts(ctx(ext("e", `${dest("^1$", act("park") + anti("set", "why=not-1") + anti("playback", "x"))}`), ext("next", `<condition>${act("hangup")}</condition>`)));
    const r = run(dir, { destination: "2" });
    expect(apps(r)).toEqual(["set why=not-1", "playback x"]);
    expect(r.final).toMatchObject({ extension: "e", app: "playback" });
    expect(r.log).toContain("ANTI-Action set(why=not-1)");
  });

  it("a failing last condition without anti-actions does not match, even after earlier passes", () => {
    const dir = contexts(ctx(ext("e", dest("^1$", act("set", "a=1")) + dest("^never$", act("park"))), ext("fallback", `<condition>${act("hangup")}</condition>`)));
    const r = run(dir, { destination: "1" });
    expect(r.trace.map((s) => [s.extension, s.matched])).toEqual([
      ["e", false],
      ["fallback", true],
    ]);
    expect(apps(r)).toEqual(["set a=1", "hangup"]);
  });

  it("inline set changes variables during routing; a plain set only when executed", () => {
    const dir = contexts(
      ctx(
        ext("first", `<condition><action application="set" data="inl=yes" inline="true"/>${act("set", "late=yes")}</condition>`, ' continue="true"'),
        ext("sees-inline", `<condition field="\${inl}" expression="^yes$">${act("set", "saw_inline=1")}</condition>`, ' continue="true"'),
        ext("sees-late", `<condition field="\${late}" expression="^yes$">${act("set", "saw_late=1")}</condition>`, ' continue="true"'),
        ext("end", `<condition>${act("park")}</condition>`),
      ),
    );
    const r = run(dir, { destination: "x" });
    expect(r.variables).toMatchObject({ inl: "yes", late: "yes", saw_inline: "1" });
    expect(r.variables).not.toHaveProperty("saw_late");
  });

  it("captures: $1/${2} from the condition's own regex, $0 the whole match, only when the expression has a '('", () => {
    const dir = contexts(
      ctx(
        ext("groups", dest("^(\\d)(\\d)?-(x)$", act("set", "v=$1|${2}|$3|$0|$9|${destination_number}")), ' continue="true"'),
        ext("nogroup", dest("^\\d-x$", act("set", "w=$0")), ' continue="true"'),
        ext("end", `<condition>${act("park")}</condition>`),
      ),
    );
    expect(run(dir, { destination: "1-x" }).variables).toMatchObject({ v: "1||x|1-x||1-x", w: "$0" });
  });

  it("fields: caller-profile fields, channel variables falling back to globals, API calls", () => {
    const dir = confDir({
      "vars.xml": '<include>\n<X-PRE-PROCESS cmd="set" data="site=berlin"/>\n</include>\n',
      "autoload_configs/modules.conf.xml": '<configuration name="modules.conf">\n<modules>\n<load module="mod_sofia"/>\n<!-- <load module="mod_enum"/> -->\n</modules>\n</configuration>\n',
      "dialplan/test.xml": `<include>\n${ctx(
        ext("cid", `<condition field="caller_id_number" expression="^555$">${act("set", "cid=ok")}</condition>`, ' continue="true"'),
        ext("src", `<condition field="source" expression="^mod_sofia$">${act("set", "src=ok")}</condition>`, ' continue="true"'),
        ext("glob", `<condition field="\${site}" expression="^berlin$">${act("set", "site_seen=${site}")}</condition>`, ' continue="true"'),
        ext("mods", `<condition field="\${module_exists(mod_sofia)}|\${module_exists(mod_enum)}" expression="^true\\|false$">${act("set", "mods=ok")}</condition>`, ' continue="true"'),
        ext("api", `<condition field="\${lookup(k)}|\${no_such_api(1)}" expression="^v:k\\|$">${act("set", "api=ok")}</condition>`, ' continue="true"'),
        ext("end", `<condition>${act("park")}</condition>`),
      )}\n</include>\n`,
    });
    const r = run(dir, { destination: "x", caller: "555", api: { lookup: (a) => `v:${a}` } });
    expect(r.variables).toMatchObject({ cid: "ok", src: "ok", site_seen: "berlin", mods: "ok", api: "ok" });
  });

  it("time conditions against the given clock: lists, ranges, reversed ranges, week of the month", () => {
    const dir = contexts(
      ctx(
        ext("t1", `<condition wday="2-6" hour="9-17">${act("set", "open=yes")}</condition>`, ' continue="true"'),
        ext("t2", `<condition wday="1,7">${act("set", "weekend=yes")}</condition>`, ' continue="true"'),
        ext("t3", `<condition hour="22-6">${act("set", "night=yes")}</condition>`, ' continue="true"'),
        ext("t4", `<condition wday="mon" mweek="3" mon="1">${act("set", "mlk=yes")}</condition>`, ' continue="true"'),
        ext("t5", `<condition minute-of-day="540-1080" time-of-day="09:00-18:00">${act("set", "day=yes")}</condition>`, ' continue="true"'),
        ext("end", `<condition>${act("park")}</condition>`),
      ),
    );
    // Monday 2024-01-15 10:30 UTC: the third Monday of January, in the third calendar row (January 2024 starts on a
    // Monday).
    expect(run(dir, { destination: "x", now: new Date("2024-01-15T10:30:00Z") }).variables).toMatchObject({ open: "yes", mlk: "yes", day: "yes" });
    // mweek is the calendar row (weeks start on Sunday), not the n-th weekday: Monday 2027-01-18 is the third Monday
    // but January 2027 starts on a Friday, so it is in row 4 (switch_xml_std_datetime_check's formula).
    expect(run(dir, { destination: "x", now: new Date("2027-01-18T10:30:00Z") }).variables).not.toHaveProperty("mlk");
    const sunNight = run(dir, { destination: "x", now: new Date("2026-12-06T23:10:00Z") });
    expect(sunNight.variables).toMatchObject({ weekend: "yes", night: "yes" });
    expect(sunNight.variables).not.toHaveProperty("open");
    expect(sunNight.log).toContain("Date/TimeMatch (FAIL) [t1] break=on-false");
    expect(sunNight.log).toContain("Date/Time Match (PASS) [t2] break=on-false");
  });

  it("transfer re-routes: into another context, into the same one without a context, and gives up on loops", () => {
    const dir = contexts(
      [
        ctx(ext("to-b", dest("^1$", act("set", "from=t") + act("transfer", "${destination_number}00 XML b") + act("hangup"))), ext("same", dest("^2$", act("transfer", "1"))), ext("loop", dest("^9$", act("transfer", "9")))),
        '<context name="b">',
        ext("b", dest("^(\\d+)$", act("set", "got=$1") + act("park"))),
        "</context>",
      ].join("\n"),
    );
    const r = run(dir, { destination: "2" });
    expect(r.trace.map((s) => `${s.context}/${s.extension}/${s.destination}`)).toEqual(["t/same/2", "t/to-b/1", "b/b/100"]);
    expect(r.final).toMatchObject({ context: "b", app: "park" });
    expect(r.variables).toMatchObject({ from: "t", got: "100" });
    expect(r.log).toContain("Transfer to XML[100@b]");
    expect(run(dir, { destination: "9" })).toMatchObject({ final: undefined, hangupCause: "EXCHANGE_ROUTING_ERROR" });
  });

  it("records sleeps, ends at the first application that takes the call, and reports the engine's hangups", () => {
    const dir = contexts(ctx(ext("e", dest("^1$", act("sleep", "1500") + act("log", "INFO hi") + act("sleep", "500") + act("answer") + act("sleep", "9000"))), ext("sets", dest("^2$", act("set", "a=1")))));
    const r = run(dir, { destination: "1" });
    expect(r.sleptMs).toBe(2000);
    expect(r.final).toMatchObject({ app: "answer" });
    expect(r.executed.map((e) => e.app)).toEqual(["sleep", "log", "sleep", "answer"]);
    expect(run(dir, { destination: "2" })).toMatchObject({ final: undefined, hangupCause: "NORMAL_CLEARING", variables: { a: "1" } });
    expect(run(dir, { destination: "3" })).toMatchObject({ final: undefined, hangupCause: "NO_ROUTE_DESTINATION" });
    expect(run(dir, { destination: "1", context: "nowhere" })).toMatchObject({ final: undefined, hangupCause: "NO_ROUTE_DESTINATION" });
  });
});

// ---------------------------------------------------------------------------------------------------------
// The live FreeSWITCH 1.10.12 recordings (../shared/fixtures/freeswitch/live-2026-12-06): the stock configuration
// with the drop-in as it was at 9f338bb and the default_password changed.

const LIVE = sharedFixtures("freeswitch", "live-2026-12-06");
const VANILLA = sharedFixtures("freeswitch", "vanilla-conf");

function oldDropInConf(): string {
  const old = (path: string) => execFileSync("git", ["show", `9f338bb:${path}`], { cwd: REPO, encoding: "utf8" });
  const vars = readFileSync(join(VANILLA, "vars.xml"), "utf8").replace("default_password=1234", "default_password=changed-on-the-live-switch");
  return confDir(
    {
      "vars.xml": vars,
      "dialplan/default/50_active_call.xml": old("freeswitch/dialplan/default/50_active_call.xml"),
      "dialplan/public/50_active_call.xml": old("freeswitch/dialplan/public/50_active_call.xml"),
    },
    VANILLA,
  );
}

/**
 * The dialplan lines of a recorded FreeSWITCH log from its first "Processing" line, in the model's form (channel
 * names left out). The recordings leave out "Regex (FAIL)" lines (FreeSWITCH logs them at the same level as PASS).
 */
function recordedDialplanLines(file: string): string[] {
  const out: string[] = [];
  for (const raw of readFileSync(join(LIVE, file), "utf8").split("\n")) {
    const line = raw.replace(/^[0-9a-f-]{36} /, "").trimEnd();
    let m: RegExpExecArray | null;
    if ((m = /\] mod_dialplan_xml\.c:\d+ (Processing .*)$/.exec(line))) out.push(m[1] as string);
    else if (out.length === 0) continue;
    else if ((m = /^Dialplan: \S+ (.*)$/.exec(line))) out.push(m[1] as string);
    else if ((m = /^EXECUTE \[depth=\d+\] \S+ (.*)$/.exec(line))) out.push(`EXECUTE ${m[1] as string}`);
    else if ((m = /\] switch_ivr\.c:\d+ Transfer \S+ (to XML\[.*\])$/.exec(line))) out.push(`Transfer ${m[1] as string}`);
    else if ((m = /\] switch_core_state_machine\.c:\d+ \S+ (has executed the last dialplan instruction, hanging up\.)$/.exec(line))) out.push(m[1] as string);
  }
  return out;
}

/** The model's log in the recordings' form. */
const modelLines = (log: string[]) => log.filter((l) => !l.startsWith("Regex (FAIL)")).map((l) => l.trimEnd());

describe("replaying the live FreeSWITCH 1.10.12 traces (stock configuration + the drop-in of 9f338bb)", () => {
  it("a carrier call to DID 15551230001 in context public is transferred to 9001 in default and runs snom-demo-2", () => {
    const recorded = recordedDialplanLines("stock-dialplan-9001-goes-to-snom-demo.log");
    const r = route(loadDialplan(oldDropInConf()), {
      context: "public",
      destination: "15551230001",
      caller: "sipp",
      source: "mod_sofia",
      now: new Date("2026-12-06T03:11:32Z"),
    });
    const ours = modelLines(r.log);
    // The recording stops after the first line in context default; every line of it is reproduced, in order.
    expect(recorded.length).toBeGreaterThan(10);
    expect(ours.slice(0, recorded.length)).toEqual(recorded);
    expect(r.trace.map((s) => `${s.context}/${s.extension}`)).toEqual(expect.arrayContaining(["public/active_call_did_sales", "default/snom-demo-2"]));
    expect(r.trace.find((s) => s.extension === "snom-demo-2")?.actions.map((a) => a.app)).toEqual(["eval", "transfer"]);
    // 9001 -> transfer 3000 -> a conference: the controller never sees the call.
    expect(r.trace.at(-1)).toMatchObject({ context: "default", destination: "3000" });
    expect(r.trace.at(-1)?.actions.map((a) => a.app)).toContain("conference");
    expect(r.final).toMatchObject({ context: "default", app: "answer" });
    expect(r.executed.map((e) => e.app)).not.toContain("socket");
    expect(r.sleptMs).toBe(0);
  });

  it("9664 in context default (the controller's uuid_transfer) runs hold_music's anti-actions", () => {
    const recorded = recordedDialplanLines("transfer-leaves-audio-fork-attached.log");
    const r = route(loadDialplan(oldDropInConf()), { context: "default", destination: "9664", caller: "sipp", now: new Date("2026-12-06T03:03:51Z") });
    const ours = modelLines(r.log);
    // The model stops at answer, the first application that takes the call; the recording goes on to playback.
    expect(ours.at(-1)).toBe("EXECUTE answer()");
    expect(recorded.slice(0, ours.length)).toEqual(ours);
    expect(recorded).toContain("EXECUTE playback(local_stream://moh)");
    expect(r.trace.at(-1)).toMatchObject({
      context: "default",
      extension: "hold_music",
      matched: true,
      actions: [
        { app: "answer", data: "" },
        { app: "playback", data: "silence_stream://2000" },
        { app: "playback", data: "local_stream://moh" },
      ],
    });
    expect(r.final).toMatchObject({ extension: "hold_music", app: "answer" });
  });
});
