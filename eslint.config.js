import js from "@eslint/js";
import tseslint from "typescript-eslint";

export default tseslint.config(
  { ignores: ["dist/", "node_modules/", "coverage/", "data/", "scratch/"] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    files: ["**/*.ts"],
    rules: {
      "@typescript-eslint/consistent-type-imports": "error",
      "@typescript-eslint/no-unused-vars": ["error", { argsIgnorePattern: "^_", varsIgnorePattern: "^_" }],
      "no-restricted-syntax": [
        "error",
        {
          selector: "MemberExpression[object.name='process'][property.name='env']",
          message: "Only src/config reads process.env (DESIGN.md conventions).",
        },
      ],
    },
  },
  {
    // The config module is the one reader of the environment; tests and benches may set it up.
    files: ["src/config.ts", "src/config/**/*.ts", "test/**/*.ts", "bench/**/*.ts", "**/*.test.ts"],
    rules: { "no-restricted-syntax": "off" },
  },
  {
    // The web pages: plain browser scripts (ES modules); only /phone's is bundled (web/build-phone.mjs, for JsSIP).
    files: ["web/**/*.js"],
    languageOptions: {
      sourceType: "module",
      globals: Object.fromEntries(
        [
          "window", "document", "location", "navigator", "console", "fetch", "URL", "URLSearchParams", "Blob",
          "WebSocket", "AudioContext", "AudioWorkletNode", "DataView", "setTimeout", "clearTimeout",
          "MediaStream", "HTMLInputElement",
        ].map((name) => [name, "readonly"]),
      ),
    },
    rules: {
      "@typescript-eslint/no-unused-vars": ["error", { argsIgnorePattern: "^_", varsIgnorePattern: "^_" }],
    },
  },
  {
    files: ["bin/**/*.js", "**/*.cjs"],
    languageOptions: { globals: { process: "readonly", URL: "readonly", module: "writable", require: "readonly" } },
  },
);
