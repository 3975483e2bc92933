// Enforces the import direction of DESIGN.md:
//   http -> call -> {pipeline, playbook, media, pbx} -> {providers, vad} -> audio -> {errors, log, config, util}
// A module may import its own layer or any layer below it, never one above. main.ts and cli.ts sit on top
// and nothing imports main.ts.
const layers = [
  ["src/(errors|log|config)\\.ts$", "src/(config|util)/"],
  ["src/audio/"],
  ["src/(providers|vad)/"],
  ["src/(pipeline|playbook|media|pbx)/"],
  ["src/call/"],
  ["src/http/"],
];
const names = ["base", "audio", "providers+vad", "pipeline+playbook+media+pbx", "call", "http"];
const or = (patterns) => patterns.map((p) => `(${p})`).join("|");

const upward = layers.slice(0, -1).map((from, i) => ({
  name: `no-upward-import-from-${names[i].replace(/\W+/g, "-")}`,
  comment: `${names[i]} may only import its own layer or lower ones (DESIGN.md)`,
  severity: "error",
  from: { path: or(from) },
  to: { path: or(layers.slice(i + 1).flat().concat(["src/main\\.ts$", "src/cli\\.ts$"])) },
}));

module.exports = {
  forbidden: [
    ...upward,
    {
      name: "nothing-imports-main",
      comment: "main.ts is the composition root",
      severity: "error",
      from: {},
      to: { path: "src/main\\.ts$" },
    },
    {
      name: "client-is-standalone",
      comment: "src/client is the published API client (active-call/client): it must not pull in the server",
      severity: "error",
      from: { path: "^src/client/" },
      to: { path: "^src/(?!client/)" },
    },
    { name: "no-circular", severity: "error", from: {}, to: { circular: true } },
  ],
  options: {
    doNotFollow: { path: "node_modules" },
    exclude: { path: "\\.test\\.ts$" },
    tsConfig: { fileName: "tsconfig.json" },
    tsPreCompilationDeps: true,
    enhancedResolveOptions: { extensions: [".ts", ".js"] },
  },
};
