/**
 * `on_unrouted: ask`: a request to a host no route names becomes an approval request (kind
 * egress) in egress's own state dir, answered on the host (`bottle approve ID --route once|session`,
 * `bottle deny ID`); an approval becomes a bare route (no `auth`, the one port asked for) that
 * the daemon adds to its policy on its next reload.
 *
 * Guarantees:
 *   - what is queued is host, port, method and path (no query string, no header, no body);
 *     the request id is ours; a host that is not a valid route host (an IP address) is never
 *     queued nor routed, nor is a wildcard (`*.example.com`: a request names one host, and an
 *     approval routes that host only);
 *   - one request per host and port at a time: retries while it is pending name the same id;
 *     a denied host stays refused (also after a restart: the answers are on disk);
 *   - grants count only from answers given while this daemon runs: a session grant ends with
 *     the bottle (a stop/resume starts a new daemon); a once grant lets exactly one request
 *     through (`use` is checked and set synchronously, on the decision);
 *   - no approval ever carries a credential: a granted route has no `auth`;
 *   - nothing here throws into the proxy: a queue that cannot be written is a refusal saying so.
 */
import * as fs from "node:fs"
import * as path from "node:path"
import { Schema } from "effect"
import { ANSWERS_DIR, type ApprovalRequest, DEFAULT_EXPIRY_SECONDS, LIMITS, newApprovalId, oneLine, REQUESTS_DIR, statusOf } from "../../src/schema/Approval.ts"
import { listQueue, pruneExpired, readAnswer, writeRequest } from "../../src/schema/ApprovalQueue.ts"
import { type Route, RouteHost } from "../../src/schema/Route.ts"
import type { Decision, Policy, RequestFacts } from "./policy.ts"

const isRouteHost = Schema.is(RouteHost)

export interface AskTarget {
  readonly host: string
  readonly port: number
  readonly method: string
  /** Path and query as sent: the query is dropped before anything is stored. */
  readonly pathAndQuery: string
}

export interface Grant {
  readonly id: string
  readonly host: string
  readonly port: number
  readonly once: boolean
  readonly allowPrivateIps: boolean
}

export interface Asker {
  /** The refusal for a request to a host no route names (rule `ask`): pending, denied, or why it cannot be asked. */
  readonly unrouted: (target: AskTarget) => { readonly rule: string; readonly reason: string }
  /** The routes approvals grant now. */
  readonly grants: () => ReadonlyArray<Grant>
  /** Marks once-grant `id` used; false when it already was (the request is refused). */
  readonly use: (id: string) => boolean
  /** Changes when an answer lands or a grant is used: the daemon reloads its policy then. */
  readonly stamp: () => string
  /** The dir whose changes mean an answer landed (for the daemon's watcher). */
  readonly answersDir: string
}

export interface AskOptions {
  readonly startedAt?: number
  readonly expirySeconds?: number
  readonly log?: (line: string) => void
  /** Called when a once grant is used (the daemon reloads, dropping its route). */
  readonly onUse?: () => void
}

const keyOf = (host: string, port: number) => `${host}:${port}`

export const makeAsker = (dir: string, options: AskOptions = {}): Asker => {
  const startedAt = options.startedAt ?? Date.now()
  const expiryMs = (options.expirySeconds ?? DEFAULT_EXPIRY_SECONDS) * 1000
  const log = options.log ?? ((line: string) => process.stdout.write(`egress: ${line}\n`))
  const answersDir = path.join(dir, ANSWERS_DIR)
  try {
    fs.mkdirSync(path.join(dir, REQUESTS_DIR), { recursive: true, mode: 0o700 })
    fs.mkdirSync(answersDir, { recursive: true, mode: 0o700 })
  } catch {
    // Unwritable: each ask says so (below).
  }
  // The latest request per host:port, rebuilt from disk (a denied host stays refused).
  const latest = new Map<string, ApprovalRequest>()
  for (const { request } of [...listQueue(dir).entries].sort((a, b) => Date.parse(a.request.createdAt) - Date.parse(b.request.createdAt))) {
    if (request.kind === "egress" && request.egress) latest.set(keyOf(request.egress.host, request.egress.port), request)
  }
  const used = new Set<string>()

  const grantOf = (request: ApprovalRequest): Grant | undefined => {
    const answer = readAnswer(dir, request.id)
    if (!request.egress || answer === undefined || statusOf(request, answer, Date.now()) !== "approved") return undefined
    if (Date.parse(answer.answeredAt) < startedAt) return undefined
    const once = answer.route !== "session"
    if (once && used.has(request.id)) return undefined
    return { id: request.id, host: request.egress.host, port: request.egress.port, once, allowPrivateIps: answer.allowPrivateIps === true }
  }

  const unrouted = (target: AskTarget) => {
    const host = target.host.trim().toLowerCase().replace(/\.$/, "")
    if (!isRouteHost(host) || host.startsWith("*")) {
      return { rule: "default-deny", reason: `host ${oneLine(host, 100)} is not routed (only host names can be approved, not addresses or wildcards)` }
    }
    const key = keyOf(host, target.port)
    const prior = latest.get(key)
    if (prior !== undefined) {
      const answer = readAnswer(dir, prior.id)
      const status = statusOf(prior, answer, Date.now())
      const note = answer?.note ? `: ${oneLine(answer.note, 200)}` : ""
      if (status === "denied") return { rule: "ask", reason: `host ${host} was denied by the operator (approval request ${prior.id})${note}` }
      if (status === "pending") return { rule: "ask", reason: `host ${host} is not routed: approval request ${prior.id} is pending (on the host: bottle approve ${prior.id} --route once|session)` }
      if (grantOf(prior) !== undefined) return { rule: "ask", reason: `host ${host} was approved (request ${prior.id}); its route is being applied: retry in a moment` }
    }
    // Count what is pending; forget what expired unanswered (a new ask queues afresh anyway),
    // so the index stays as small as the queue's live part.
    let pending = 0
    for (const [k, r] of latest) {
      const s = statusOf(r, readAnswer(dir, r.id), Date.now())
      if (s === "pending") pending++
      else if (s === "expired") latest.delete(k)
    }
    if (pending >= LIMITS.pendingPerDaemon) {
      return { rule: "ask", reason: `host ${host} is not routed, and ${pending} approval requests are pending already: none queued` }
    }
    const q = target.pathAndQuery.indexOf("?")
    const urlPath = (q === -1 ? target.pathAndQuery : target.pathAndQuery.slice(0, q)).slice(0, LIMITS.path)
    const method = target.method.slice(0, LIMITS.method)
    const now = Date.now()
    const request: ApprovalRequest = {
      id: newApprovalId(),
      kind: "egress",
      title: oneLine(`${method} ${host}${target.port === 443 ? "" : `:${target.port}`}${urlPath}`, LIMITS.title),
      details:
        "The agent asked for a host no egress route names (on_unrouted: ask). Approving routes it with no credential: " +
        "--route once (its next request) or --route session (until the bottle stops).",
      requester: "egress",
      createdAt: new Date(now).toISOString(),
      expiresAt: new Date(now + expiryMs).toISOString(),
      egress: { host, port: target.port, method, path: urlPath }
    }
    try {
      const pruned = pruneExpired(dir, now)
      if (pruned > 0) log(`deleted ${pruned} approval requests that expired unanswered (the newest ${LIMITS.expiredKept} are kept)`)
      writeRequest(dir, request)
    } catch (e) {
      log(`cannot queue an approval request for ${host}: ${e instanceof Error ? e.message : String(e)}`)
      return { rule: "ask", reason: `host ${host} is not routed, and the approval queue cannot be written` }
    }
    latest.set(key, request)
    log(`queued approval request ${request.id} for ${host}:${target.port}`)
    return { rule: "ask", reason: `host ${host} is not routed: approval request ${request.id} is pending (on the host: bottle approve ${request.id} --route once|session)` }
  }

  const grants = () => [...latest.values()].flatMap((r) => grantOf(r) ?? [])

  const use = (id: string) => {
    if (used.has(id)) return false
    used.add(id)
    options.onUse?.()
    return true
  }

  const stamp = () => {
    let names: Array<string> = []
    try {
      names = fs.readdirSync(answersDir)
    } catch {
      // none yet
    }
    return `${names.length}:${names.sort().join(",")}:${used.size}`
  }

  return { unrouted, grants, use, stamp, answersDir }
}

/** What an ask-mode policy carries: the asker, and which of its routes are once grants (by index). */
export interface AskHooks {
  readonly asker: Asker
  readonly once: ReadonlyMap<number, string>
}

/** The routes file's routes plus the granted ones (bare: the host, the one port, no auth), and the hooks. */
export const withGrants = (routes: ReadonlyArray<Route>, asker: Asker): { readonly routes: ReadonlyArray<Route>; readonly hooks: AskHooks } => {
  const granted = asker.grants()
  const once = new Map<number, string>()
  granted.forEach((g, i) => g.once && once.set(routes.length + i, g.id))
  return { routes: [...routes, ...granted.map((g): Route => ({ host: g.host, ports: [g.port], ...(g.allowPrivateIps ? { allow_private_ips: true } : {}) }))], hooks: { asker, once } }
}

/**
 * The decision under `on_unrouted: ask`: an unrouted host's default-deny becomes the asker's
 * refusal (queued, pending or denied); an allow through a once grant uses it up, and a second
 * request through it (before the reload drops the route) is refused.
 */
export const askDecision = (policy: Policy, decision: Decision, facts: RequestFacts): Decision => {
  const hooks = policy.ask
  if (hooks === undefined) return decision
  if (decision._tag === "Deny" && decision.rule === "default-deny" && decision.busy !== true) {
    const { rule, reason } = hooks.asker.unrouted({ host: facts.host, port: facts.port, method: facts.method, pathAndQuery: facts.pathAndQuery })
    return { _tag: "Deny", rule, reason, dlp: false }
  }
  if (decision._tag === "Allow") {
    const id = hooks.once.get(decision.route.index)
    if (id !== undefined && !hooks.asker.use(id)) {
      return { _tag: "Deny", rule: "ask", reason: `the one-request approval ${id} for ${decision.route.route.host} was used already`, dlp: false }
    }
  }
  return decision
}
