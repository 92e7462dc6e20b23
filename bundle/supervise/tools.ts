/**
 * The supervise daemon's MCP tools: what the agent may call, with the bounds its input must
 * respect. Every string is checked here, by Schema, before a handler sees it: an oversized,
 * malformed or control-character-laden argument is an MCP `InvalidParams` error and nothing
 * is queued.
 *
 * `permission_prompt` has the shape Claude Code's `--permission-prompt-tool` calls (checked
 * against Claude Code 2.1.x, `utils/permissions/PermissionPromptToolResultSchema.ts`, and the
 * Claude Code SDK docs): input `{ tool_name, input, tool_use_id? }`; the result's text is JSON,
 * `{ "behavior": "allow", "updatedInput": {…} }` or `{ "behavior": "deny", "message": "…" }`.
 */
import { Schema } from "effect"
import { Tool, Toolkit } from "effect/ai"
import { APPROVAL_ID, LIMITS } from "../../src/schema/Approval.ts"

/** The longest a tool call is held open waiting for an answer (Claude Code drops long calls). */
export const MAX_WAIT_SECONDS = 25

// No C0/C1 controls, DEL, bidi overrides/isolates or line separators; `details` may hold \n and \t.
// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f-\u009f\u200e\u200f\u202a-\u202e\u2066-\u2069\u2028\u2029]/u
// eslint-disable-next-line no-control-regex
const CONTROL_BUT_NEWLINE = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u200e\u200f\u202a-\u202e\u2066-\u2069\u2028\u2029]/u

const text = (max: number, allowNewlines: boolean, what: string) =>
  Schema.String.pipe(
    Schema.check(
      Schema.isMaxLength(max, { message: `${what}: at most ${max} characters` }),
      Schema.makeFilter((s: string) => !(allowNewlines ? CONTROL_BUT_NEWLINE : CONTROL).test(s) || `${what}: control characters are not allowed${allowNewlines ? " (newlines and tabs are)" : ""}`)
    )
  )

const Title = text(LIMITS.title, false, "title").pipe(Schema.check(Schema.isMinLength(1, { message: "title: must not be empty" })))
const Details = text(LIMITS.details, true, "details")

export const Status = Schema.Literals(["pending", "approved", "denied", "expired"])

export const Answer = Schema.Struct({
  id: Schema.String,
  status: Status,
  note: Schema.optionalKey(Schema.String),
  answeredAt: Schema.optionalKey(Schema.String),
  expiresAt: Schema.String
})

export const RequestApproval = Tool.make("request_approval", {
  description:
    "Ask the human operator to approve something before you do it. Returns at once with an id and status \"pending\" " +
    `(or waits up to wait_seconds, at most ${MAX_WAIT_SECONDS}, for the answer). Then poll check_approval with the id. ` +
    "Never proceed on \"pending\", \"denied\" or \"expired\".",
  parameters: Schema.Struct({
    title: Title.annotate({ description: `One line saying what you want to do (at most ${LIMITS.title} characters)` }),
    details: Schema.optionalKey(Details.annotate({ description: `Why, and exactly what will happen (at most ${LIMITS.details} characters)` })),
    kind: Schema.optionalKey(Schema.Literals(["tool", "permission"]).annotate({ description: "tool (default) or permission" })),
    wait_seconds: Schema.optionalKey(
      Schema.Int.pipe(Schema.check(Schema.isBetween({ minimum: 0, maximum: MAX_WAIT_SECONDS }))).annotate({
        description: `Wait this long (0-${MAX_WAIT_SECONDS} s, default 0) for an answer before returning`
      })
    )
  }),
  success: Answer,
  failure: Schema.String,
  failureMode: "error"
})

export const CheckApproval = Tool.make("check_approval", {
  description: "The status of an approval request: pending, approved, denied or expired, with the operator's note.",
  parameters: Schema.Struct({
    id: Schema.String.pipe(Schema.check(Schema.isPattern(APPROVAL_ID, { message: "id: expected an approval id from request_approval" })))
  }),
  success: Answer,
  failure: Schema.String,
  failureMode: "error"
})

export const PermissionDecision = Schema.Struct({
  behavior: Schema.Literals(["allow", "deny"]),
  updatedInput: Schema.optionalKey(Schema.Record(Schema.String, Schema.Unknown)),
  message: Schema.optionalKey(Schema.String)
})
export type PermissionDecision = typeof PermissionDecision.Type

/**
 * permission_prompt is registered on its own (server.ts), not through the Toolkit: Claude Code
 * requires its result to be exactly one text block (the JSON decision) and refuses a result that
 * also carries `structuredContent`, which a Toolkit tool always has.
 */
export const PERMISSION_PROMPT = "permission_prompt"
export const PermissionPromptParams = Schema.Struct({
  tool_name: text(200, false, "tool_name").pipe(Schema.check(Schema.isMinLength(1, { message: "tool_name: must not be empty" }))),
  input: Schema.Record(Schema.String, Schema.Unknown),
  tool_use_id: Schema.optionalKey(text(200, false, "tool_use_id"))
})
export const PERMISSION_PROMPT_DESCRIPTION =
  "Claude Code's --permission-prompt-tool: asks the operator whether a tool may run. Returns the text " +
  "{\"behavior\":\"allow\",\"updatedInput\":…} or {\"behavior\":\"deny\",\"message\":…}."
/** Its input, as JSON Schema (what tools/list shows). */
export const PERMISSION_PROMPT_INPUT_SCHEMA = {
  type: "object",
  properties: {
    tool_name: { type: "string", maxLength: 200, description: "The tool Claude Code wants to use" },
    input: { type: "object", description: "The input it wants to use it with" },
    tool_use_id: { type: "string", maxLength: 200 }
  },
  required: ["tool_name", "input"]
} as const

export const SuperviseTools = Toolkit.make(RequestApproval, CheckApproval)
