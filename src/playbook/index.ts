/** Public API of the playbook layer: parse and lint playbooks, render their templates. */

export type { Diagnostic, DiagnosticCode, Severity } from "./diagnostics.js";
export { DIAGNOSTIC_CODES, formatDiagnostic, sortDiagnostics } from "./diagnostics.js";
export type { ParseOptions, PlaybookConfig } from "./options.js";
export type { ParseResult } from "./parse.js";
export { parsePlaybook } from "./parse.js";
export type { LintIo, LintOptions, LintResult } from "./lint.js";
export { LINT_USAGE, lintFiles, runLintCommand } from "./lint.js";
export type { Collector, DtmfAction, Followup, FrontMatter, GreetingPlan, PlayItem, Playbook, Scene, Tool } from "./types.js";
export type { RenderHooks } from "./template.js";
export { CompiledTemplate, TemplateSet, TemplateSyntaxError } from "./template.js";
export type { CallFacts, CallType, ClockOptions } from "./variables.js";
export {
  BUILTIN_VARIABLES,
  builtinVariables,
  isBuiltinVariable,
  isInternalVariable,
  selectSipHeaders,
  sipAlias,
  templateContext,
} from "./variables.js";
export { resolveSoundFile } from "./files.js";
export { MAX_PLAYBOOK_BYTES } from "./source.js";
export * from "./runner/index.js";
