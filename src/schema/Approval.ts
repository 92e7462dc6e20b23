/**
 * The approval queue's data: one request the agent (or egress, for an unrouted host) put to a
 * human, and the human's answer. Shared contract (src/schema): the bundle's daemons write
 * requests, the host's `bottle approvals|approve|deny` (and the dashboard) read them and write
 * answers.
 *
 * On disk, per bottle, per daemon subdir (`supervise`, `egress`: a daemon only sees its own):
 *   `<state>/bottles/<slug>/<subdir>/requests/<id>.json`  written once by the daemon (atomic: temp + rename)
 *   `<state>/bottles/<slug>/<subdir>/answers/<id>.json`   written once by the host (exclusive create)
 * The answer is its own file so that "the first answer wins" is one exclusive create (no lock,
 * no read-modify-write race between two `bottle approve`s), and the daemon never rewrites a
 * file the host wrote.
 *
 * Guarantees:
 *   - ids are ours (`newApprovalId`: 12 characters of [a-z2-9] from the CSPRNG); no string
 *     the agent sent ever becomes a file name; an id is checked against APPROVAL_ID before it
 *     names a file;
 *   - every agent string is bounded (LIMITS) and decoded with Schema before it is stored or shown;
 *     `displayText` escapes control and bidi characters for terminals;
 *   - a request past its expiry with no answer is `expired`, never approved; an answer written
 *     after the expiry does not revive it;
 *   - an egress request holds host, port, method and path only: never a body, a header or a query.
 */
import * as crypto from "node:crypto"
import { Schema } from "effect"

/** Bounds on everything the agent can put in a request (characters). */
export const LIMITS = {
  title: 200,
  details: 8000,
  requester: 100,
  note: 2000,
  host: 253,
  method: 16,
  path: 2048,
  /** A request or answer file larger than this is not read (bytes). */
  fileBytes: 64 * 1024,
  /** Pending requests one daemon keeps at most; beyond it, new requests are refused. */
  pendingPerDaemon: 200,
  /** Requests that expired unanswered one daemon keeps (the newest); older ones are deleted. */
  expiredKept: 500
} as const

/** Requests expire after this unless the daemon is told otherwise. */
export const DEFAULT_EXPIRY_SECONDS = 30 * 60

export const APPROVAL_ID = /^[a-z2-9]{12}$/u
const ID_ALPHABET = "abcdefghijkmnpqrstuvwxyz23456789" // 32 letters: no l, o, 0, 1

/** A fresh id: 60 bits from the CSPRNG, in an alphabet that is safe as a file name and easy to type. */
export const newApprovalId = (): string => {
  const bytes = crypto.randomBytes(12)
  let id = ""
  for (const b of bytes) id += ID_ALPHABET[b & 31]
  return id
}

const bounded = (max: number) => Schema.String.pipe(Schema.check(Schema.isMaxLength(max)))

export const ApprovalId = Schema.String.pipe(
  Schema.check(Schema.isPattern(APPROVAL_ID, { message: "expected an approval id (12 characters of a-z and 2-9)" }))
)

export const ApprovalKind = Schema.Literals(["tool", "permission", "egress"])
export type ApprovalKind = typeof ApprovalKind.Type

export const ApprovalStatus = Schema.Literals(["pending", "approved", "denied", "expired"])
export type ApprovalStatus = typeof ApprovalStatus.Type

/** How an approved egress request is routed: the next request only, or until the bottle stops. */
export const ApprovalRoute = Schema.Literals(["once", "session"])
export type ApprovalRoute = typeof ApprovalRoute.Type

/** The unrouted request egress asked about: never a body, a header or a query string. */
export const EgressTarget = Schema.Struct({
  host: bounded(LIMITS.host),
  port: Schema.Int.pipe(Schema.check(Schema.isBetween({ minimum: 1, maximum: 65535 }))),
  method: bounded(LIMITS.method),
  path: bounded(LIMITS.path)
})
export type EgressTarget = typeof EgressTarget.Type

/** A request file, as the daemon writes it (ISO-8601 times). */
export const ApprovalRequest = Schema.Struct({
  id: ApprovalId,
  kind: ApprovalKind,
  title: bounded(LIMITS.title),
  details: bounded(LIMITS.details),
  requester: bounded(LIMITS.requester),
  createdAt: Schema.String,
  expiresAt: Schema.String,
  egress: Schema.optionalKey(EgressTarget)
})
export type ApprovalRequest = typeof ApprovalRequest.Type

/** An answer file, as the host writes it. */
export const ApprovalAnswer = Schema.Struct({
  id: ApprovalId,
  status: Schema.Literals(["approved", "denied"]),
  answeredAt: Schema.String,
  note: Schema.optionalKey(bounded(LIMITS.note)),
  route: Schema.optionalKey(ApprovalRoute),
  /** Egress: the approved host may resolve to a private address (an internal service). */
  allowPrivateIps: Schema.optionalKey(Schema.Boolean)
})
export type ApprovalAnswer = typeof ApprovalAnswer.Type

/** One request with its state, as `bottle approvals --json` prints it (camelCase keys). */
export const Approval = Schema.Struct({
  id: ApprovalId,
  bottle: Schema.String,
  kind: ApprovalKind,
  title: Schema.String,
  details: Schema.String,
  requester: Schema.String,
  createdAt: Schema.String,
  expiresAt: Schema.String,
  status: ApprovalStatus,
  answeredAt: Schema.optionalKey(Schema.String),
  note: Schema.optionalKey(Schema.String),
  route: Schema.optionalKey(ApprovalRoute),
  allowPrivateIps: Schema.optionalKey(Schema.Boolean),
  host: Schema.optionalKey(Schema.String),
  port: Schema.optionalKey(Schema.Number),
  method: Schema.optionalKey(Schema.String),
  path: Schema.optionalKey(Schema.String)
})
export type Approval = typeof Approval.Type

/** The daemons that keep a queue (their state subdirs in the bundle protocol). */
export const QUEUE_SUBDIRS = ["supervise", "egress"] as const
export const REQUESTS_DIR = "requests"
export const ANSWERS_DIR = "answers"

/**
 * The status of `request` at `now` given its answer (if any): an answer counts only if it was
 * written before the expiry; without one, past the expiry is `expired`.
 */
export const statusOf = (request: ApprovalRequest, answer: ApprovalAnswer | undefined, now: number): ApprovalStatus => {
  const expires = Date.parse(request.expiresAt)
  if (answer !== undefined) {
    const at = Date.parse(answer.answeredAt)
    if (!Number.isFinite(expires) || !Number.isFinite(at) || at <= expires) return answer.status
    return "expired"
  }
  return !Number.isFinite(expires) || now >= expires ? "expired" : "pending"
}

/** The view of a request and its answer at `now`. */
export const approvalOf = (bottle: string, request: ApprovalRequest, answer: ApprovalAnswer | undefined, now: number): Approval => {
  const status = statusOf(request, answer, now)
  const counted = answer !== undefined && status === answer.status
  return {
    id: request.id,
    bottle,
    kind: request.kind,
    title: request.title,
    details: request.details,
    requester: request.requester,
    createdAt: request.createdAt,
    expiresAt: request.expiresAt,
    status,
    ...(counted ? { answeredAt: answer.answeredAt } : {}),
    ...(counted && answer.note !== undefined ? { note: answer.note } : {}),
    ...(counted && answer.route !== undefined ? { route: answer.route } : {}),
    ...(counted && answer.allowPrivateIps === true ? { allowPrivateIps: true } : {}),
    ...(request.egress ?? {})
  }
}

/**
 * `text` safe to print on a terminal: C0/C1 control characters (newlines included), DEL and
 * the bidirectional overrides/isolates escaped as `\uXXXX` (`\n`, `\t` as themselves), so an
 * agent cannot move the cursor, recolour, or reorder what the operator reads.
 */
export const displayText = (text: string): string =>
  // eslint-disable-next-line no-control-regex
  text.replace(/[\u0000-\u001f\u007f-\u009f\u200e\u200f\u202a-\u202e\u2066-\u2069\u2028\u2029]/gu, (c) =>
    c === "\n" ? "\\n" : c === "\t" ? "\\t" : `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`
  )

/** `displayText` for a block of text: newlines and tabs are kept as they are, everything else escaped. */
export const displayBlock = (text: string): string =>
  // eslint-disable-next-line no-control-regex
  text.replace(/[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u200e\u200f\u202a-\u202e\u2066-\u2069\u2028\u2029]/gu, (c) =>
    `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`
  )

/** `displayText`, clipped to `max` characters (for one-line views of agent input). */
export const oneLine = (text: string, max: number): string => {
  const flat = displayText(text)
  return flat.length > max ? `${flat.slice(0, max - 1)}…` : flat
}
