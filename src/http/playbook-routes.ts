/**
 * Playbook REST routes (ws-call-api.md §7.1): list, read, write (PUT, POST alias), delete and lint the Markdown
 * playbooks of `[paths] playbooks`. Bodies are raw text (`text/markdown` or `text/plain`). Names follow the
 * playbook name rule and resolve inside the folder; anything else is 400 INVALID_NAME. An invalid playbook is
 * not written (422 PLAYBOOK_INVALID with `details.errors`) unless `?force=true`.
 */
import type { FastifyInstance } from "fastify";
import type { ZodTypeProvider } from "fastify-type-provider-zod";
import { z } from "zod";
import { AppError } from "../errors.js";
import { DIAGNOSTIC_CODES } from "../playbook/index.js";
import type { PlaybookStore } from "../playbook/store.js";

export interface PlaybookRoutesOptions {
  store: PlaybookStore;
}

export const diagnosticSchema = z
  .object({
    file: z.string(),
    line: z.number().int().nonnegative().describe("1-based line, front matter included"),
    column: z.number().int().nonnegative().describe("1-based column (UTF-16 code units)"),
    severity: z.enum(["error", "warning"]),
    code: z.enum(DIAGNOSTIC_CODES),
    message: z.string(),
  })
  .describe("A playbook problem at file:line:column (playbook.md §8)");

export const errorBodySchema = z
  .object({
    error: z.object({
      code: z.string(),
      message: z.string(),
      retryable: z.boolean(),
      details: z.record(z.string(), z.unknown()),
    }),
  })
  .describe("The error body of every non-2xx response (§7.3)");

const nameParams = z.object({ name: z.string().describe("Playbook file name, e.g. support.md: ^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}\\.md$") });
const playbookText = z.string().describe("The playbook: Markdown with YAML front matter");
const TEXT_TYPES = ["text/markdown", "text/plain"];

const listResponse = z.object({
  playbooks: z.array(
    z.object({
      name: z.string(),
      updated: z.string().describe("RFC 3339"),
      size: z.number().int().nonnegative().describe("bytes"),
      valid: z.boolean(),
      errors: z.number().int().nonnegative().describe("count"),
      warnings: z.number().int().nonnegative().describe("count"),
    }),
  ),
});

const writeResponse = z.object({
  name: z.string(),
  updated: z.string().describe("RFC 3339"),
  warnings: z.array(diagnosticSchema),
  errors: z.array(diagnosticSchema).describe("Only non-empty when written with ?force=true"),
});

const lintResponse = z.object({ valid: z.boolean(), errors: z.array(diagnosticSchema), warnings: z.array(diagnosticSchema) });

const writeQuery = z.object({ force: z.enum(["true", "false", "1", "0"]).optional().describe("Write even when the playbook has errors") });
const lintQuery = z.object({ name: z.string().max(256).optional().describe("File name used in the diagnostics (default inline.md)") });

const errors = (codes: Record<number, string>) =>
  Object.fromEntries(Object.entries(codes).map(([status, description]) => [status, errorBodySchema.describe(description)]));

const badName = () => new AppError("INVALID_NAME", "a playbook name is one file name such as support.md: no \"/\", \"\\\" or \"..\"");

export function registerPlaybookRoutes(app: FastifyInstance, options: PlaybookRoutesOptions): void {
  const { store } = options;
  if (!app.hasContentTypeParser("text/markdown")) {
    app.addContentTypeParser(["text/markdown", "text/x-markdown"], { parseAs: "string" }, (_request, body, done) => done(null, body));
  }
  const r = app.withTypeProvider<ZodTypeProvider>();
  const tags = ["playbooks"];

  r.get(
    "/api/playbooks",
    { schema: { summary: "List the playbooks of the folder, each checked", tags, response: { 200: listResponse, ...errors({ 401: "Missing or wrong token" }) } } },
    async () => ({ playbooks: await store.list() }),
  );

  r.post(
    "/api/playbooks/lint",
    {
      schema: {
        summary: "Check a playbook text without saving it",
        tags,
        consumes: TEXT_TYPES,
        querystring: lintQuery,
        body: playbookText,
        response: { 200: lintResponse, ...errors({ 400: "Bad request", 401: "Missing or wrong token" }) },
      },
    },
    async (request) => store.check(request.body, request.query.name ?? "inline.md"),
  );

  r.get(
    "/api/playbooks/:name",
    {
      schema: {
        summary: "The raw text of a playbook",
        tags,
        params: nameParams,
        produces: ["text/markdown"],
        response: {
          200: { description: "The playbook", content: { "text/markdown": { schema: playbookText } } },
          ...errors({ 400: "INVALID_NAME", 401: "Missing or wrong token", 404: "PLAYBOOK_NOT_FOUND" }),
        },
      },
    },
    async (request, reply) => {
      const { text } = await store.read(request.params.name);
      return reply.type("text/markdown; charset=utf-8").send(text);
    },
  );

  r.route({
    method: ["PUT", "POST"],
    url: "/api/playbooks/:name",
    schema: {
      summary: "Create or replace a playbook (POST is an alias of PUT); invalid playbooks are refused unless ?force=true",
      tags,
      consumes: TEXT_TYPES,
      params: nameParams,
      querystring: writeQuery,
      body: playbookText,
      response: {
        200: writeResponse,
        ...errors({ 400: "INVALID_NAME or BAD_REQUEST", 401: "Missing or wrong token", 422: "PLAYBOOK_INVALID: details.errors = [Diagnostic]" }),
      },
    },
    handler: async (request) => {
      const { name } = request.params;
      const force = request.query.force === "true" || request.query.force === "1";
      await assertWritableName(store, name);
      const check = await store.check(request.body, name);
      if (!check.valid && !force) {
        const first = check.errors[0];
        const where = first ? `; first: ${first.line}:${first.column}: ${first.message}` : "";
        throw new AppError("PLAYBOOK_INVALID", `playbook ${name} is invalid (${check.errors.length} error${check.errors.length === 1 ? "" : "s"}${where})`, {
          details: { errors: check.errors, warnings: check.warnings },
        });
      }
      const { updated } = await store.write(name, request.body);
      return { name, updated, warnings: check.warnings, errors: check.errors };
    },
  });

  r.delete(
    "/api/playbooks/:name",
    {
      schema: {
        summary: "Delete a playbook",
        tags,
        params: nameParams,
        response: { 204: z.undefined().describe("Deleted"), ...errors({ 400: "INVALID_NAME", 401: "Missing or wrong token", 404: "PLAYBOOK_NOT_FOUND" }) },
      },
    },
    async (_request, reply) => {
      await store.remove(_request.params.name);
      return reply.status(204).send();
    },
  );

  // A name with "/" in it (raw or from "..") does not reach the routes above: refuse it the same way.
  app.route({
    method: ["GET", "PUT", "POST", "DELETE"],
    url: "/api/playbooks/*",
    schema: { hide: true },
    handler: async () => {
      throw badName();
    },
  });
}

/** INVALID_NAME before the (slower) check, so a bad name is refused whatever the body holds. */
async function assertWritableName(store: PlaybookStore, name: string): Promise<void> {
  try {
    await store.pathOf(name);
  } catch (err) {
    if (err instanceof AppError && err.code === "PLAYBOOK_NOT_FOUND") return; // a new playbook
    throw err;
  }
}
