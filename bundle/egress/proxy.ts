/**
 * The egress proxy engine, built on mockttp: mockttp terminates the agent's TLS (certificates
 * minted per SNI from the bottle CA), parses HTTP/1, HTTP/2 and WebSocket upgrades, handles
 * CONNECT, and forwards upstream with full certificate verification. We add the policy.
 *
 * Shape: one static rule per route (a matcher that consults the pure `decide` policy once per
 * request, then a guard step and mockttp's passthrough step), one fallback rule that answers
 * 403 naming the rule that refused, and the same for WebSockets. A policy change (live reload)
 * swaps the whole rule set atomically (`setRequestRules`).
 *
 * Guarantees:
 * - nothing is forwarded unless `decide` allowed it through a route;
 * - a CONNECT whose target no route admits (host or port) is refused before any TLS;
 * - the agent's credential headers (the route's auth header and alternates, every copy) are
 *   removed and the real token injected; the token never appears in a log or audit line;
 *   Proxy-Authorization (hop-by-hop) is never forwarded;
 * - request bodies (and HTTP/1 request trailers) stream through a bounded-window DLP scan,
 *   response bodies through a redactor; neither is buffered whole (mockttp's own body buffer
 *   is capped at 0 bytes, and no beforeRequest/beforeResponse callback is used, since those
 *   buffer whole bodies);
 * - a held token echoed in response headers, trailers or upstream→agent WebSocket messages is
 *   redacted too (in headers also when split across several: `redactHead`); on a credential route the upstream is asked for `accept-encoding: identity`
 *   and a response that is content-encoded anyway is refused (502), since its body could
 *   carry the token where the redactor cannot see it.
 *
 * mockttp extension points used (checked by the tests): custom matcher objects (sync
 * `matches`), custom step types registered in mockttp's step lookup tables, the socket
 * metadata symbols for CONNECT target and SNI, and the listener of the underlying server
 * (to refuse CONNECT early and to bind to one address).
 */
import * as net from "node:net"
import { type Readable, Transform } from "node:stream"
import * as url from "node:url"
import type * as mockttp from "mockttp"
// mockttp's server modules only, not its main entry: that also loads the admin server, the
// remote client and GraphQL (~10 MB of code the daemon never runs; it used to cost ~50 MB RSS).
import { WildcardMatcher } from "mockttp/dist/rules/matchers"
import passthroughHandling from "mockttp/dist/rules/passthrough-handling"
import { PassThroughStep } from "mockttp/dist/rules/requests/request-step-definitions"
import { MockttpServer } from "mockttp/dist/server/mockttp-server"
import { StepLookup } from "mockttp/dist/rules/requests/request-step-impls"
import { PassThroughWebSocketStepImpl, WsStepLookup } from "mockttp/dist/rules/websockets/websocket-step-impls"
import { getConnection } from "mockttp/dist/rules/http-agents"
import { LastTunnelAddress, TlsMetadata, UpstreamConnectionAgents } from "mockttp/dist/util/socket-extensions"
import { getParentSocket } from "mockttp/dist/util/socket-util"
import { Redacted } from "effect"
import { hostMatches } from "../../src/schema/Route.ts"
import { AddressRefused, guardLookup, type LookupFunction } from "./addresses.ts"
import type { AuditDecision, AuditEntry } from "../../src/schema/AuditLog.ts"
import type { AuditLog } from "./audit.ts"
import type { HeldListener } from "./listener.ts"
import { Admission, gateConnections } from "./admission.ts"
import { askDecision } from "./ask.ts"
import { DEFAULT_LIMITS, type EgressLimits } from "./config.ts"
import { BodyScanner, describeFinding, MIN_SCANNED_TOKEN, Redactor, scanDecoded, scanWindowFor } from "./dlp.ts"
import { type CompiledRoute, decide, type Decision, type Policy, type RequestFacts } from "./policy.ts"

type OngoingRequest = mockttp.OngoingRequest
type OngoingResponse = mockttp.OngoingResponse
type RawHeaders = Array<[string, string]>

interface SocketMeta {
  [LastTunnelAddress]?: string
  [TlsMetadata]?: { sniHostname?: string }
}

export interface ProxyOptions {
  readonly ca: { readonly certPem: string; readonly keyPem: string }
  readonly listen: { readonly host: string; readonly port: number }
  readonly bottle: string
  readonly audit: AuditLog
  /** DNS servers for upstream lookups ("127.0.0.1:5353"); default: the system resolver. */
  readonly dnsServers?: ReadonlyArray<string> | undefined
  /** How long a client may take to send request headers (slowloris guard). */
  readonly headersTimeoutMs?: number | undefined
  /** A connection with no traffic either way for this long is closed (default 5 minutes). */
  readonly idleTimeoutMs?: number | undefined
  /** Connection and request caps (admission.ts); the two timeouts above win over these. */
  readonly limits?: Partial<EgressLimits> | undefined
  readonly log?: ((line: string) => void) | undefined
  /** A port already bound (`holdListener`) to serve on; `listen` then only names it. */
  readonly listener?: HeldListener | undefined
}

export interface EgressProxy {
  readonly host: string
  readonly port: number
  readonly setPolicy: (policy: Policy) => Promise<void>
  readonly stop: () => Promise<void>
}

// --- request facts -------------------------------------------------------------------------

const hostOfTarget = (target: string): { host: string; port: number | undefined } => {
  const m = /^(\[[^\]]+\]|[^:]+)(?::(\d+))?$/.exec(target)
  if (!m) return { host: target, port: undefined }
  return { host: m[1]!.toLowerCase(), port: m[2] === undefined ? undefined : Number(m[2]) }
}

const socketOf = (req: OngoingRequest): SocketMeta | undefined => (req as unknown as { socket?: SocketMeta }).socket

/**
 * `url.parse` of a request URL, reduced to what the policy needs. url.parse is a pure function
 * of its input and agents repeat the same few URLs, so results are memoised per exact URL
 * string (bounded: the table is dropped when full).
 */
interface ParsedForwarded {
  readonly host: string
  readonly path: string
}
const PARSE_CACHE_MAX = 256
const PARSE_CACHE_KEY_MAX = 2048
const parseCache = new Map<string, ParsedForwarded>()
const parseForwarded = (requestUrl: string): ParsedForwarded => {
  const hit = parseCache.get(requestUrl)
  if (hit !== undefined) return hit
  const parsed = url.parse(requestUrl)
  const out: ParsedForwarded = { host: parsed.host ?? "", path: `${parsed.pathname || "/"}${parsed.search || ""}` }
  if (requestUrl.length <= PARSE_CACHE_KEY_MAX) {
    if (parseCache.size >= PARSE_CACHE_MAX) parseCache.clear()
    parseCache.set(requestUrl, out)
  }
  return out
}

export const factsOf = (req: OngoingRequest): RequestFacts => {
  const socket = socketOf(req)
  const tunnel = socket?.[LastTunnelAddress]
  const raw = req.rawHeaders as RawHeaders
  const protocol = req.protocol
  const hostHeaders: Array<readonly [string, string]> = []
  for (const [k, v] of raw) {
    const name = k.toLowerCase()
    if (name === "host" || name === ":authority") hostHeaders.push([name, v])
  }
  // Exactly what mockttp's passthrough will send: it re-parses req.url with url.parse (for a
  // tunnelled request req.url is already the WHATWG serialisation of the raw path).
  const parsed = parseForwarded(req.url)
  return {
    method: req.method.toUpperCase(),
    host: req.destination.hostname,
    port: req.destination.port,
    tls: protocol === "https" || protocol === "wss",
    tunnelHost: tunnel === undefined ? undefined : hostOfTarget(tunnel).host,
    sni: protocol === "https" || protocol === "wss" ? socket?.[TlsMetadata]?.sniHostname : undefined,
    hostHeaders,
    urlHost: parsed.host,
    pathAndQuery: req.path,
    forwardedPath: parsed.path,
    headers: raw
  }
}

const pathOnly = (pathAndQuery: string): string => {
  const q = pathAndQuery.indexOf("?")
  return q === -1 ? pathAndQuery : pathAndQuery.slice(0, q)
}

const denialBody = (rule: string, reason: string): string =>
  JSON.stringify({ error: "egress denied", rule, reason, hint: "bot-bottle egress allows only routed hosts; see `bottle egress allow`" }) + "\n"

/** HTTP/1 only: HTTP/2 has no Connection header (Node warns and drops it). */
const closeHeader = (req: OngoingRequest): Record<string, string> => (req.httpVersion.startsWith("2") ? {} : { connection: "close" })

/**
 * The headers sent upstream: never Proxy-Authorization/Proxy-Connection (hop-by-hop; inside a
 * tunnel mockttp would forward them); on a credential route every copy of the agent's
 * credential headers is replaced by the real one, and the upstream is asked for an identity
 * body (so the redactor sees plain text).
 */
const forwardHeaders = (raw: RawHeaders, auth: CompiledRoute["auth"]): RawHeaders => {
  const out: RawHeaders = []
  for (const h of raw) {
    const k = h[0].toLowerCase()
    if (k === "proxy-authorization" || k === "proxy-connection") continue
    if (auth && (k === "accept-encoding" || auth.strip.includes(k))) continue
    out.push(h)
  }
  if (auth) {
    out.push([auth.header, Redacted.value(auth.value)])
    out.push(["accept-encoding", "identity"])
  }
  return out
}

/** Held tokens as strings, with their same-length masks, for header and message redaction. */
export interface Masks {
  readonly values: ReadonlyArray<string>
  readonly buffers: ReadonlyArray<Buffer>
}

const masksFor = (policy: Policy): Masks => {
  const values = policy.tokens.map((t) => t.value).filter((v) => v.length >= MIN_SCANNED_TOKEN)
  return { values, buffers: values.map((v) => Buffer.from(v, "latin1")) }
}

/** One piece of a response head the agent reads: a header name, a value, the reason phrase. */
export interface Cell {
  text: string
  mask: Uint8Array | undefined
  readonly name: string | undefined
  readonly set: (text: string) => void
}

/** Marks every held token found in the pieces read joined (in order, without separators). */
const markJoined = (m: Masks, slices: ReadonlyArray<readonly [Cell, number, number]>): void => {
  if (slices.length === 0) return
  let joined = ""
  for (const [c, from, to] of slices) joined += c.text.slice(from, to)
  for (const needle of m.values) {
    let at = joined.indexOf(needle)
    while (at !== -1) {
      // Map [at, at + needle.length) back onto the pieces it spans.
      let offset = 0
      for (const [c, from, to] of slices) {
        const len = to - from
        const lo = Math.max(at, offset)
        const hi = Math.min(at + needle.length, offset + len)
        if (lo < hi) {
          c.mask ??= new Uint8Array(c.text.length)
          c.mask.fill(1, from + lo - offset, from + hi - offset)
        }
        offset += len
      }
      at = joined.indexOf(needle, at + needle.length)
    }
  }
}

/** A Set-Cookie value's cookie value: after the first `=`, up to the first `;`. */
const cookieValueOf = (v: string): readonly [number, number] => {
  const eq = v.indexOf("=")
  const semi = v.indexOf(";")
  const end = semi === -1 ? v.length : semi
  return eq === -1 || eq > end ? [0, end] : [eq + 1, end]
}

/**
 * Redacts held tokens in a response head as the agent can read it joined, not only piece by
 * piece (an upstream may split what it echoes: long cookies are chunked into several
 * Set-Cookie headers, say). Four readings, every character of a match masked in whichever
 * piece holds it:
 * - the reason phrase and every header name and value, in order, concatenated (a token as a
 *   name, or split between a name and its value);
 * - every header value, in order, concatenated (split across adjacent headers);
 * - each header name's values, in order, concatenated (split across two headers of one name
 *   with others in between, e.g. two Set-Cookie);
 * - the cookie values of all Set-Cookie headers, in order, concatenated (cookie chunking:
 *   `s.0=<first half>; Path=/`, `s.1=<second half>`).
 * Not caught: pieces spread over headers of different names that are not adjacent, or put
 * back in another order (see docs/egress.md, Known gaps).
 */
export const redactHead = (m: Masks, headers: unknown, reason?: Cell): void => {
  const cells: Array<Cell> = reason ? [reason] : []
  const cell = (text: unknown, name: string | undefined, set: (t: string) => void): void => {
    if (typeof text === "string") cells.push({ text, mask: undefined, name, set })
    else if (typeof text === "number") cells.push({ text: String(text), mask: undefined, name, set: () => {} })
  }
  const values = (name: unknown, value: unknown, set: (v: unknown) => void): void => {
    const lower = typeof name === "string" ? name.toLowerCase() : undefined
    if (Array.isArray(value)) {
      const arr = [...value]
      set(arr)
      arr.forEach((v, i) => cell(v, lower, (t) => (arr[i] = t)))
    } else cell(value, lower, (t) => set(t))
  }
  if (Array.isArray(headers)) {
    if (Array.isArray(headers[0])) {
      for (const pair of headers as Array<[unknown, unknown]>) {
        cell(pair[0], undefined, (t) => (pair[0] = t))
        values(pair[0], pair[1], (v) => (pair[1] = v))
      }
    } else {
      for (let i = 0; i + 1 < headers.length; i += 2) {
        const arr = headers as Array<unknown>
        cell(arr[i], undefined, (t) => (arr[i] = t))
        values(arr[i], arr[i + 1], (v) => (arr[i + 1] = v))
      }
    }
  } else if (headers && typeof headers === "object") {
    const o = headers as Record<string, unknown>
    for (const k of Object.keys(o)) {
      let key = k
      cell(k, undefined, (t) => {
        const v = o[key]
        delete o[key]
        o[t] = v
        key = t
      })
      values(k, o[k], (v) => (o[key] = v))
    }
  }
  if (cells.length === 0) return
  // Readings 1 and 2: everything, in order; every value, in order.
  markJoined(m, cells.map((c) => [c, 0, c.text.length] as const))
  markJoined(m, cells.filter((c) => c.name !== undefined).map((c) => [c, 0, c.text.length] as const))
  // Readings 3 and 4: only where a name repeats / several cookies are set.
  const byName = new Map<string, Array<Cell>>()
  for (const c of cells) {
    if (c.name === undefined) continue
    const group = byName.get(c.name)
    if (group) group.push(c)
    else byName.set(c.name, [c])
  }
  for (const [name, group] of byName) {
    if (group.length < 2) continue
    markJoined(m, group.map((c) => [c, 0, c.text.length] as const))
    if (name === "set-cookie") markJoined(m, group.map((c) => [c, ...cookieValueOf(c.text)] as const))
  }
  for (const c of cells) {
    if (c.mask === undefined) continue
    let out = ""
    for (let i = 0; i < c.text.length; i++) out += c.mask[i] ? "*" : c.text[i]
    c.set(out)
  }
}

/**
 * Could a match of `needle` start in `text[0, end)` and run on past `end`: is some suffix of
 * it a proper prefix of the needle? (No allocation: compares character codes.)
 */
const endsWithPrefixOf = (text: string, end: number, needle: string): boolean => {
  const last = text.charCodeAt(end - 1)
  // j + 1 = the prefix length tried, 1 ≤ j + 1 ≤ min(end, needle.length - 1).
  for (let j = Math.min(end, needle.length - 1) - 1; j >= 0; j--) {
    if (needle.charCodeAt(j) !== last) continue
    let k = 0
    while (k < j && text.charCodeAt(end - 1 - j + k) === needle.charCodeAt(k)) k++
    if (k === j) return true
  }
  return false
}

/** One piece of a head (see pieceClean) as redactHead takes it: a string, or a number as its text. */
const pieceClean = (m: Masks, piece: unknown, cookie: boolean): boolean => {
  const text = typeof piece === "string" ? piece : typeof piece === "number" ? String(piece) : undefined
  if (text === undefined) return true
  // Reading 4's slice of a Set-Cookie value ends at its first `;` (cookieValueOf).
  const semi = cookie ? text.indexOf(";") : -1
  for (const n of m.values) {
    if (text.includes(n) || endsWithPrefixOf(text, text.length, n)) return false
    if (semi !== -1 && endsWithPrefixOf(text, semi, n)) return false
  }
  return true
}

const isSetCookie = (name: unknown): boolean => typeof name === "string" && name.length === 10 && name.toLowerCase() === "set-cookie"

/** A header's name and value(s), each through pieceClean. */
const headerClean = (m: Masks, name: unknown, value: unknown): boolean => {
  if (!pieceClean(m, name, false)) return false
  const cookie = isSetCookie(name)
  if (!Array.isArray(value)) return pieceClean(m, value, cookie)
  for (const v of value) if (!pieceClean(m, v, cookie)) return false
  return true
}

/**
 * redactHead's fast path: true only when no held token can be in any of its four readings, so
 * the head is left as it is without building its per-piece bookkeeping (objects and closures
 * per header, on every response of a credential route). Exact, not a heuristic: every reading
 * is pieces (names, values, the reason phrase, Set-Cookie cookie values) joined, so a match in
 * one lies inside one piece or starts in a piece that ends with a proper prefix of the token;
 * it answers false when any piece holds a token or ends (its cookie value ends) with the start
 * of one, and the full pass decides. Allocates nothing for string pieces.
 */
export const headClean = (m: Masks, headers: unknown, reason: string | undefined): boolean => {
  if (reason !== undefined && !pieceClean(m, reason, false)) return false
  if (Array.isArray(headers)) {
    if (Array.isArray(headers[0])) {
      for (const pair of headers as Array<[unknown, unknown]>) if (!headerClean(m, pair[0], pair[1])) return false
    } else {
      for (let i = 0; i + 1 < headers.length; i += 2) if (!headerClean(m, headers[i], headers[i + 1])) return false
    }
  } else if (headers && typeof headers === "object") {
    const o = headers as Record<string, unknown>
    for (const k in o) if (Object.prototype.hasOwnProperty.call(o, k) && !headerClean(m, k, o[k])) return false
  }
  return true
}

/** Redacts, in place, a header argument of writeHead/addTrailers/informational responses (see redactHead). */
export const redactHeaders = (m: Masks, headers: unknown): void => {
  if (!headClean(m, headers, undefined)) redactHead(m, headers)
}

/** A content-encoding header's value if it is anything but identity. */
const encodingOf = (k: unknown, v: unknown): string | undefined => {
  // Cheap length test first: most headers are not content-encoding.
  if (typeof k !== "string" || k.length !== 16 || k.toLowerCase() !== "content-encoding") return undefined
  const value = String(v).trim().toLowerCase()
  return value === "" || value === "identity" ? undefined : value
}

/** The response's content-encoding if it is anything but identity. */
const contentEncoding = (headers: unknown): string | undefined => {
  if (Array.isArray(headers)) {
    if (Array.isArray(headers[0])) {
      for (let i = 0; i < headers.length; i++) {
        const pair = headers[i] as Array<unknown>
        const e = encodingOf(pair[0], pair[1])
        if (e) return e
      }
    } else {
      for (let i = 0; i + 1 < headers.length; i += 2) {
        const e = encodingOf(headers[i], headers[i + 1])
        if (e) return e
      }
    }
  } else if (headers && typeof headers === "object") {
    for (const k in headers) {
      if (!Object.prototype.hasOwnProperty.call(headers, k)) continue
      const e = encodingOf(k, (headers as Record<string, unknown>)[k])
      if (e) return e
    }
  }
  return undefined
}

/** Redacts held tokens in a whole WebSocket message (same length: framing stays right). */
const redactBuffer = (m: Masks, buf: Buffer): Buffer => {
  let out = buf
  for (const n of m.buffers) {
    let at = out.indexOf(n)
    while (at !== -1) {
      if (out === buf) out = Buffer.from(buf)
      out.fill(0x2a, at, at + n.length)
      at = out.indexOf(n, at + n.length)
    }
  }
  return out
}

// --- one generation of rules (one policy) ----------------------------------------------------

class Generation {
  readonly policy: Policy
  readonly window: number
  readonly masks: Masks
  private readonly decisions = new WeakMap<object, Decision>()
  /** Whether a new request is refused for load (admission.ts), whatever the policy says. */
  private readonly shed: (() => { rule: string; reason: string } | undefined) | undefined

  constructor(policy: Policy, shed?: () => { rule: string; reason: string } | undefined) {
    this.policy = policy
    this.window = scanWindowFor(policy.needles)
    this.masks = masksFor(policy)
    this.shed = shed
  }

  decision(req: OngoingRequest): Decision {
    let d = this.decisions.get(req)
    if (d === undefined) {
      const busy = this.shed?.()
      if (busy) d = { _tag: "Deny", rule: busy.rule, reason: busy.reason, dlp: false, busy: true }
      else {
        const facts = factsOf(req)
        d = askDecision(this.policy, decide(this.policy, facts), facts)
      }
      this.decisions.set(req, d)
    }
    return d
  }

  /** CONNECT is refused unless some route admits the target host on that port. */
  connectVerdict(target: string): { rule: string; reason: string } | undefined {
    const { host, port } = hostOfTarget(target)
    if (port === undefined) return { rule: "bad-connect", reason: `CONNECT target ${JSON.stringify(target)} has no port` }
    const candidates = this.policy.routes.filter((r) => hostMatches(r.route.host, host))
    // on_unrouted: ask: the tunnel opens, and its first request gets the 403 naming the approval.
    if (candidates.length === 0) return this.policy.ask ? undefined : { rule: "default-deny", reason: `host ${host} is not routed` }
    if (candidates.some((r) => r.ports.includes(port))) return undefined
    return { rule: candidates[0]!.name, reason: `port ${port} not allowed (allowed: ${candidates[0]!.ports.join(", ")})` }
  }
}

/**
 * What every matcher and step of ours shares: they live in this process only (mockttp would
 * serialize rules for a remote admin server, which egress never runs) and hold nothing to free.
 */
class LocalRulePart {
  serialize(): never {
    throw new Error("bot-bottle egress rules are local only")
  }
  dispose(): void {}
}

/** Why a request reaching a deny step is refused (a host no route names has no decision of its own). */
const refusalOf = (d: ReturnType<Generation["decision"]>) =>
  d._tag === "Deny"
    ? { rule: d.rule, reason: d.reason, dlp: d.dlp, busy: d.busy === true }
    : { rule: "default-deny", reason: "no rule", dlp: false, busy: false }

class RouteMatcher extends LocalRulePart {
  readonly type = "bottle-route"
  readonly gen: Generation
  readonly index: number
  constructor(gen: Generation, index: number) {
    super()
    this.gen = gen
    this.index = index
  }
  matches(req: OngoingRequest): boolean {
    const d = this.gen.decision(req)
    return d._tag === "Allow" && d.route.index === this.index
  }
  explain(): string {
    return `allowed by ${this.gen.policy.routes[this.index]?.name ?? "?"}`
  }
}

// --- steps -----------------------------------------------------------------------------------

interface Context {
  readonly bottle: string
  readonly audit: AuditLog
  readonly log: (line: string) => void
  /** Host → why its address was refused, most recent (for the audit line of that request). */
  readonly addressRefusals: Map<string, string>
  /** Host → when (performance.now()) its address was last refused. */
  readonly addressRefusedAt: Map<string, number>
}

/** The tag mockttp puts on a response whose upstream connection failed with our refusal. */
const ADDRESS_REFUSED_TAG = `passthrough-error:${AddressRefused.code}`

const auditEntry = (
  ctx: Context,
  req: OngoingRequest,
  started: number,
  fields: { status: number; bytesIn: number; bytesOut: number; decision: AuditDecision; rule: string; reason?: string | undefined }
): AuditEntry => ({
  time: new Date().toISOString(),
  bottle: ctx.bottle,
  method: req.method,
  host: req.destination.hostname,
  path: pathOnly(req.path),
  status: fields.status,
  bytes_in: fields.bytesIn,
  bytes_out: fields.bytesOut,
  duration_ms: Math.round((performance.now() - started) * 100) / 100,
  decision: fields.decision,
  rule: fields.rule,
  ...(fields.reason !== undefined ? { reason: fields.reason } : {})
})

class DlpBlocked extends Error {}

const hasNoBody = (req: OngoingRequest): boolean => {
  if (req.httpVersion.startsWith("2")) return false
  const raw = req.rawHeaders as RawHeaders
  for (const [k, v] of raw) {
    const name = k.toLowerCase()
    if (name === "transfer-encoding") return false
    if (name === "content-length" && v.trim() !== "0") return false
  }
  return true
}

type WriteCb = (error?: Error | null) => void

type WriteFn = (chunk: unknown, encoding?: unknown, cb?: unknown) => boolean
type EndFn = (chunk?: unknown, encoding?: unknown, cb?: unknown) => unknown
type HeadersFn = (...args: Array<unknown>) => unknown

/** What a guarded response carries (one object per response, under `GUARD`). */
interface ResponseGuard {
  readonly redactor: Redactor | undefined
  readonly masks: Masks
  /** Credential route: a content-encoded response is refused (its body cannot be redacted). */
  readonly refuseEncoded: boolean
  readonly h2: boolean
  /** mockttp's own (tracking) writeHead/addTrailers: cheap, and they keep getRawHeaders right. */
  readonly writeHead: HeadersFn
  readonly addTrailers: (headers: unknown) => void
  /** The class's own write/end, not mockttp's tracking wrappers (see `guardResponse`). */
  readonly write: WriteFn
  readonly end: EndFn
  readonly onRefused: (encoding: string) => void
  /** The 502 body replacing a refused encoded response; "" once sent. */
  refusal: string | undefined
  bytesOut: number
  /**
   * Set once `end` hands over the last, already guarded, bytes: HTTP/2's `end(data)` writes
   * them through the instance's `write`, which must not guard them a second time (the redactor
   * has released its tail by then, and would hold it back again, for good).
   */
  ended: boolean
  /** mockttp's own 1xx sender, when guarded. */
  informational?: InformationalFn
}

const GUARD = Symbol("bot-bottle.responseGuard")
type InformationalFn = (status: number, headers: unknown) => void
type GuardedResponse = { [GUARD]: ResponseGuard } & {
  write: WriteFn
  end: EndFn
  writeHead: HeadersFn
  addTrailers: (headers: unknown) => void
  /** mockttp's, for 1xx responses. */
  sendInformationalResponse?: InformationalFn
}

const toBuffer = (chunk: unknown, encoding: unknown): Buffer =>
  Buffer.isBuffer(chunk) ? chunk : typeof chunk === "string" ? Buffer.from(chunk, typeof encoding === "string" ? (encoding as BufferEncoding) : "utf8") : Buffer.from(chunk as Uint8Array)

// The replacements below are shared by every response (no closure per response): each finds
// its response's state under GUARD.
function guardedWriteHead(this: GuardedResponse, ...args: Array<unknown>): unknown {
  const g = this[GUARD]
  const headers = typeof args[1] === "string" ? args[2] : args[1]
  if (g.refuseEncoded) {
    const encoding = contentEncoding(headers)
    if (encoding !== undefined) {
      g.onRefused(encoding)
      const body = denialBody("encoded-response", `the upstream answered with content-encoding ${encoding} although egress asked for identity; refused, since a token in it could not be redacted`)
      g.refusal = body
      return g.writeHead.call(this, 502, { "content-type": "application/json", "content-length": String(Buffer.byteLength(body)), ...(g.h2 ? {} : { connection: "close" }) })
    }
  }
  if (g.masks.values.length > 0 && !headClean(g.masks, headers, typeof args[1] === "string" ? args[1] : undefined)) {
    // The reason phrase is the upstream's too, read with the headers after it.
    const reason: Cell | undefined = typeof args[1] === "string" ? { text: args[1], mask: undefined, name: undefined, set: (t) => (args[1] = t) } : undefined
    redactHead(g.masks, headers, reason)
  }
  return g.writeHead.apply(this, args)
}

function guardedInformational(this: GuardedResponse, status: number, headers: unknown): void {
  const g = this[GUARD]
  redactHeaders(g.masks, headers)
  g.informational!.call(this, status, headers)
}

function guardedAddTrailers(this: GuardedResponse, headers: unknown): void {
  const g = this[GUARD]
  if (g.refusal !== undefined) return
  if (g.masks.values.length > 0) redactHeaders(g.masks, headers)
  g.addTrailers.call(this, headers)
}

function guardedWrite(this: GuardedResponse, chunk: unknown, encoding?: unknown, cb?: unknown): boolean {
  const g = this[GUARD]
  if (g.ended) return g.write.call(this, chunk, encoding, cb)
  const callback = (typeof encoding === "function" ? encoding : cb) as WriteCb | undefined
  if (g.refusal !== undefined) {
    // The encoded body is dropped (read, so mockttp's pipe completes normally).
    if (callback) process.nextTick(callback)
    return true
  }
  let buf = toBuffer(chunk, encoding)
  if (g.redactor) buf = g.redactor.push(buf)
  g.bytesOut += buf.length
  if (buf.length === 0) {
    if (callback) process.nextTick(callback)
    return true
  }
  return callback ? g.write.call(this, buf, callback) : g.write.call(this, buf)
}

function guardedEnd(this: GuardedResponse, chunk?: unknown, encoding?: unknown, cb?: unknown): unknown {
  const g = this[GUARD]
  const callback = (typeof chunk === "function" ? chunk : typeof encoding === "function" ? encoding : cb) as WriteCb | undefined
  if (g.refusal !== undefined) {
    const body = g.refusal
    g.refusal = ""
    g.bytesOut += Buffer.byteLength(body)
    g.ended = true
    return callback ? g.end.call(this, body, callback) : g.end.call(this, body)
  }
  let out: Buffer | undefined
  if (chunk !== undefined && chunk !== null && typeof chunk !== "function") {
    const buf = toBuffer(chunk, encoding)
    out = g.redactor ? g.redactor.push(buf) : buf
  }
  // The redactor's held tail (usually empty: only a possible token prefix is held back).
  const tail = g.redactor?.end()
  if (tail !== undefined && tail.length > 0) out = out === undefined || out.length === 0 ? tail : Buffer.concat([out, tail])
  g.ended = true
  if (out === undefined || out.length === 0) return callback ? g.end.call(this, callback) : g.end.call(this)
  g.bytesOut += out.length
  return callback ? g.end.call(this, out, callback) : g.end.call(this, out)
}

/**
 * Guards a response's writeHead/addTrailers/write/end: counts bytes and, when tokens are held,
 * redacts them in headers, trailers and body. Data not held back by the redactor is written
 * straight through (no added latency). Returns the state (bytes out, refusal).
 */
const guardResponse = (
  res: OngoingResponse,
  options: Pick<ResponseGuard, "redactor" | "masks" | "refuseEncoded" | "h2" | "onRefused">
): ResponseGuard => {
  const target = res as unknown as GuardedResponse
  // The class's own write/end, not mockttp's tracking wrappers: those copy every chunk into
  // a PassThrough nobody reads, which keeps a whole response body in memory until it ends.
  const proto = Object.getPrototypeOf(res) as GuardedResponse
  const guard: ResponseGuard = {
    ...options,
    writeHead: target.writeHead,
    addTrailers: target.addTrailers,
    write: proto.write,
    end: proto.end,
    refusal: undefined,
    bytesOut: 0,
    ended: false
  }
  target[GUARD] = guard
  // 1xx responses (103 Early Hints, …) carry upstream headers too.
  if (typeof target.sendInformationalResponse === "function" && options.masks.values.length > 0) {
    guard.informational = target.sendInformationalResponse
    target.sendInformationalResponse = guardedInformational
  }
  target.writeHead = guardedWriteHead
  target.addTrailers = guardedAddTrailers
  target.write = guardedWrite
  target.end = guardedEnd
  return guard
}

/**
 * The body of a request that has none, as mockttp's passthrough uses it: already ended, and
 * piping it just ends the upstream request (as piping the empty request would, without the
 * per-request stream plumbing). Node's server discards the unread (empty) request itself once
 * the response finishes, as for any handler that does not read its request.
 */
const ENDED_BODY = {
  readableEnded: true,
  pipe<T extends { end: () => unknown }>(dest: T): T {
    dest.end()
    return dest
  },
  on() {
    return this
  },
  once() {
    return this
  },
  resume() {
    return this
  }
}
const noBody = () => ENDED_BODY as unknown as Readable

/** Runs before mockttp's passthrough on an allowed request: inject, scan, redact, audit. */
class GuardStep extends LocalRulePart {
  static readonly isFinal = false
  static readonly fromDefinition = (d: GuardStep) => d
  readonly type = "bottle-guard"
  readonly gen: Generation
  readonly route: CompiledRoute
  readonly ctx: Context
  constructor(gen: Generation, route: CompiledRoute, ctx: Context) {
    super()
    this.gen = gen
    this.route = route
    this.ctx = ctx
  }
  explain(): string {
    return `guard ${this.route.name}`
  }

  async handle(req: OngoingRequest, res: OngoingResponse): Promise<{ continue: true }> {
    const started = performance.now()
    const { ctx, route } = this
    const { tokens, needles } = this.gen.policy
    req.rawHeaders = forwardHeaders(req.rawHeaders as RawHeaders, route.auth)
    retireStalePools(req, this.gen)

    let outcome: { decision: AuditDecision; rule: string; reason?: string } = { decision: "allow", rule: route.name }
    let scanner: BodyScanner | undefined
    // A DLP block is audited when it happens, before the 403 leaves: the line is on disk
    // even if the daemon dies right after (a refusal is written at once, see audit.ts).
    let audited = false

    // Stream the request body through the DLP scanner: mockttp pipes whatever asStream returns
    // to the upstream request, and aborts upstream when that stream errors. The source is the
    // request itself, not mockttp's body stream (that one also feeds a buffer promise and a
    // second stream per request, for recording, which egress never does; nothing else reads
    // the request). An HTTP/1 request with neither Content-Length nor Transfer-Encoding has no
    // body (RFC 9112 §6.3): nothing to scan or forward (most API calls are such GETs).
    const body = req.body
    const source = req as unknown as Readable
    if (hasNoBody(req)) body.asStream = noBody
    else body.asStream = () => {
      const scan = (scanner = new BodyScanner(needles, route.auth?.env, this.gen.window))
      const block = (what: string, finding: Parameters<typeof describeFinding>[0]): DlpBlocked => {
        const reason = `${what} carries ${describeFinding(finding)}`
        outcome = { decision: "dlp-block", rule: "dlp", reason }
        ctx.log(`egress: blocked ${req.method} ${req.destination.hostname}${pathOnly(req.path)}: ${reason}`)
        const denial = denialBody("dlp", reason)
        ctx.audit.write(auditEntry(ctx, req, started, { status: 403, bytesIn: scan.bytes, bytesOut: Buffer.byteLength(denial), decision: "dlp-block", rule: "dlp", reason }))
        audited = true
        if (!res.headersSent) {
          res.writeHead(403, { "content-type": "application/json", ...closeHeader(req) })
          res.end(denial)
        } else {
          res.destroy()
        }
        return new DlpBlocked(reason)
      }
      const guarded = new Transform({
        transform(chunk: Buffer, _encoding, callback) {
          const result = scan.push(chunk)
          if (Buffer.isBuffer(result)) return callback(null, result.length > 0 ? result : undefined)
          callback(block("body", result))
        },
        flush(callback) {
          // mockttp forwards HTTP/1 request trailers once this stream ends: scan them first
          // (names and values joined, so a token split across two trailers is found too).
          const trailers = (req as unknown as { rawTrailers?: RawHeaders }).rawTrailers
          if (trailers && trailers.length > 0) {
            let joined = ""
            for (const [k, v] of trailers) joined += k + v
            const found = scanDecoded(joined, needles, route.auth?.env)
            if (found) return callback(block("a request trailer", found))
          }
          const rest = scan.end()
          callback(null, rest.length > 0 ? rest : undefined)
        }
      })
      // The block is an error on this stream (mockttp aborts the upstream request on it), but
      // mockttp listens only once it has resolved the upstream host: until then, and after,
      // an error here must never be unhandled (it would take the daemon down).
      guarded.on("error", () => {})
      source.on("error", (e) => guarded.destroy(e))
      source.pipe(guarded)
      return guarded
    }

    const guard = guardResponse(res, {
      redactor: tokens.length > 0 ? new Redactor(tokens) : undefined,
      masks: this.gen.masks,
      refuseEncoded: route.auth !== undefined,
      h2: req.httpVersion.startsWith("2"),
      onRefused: (encoding) => {
        outcome = { decision: "error", rule: "encoded-response", reason: `upstream sent content-encoding ${encoding} on a credential route` }
        ctx.log(`egress: refused a ${encoding}-encoded response from ${req.destination.hostname}${pathOnly(req.path)} (credential route asks for identity)`)
      }
    })
    res.once("close", () => {
      if (audited) return
      // Refused when connecting (addresses.ts): the route allowed the request, its address not.
      if (outcome.decision === "allow" && (res as unknown as { tags?: ReadonlyArray<string> }).tags?.includes(ADDRESS_REFUSED_TAG)) {
        const reason = ctx.addressRefusals.get(req.destination.hostname) ?? `${req.destination.hostname} resolves to a refused address`
        outcome = { decision: "deny", rule: "upstream-address", reason }
      }
      const status = outcome.decision === "dlp-block" ? 403 : res.statusCode
      const decision: AuditDecision = outcome.decision === "allow" && !res.writableFinished ? "error" : outcome.decision
      ctx.audit.write(
        auditEntry(ctx, req, started, { status, bytesIn: scanner?.bytes ?? 0, bytesOut: guard.bytesOut, decision, rule: outcome.rule, reason: outcome.reason })
      )
    })
    return { continue: true }
  }
}

/** The fallback: answers 403 (503 when refused for load) with a body naming the refusing rule; never reads the body. */
class DenyStep extends LocalRulePart {
  static readonly isFinal = true
  static readonly fromDefinition = (d: DenyStep) => d
  readonly type = "bottle-deny"
  readonly gen: Generation
  readonly ctx: Context
  constructor(gen: Generation, ctx: Context) {
    super()
    this.gen = gen
    this.ctx = ctx
  }
  explain(): string {
    return "deny (default)"
  }
  async handle(req: OngoingRequest, res: OngoingResponse): Promise<void> {
    const started = performance.now()
    const { rule, reason, dlp, busy } = refusalOf(this.gen.decision(req))
    const body = denialBody(rule, reason)
    const status = busy ? 503 : 403
    // Audited first: a refusal is on disk before the agent sees it (audit.ts).
    this.ctx.audit.write(
      auditEntry(this.ctx, req, started, { status, bytesIn: 0, bytesOut: Buffer.byteLength(body), decision: dlp ? "dlp-block" : "deny", rule, reason })
    )
    // The body is not read: close the connection rather than drain an unwanted upload.
    res.writeHead(status, { "content-type": "application/json", "content-length": String(Buffer.byteLength(body)), ...closeHeader(req) })
    res.end(body)
    if (dlp) this.ctx.log(`egress: blocked ${req.method} ${req.destination.hostname}${pathOnly(req.path)}: ${reason}`)
  }
}

/** WebSocket upgrade on an allowed route: inject the credential, audit when it closes. */
/**
 * What answers the agent's WebSocket upgrade. The upstream's 101 passes (on a credential route
 * its headers redacted; the messages after it are redacted by RedactingWsPassThrough). Any
 * other answer passes as it is on a route without credentials; on a credential route it is
 * replaced by egress's own 502, since mockttp would pass a refused upgrade's status line,
 * headers and body through as raw bytes, where the injected token could be echoed unredacted.
 * An upgrade closed before any answer because its upstream address was refused (addresses.ts)
 * gets egress's 502 naming the address, as an HTTP request does.
 * Returns the upstream's status once known, and the address refusal, if that was the end.
 */
const guardUpgradeReply = (
  socket: net.Socket,
  masks: Masks | undefined,
  addressRefusal: () => string | undefined
): { status: () => number | undefined; addressRefused: () => string | undefined } => {
  type Write = (chunk: unknown, encoding?: unknown, cb?: unknown) => boolean
  type End = (chunk?: unknown, encoding?: unknown, cb?: unknown) => net.Socket
  const target = socket as unknown as { write: Write; end: End }
  const write = target.write
  const end = target.end
  let status: number | undefined
  let refused = false
  let addressReason: string | undefined
  const done = (callback: unknown) => {
    if (typeof callback === "function") process.nextTick(callback as WriteCb)
  }
  const answer = (code: string, rule: string, reason: string) => {
    const body = denialBody(rule, reason)
    end.call(socket, `HTTP/1.1 ${code}\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`)
  }
  target.write = function(this: net.Socket, chunk: unknown, encoding?: unknown, cb?: unknown): boolean {
    const callback = typeof encoding === "function" ? encoding : cb
    if (refused) {
      done(callback)
      return true
    }
    const buf = toBuffer(chunk, encoding)
    const line = /^HTTP\/1\.[01] (\d{3})/.exec(buf.subarray(0, 16).toString("latin1"))
    status = line ? Number(line[1]) : 0
    if (status === 101 || masks === undefined) {
      target.write = write
      target.end = end
      return write.call(this, masks ? redactBuffer(masks, buf) : buf, callback)
    }
    refused = true
    answer("502 Bad Gateway", "upgrade-refused", `the upstream answered the WebSocket upgrade with ${status || "no HTTP status"}; on a credential route its answer is not passed on (it could carry the token)`)
    done(callback)
    return true
  }
  target.end = function(this: net.Socket, chunk?: unknown, encoding?: unknown, cb?: unknown): net.Socket {
    const callback = typeof chunk === "function" ? chunk : typeof encoding === "function" ? encoding : cb
    if (chunk !== undefined && chunk !== null && typeof chunk !== "function") target.write.call(this, chunk, typeof encoding === "function" ? undefined : encoding)
    if (refused) {
      done(callback)
      return this
    }
    if (status === undefined) {
      const reason = addressRefusal()
      if (reason !== undefined) {
        refused = true
        addressReason = reason
        answer("502 Bad Gateway", "upstream-address", reason)
        done(callback)
        return this
      }
    }
    return end.call(this, callback)
  }
  return { status: () => status, addressRefused: () => addressReason }
}

/** WebSocket upgrade on an allowed route: inject the credential, audit when it closes. */
class WsGuardStep extends LocalRulePart {
  static readonly isFinal = false
  readonly type = "bottle-ws-guard"
  readonly gen: Generation
  readonly route: CompiledRoute
  readonly ctx: Context
  constructor(gen: Generation, route: CompiledRoute, ctx: Context) {
    super()
    this.gen = gen
    this.route = route
    this.ctx = ctx
  }
  explain(): string {
    return `guard ${this.route.name}`
  }
  async handle(req: OngoingRequest, socket: net.Socket): Promise<{ continue: true }> {
    const started = performance.now()
    const { ctx } = this
    const host = req.destination.hostname
    req.rawHeaders = forwardHeaders(req.rawHeaders as RawHeaders, this.route.auth)
    // A refusal of this host's address recorded after this upgrade started is this upgrade's.
    const addressRefusal = () => {
      const at = ctx.addressRefusedAt.get(host)
      return at !== undefined && at >= started ? (ctx.addressRefusals.get(host) ?? `${host} resolves to a refused address`) : undefined
    }
    const reply = guardUpgradeReply(socket, this.route.auth ? this.gen.masks : undefined, addressRefusal)
    const read0 = socket.bytesRead
    const written0 = socket.bytesWritten
    socket.once("close", () => {
      const status = reply.status()
      const address = reply.addressRefused()
      const outcome: { status: number; decision: AuditDecision; rule: string; reason?: string } =
        address !== undefined ? { status: 502, decision: "deny", rule: "upstream-address", reason: address }
        : status === 101 ? { status: 101, decision: "allow", rule: this.route.name }
        : status === undefined ? { status: 502, decision: "error", rule: this.route.name, reason: "closed before the upstream answered the upgrade" }
        : this.route.auth ? { status: 502, decision: "error", rule: "upgrade-refused", reason: `upstream answered the upgrade with ${status || "no HTTP status"}` }
        : { status, decision: "allow", rule: this.route.name, reason: `upstream answered the upgrade with ${status || "no HTTP status"}` }
      ctx.audit.write(
        auditEntry(ctx, req, started, {
          status: outcome.status,
          bytesIn: socket.bytesRead - read0,
          bytesOut: socket.bytesWritten - written0,
          decision: outcome.decision,
          rule: outcome.rule,
          ...(outcome.reason !== undefined ? { reason: outcome.reason } : {})
        })
      )
    })
    return { continue: true }
  }
}

class WsDenyStep extends LocalRulePart {
  static readonly isFinal = true
  readonly type = "bottle-ws-deny"
  readonly gen: Generation
  readonly ctx: Context
  constructor(gen: Generation, ctx: Context) {
    super()
    this.gen = gen
    this.ctx = ctx
  }
  explain(): string {
    return "deny websocket (default)"
  }
  async handle(req: OngoingRequest, socket: net.Socket): Promise<void> {
    const started = performance.now()
    const { rule, reason, dlp, busy } = refusalOf(this.gen.decision(req))
    const body = denialBody(rule, reason)
    this.ctx.audit.write(
      auditEntry(this.ctx, req, started, { status: busy ? 503 : 403, bytesIn: 0, bytesOut: Buffer.byteLength(body), decision: dlp ? "dlp-block" : "deny", rule, reason })
    )
    socket.end(
      `HTTP/1.1 ${busy ? "503 Service Unavailable" : "403 Forbidden"}\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`
    )
  }
}

interface WsLike {
  send: (data: unknown, options?: unknown, cb?: unknown) => void
}
interface WsServerLike {
  prependListener: (event: "connection", listener: (ws: WsLike) => void) => void
}
// mockttp declares these members private; the subclass below reaches them at runtime.
const WsPassThroughBase = PassThroughWebSocketStepImpl as unknown as new (options: object) => {
  wsServer?: WsServerLike
  initializeWsServer(): void
}

/**
 * mockttp's WebSocket passthrough (it relays whole messages between two `ws` sockets), with
 * held tokens redacted in messages going to the agent. Messages are whole (fragments are
 * reassembled, permessage-deflate undone), so a token inside one message is always found; a
 * token split across two messages is not.
 */
class RedactingWsPassThrough extends WsPassThroughBase {
  readonly type = "bottle-ws-passthrough"
  readonly masks: Masks
  constructor(options: object, masks: Masks) {
    super(options)
    this.masks = masks
  }
  override initializeWsServer(): void {
    const fresh = this.wsServer === undefined
    super.initializeWsServer()
    const masks = this.masks
    if (!fresh || masks.buffers.length === 0) return
    // Runs before mockttp's relay is set up: the relay calls the agent-side socket's send.
    this.wsServer!.prependListener("connection", (ws) => {
      const send = ws.send.bind(ws)
      ws.send = (data, options, cb) => send(Buffer.isBuffer(data) ? redactBuffer(masks, data) : data, options, cb)
    })
  }
}

// Register the step types with mockttp (idempotent: module state).
;(StepLookup as unknown as Record<string, unknown>)["bottle-guard"] = GuardStep
;(StepLookup as unknown as Record<string, unknown>)["bottle-deny"] = DenyStep
;(WsStepLookup as unknown as Record<string, unknown>)["bottle-ws-guard"] = WsGuardStep
;(WsStepLookup as unknown as Record<string, unknown>)["bottle-ws-deny"] = WsDenyStep
;(WsStepLookup as unknown as Record<string, unknown>)["bottle-ws-passthrough"] = RedactingWsPassThrough

// --- upstream addresses ------------------------------------------------------------------------

/** On a route's lookup options: whether its host may resolve to private addresses. */
const ADDRESS_POLICY = Symbol("bot-bottle.addressPolicy")
interface RouteLookupOptions {
  readonly servers?: Array<string>
  readonly maxTtl?: number
  readonly [ADDRESS_POLICY]: { readonly allowPrivate: boolean; readonly onRefused: (error: AddressRefused) => void }
}

/**
 * Every upstream connection mockttp makes (HTTP/1, HTTP/2, WebSocket) resolves its host through
 * `getDnsLookupFunction(rule's lookupOptions)`, looked up on the module at each call. Egress
 * gives each route its own lookup options and, here, answers them with mockttp's lookup (the
 * cached system resolver, or the configured DNS servers) wrapped so that a refused address
 * fails the resolution (addresses.ts): the connection is never made. Lookups of other options
 * (none in egress) are mockttp's own.
 */
const useAddressGuard = (() => {
  let installed = false
  return () => {
    if (installed) return
    const module = passthroughHandling as unknown as { getDnsLookupFunction?: (options: unknown) => LookupFunction }
    const general = module.getDnsLookupFunction
    if (typeof general !== "function") throw new Error("mockttp internals changed: no getDnsLookupFunction")
    const guarded = new WeakMap<object, LookupFunction>()
    module.getDnsLookupFunction = (options: unknown) => {
      if (typeof options !== "object" || options === null || !(ADDRESS_POLICY in options)) return general(options)
      let lookup = guarded.get(options)
      if (lookup === undefined) {
        const route = options as RouteLookupOptions
        const policy = route[ADDRESS_POLICY]
        lookup = guardLookup(general(route.servers ? route : undefined), policy.allowPrivate, policy.onRefused)
        guarded.set(options, lookup)
      }
      return lookup
    }
    installed = true
  }
})()

/** On a downstream connection: the rule generation its pooled upstream agents were made under. */
const POOL_GENERATION = Symbol("bot-bottle.poolGeneration")
interface PooledAgent {
  keepAlive?: boolean
  freeSockets?: Record<string, ReadonlyArray<{ destroy: () => void }>>
  sessions?: Record<string, ReadonlyArray<{ close: () => void }>>
}
interface PooledConnection {
  [UpstreamConnectionAgents]?: Map<string, PooledAgent>
  [POOL_GENERATION]?: object
}

/**
 * mockttp pools upstream connections per downstream connection (keep-alive agents keyed by
 * protocol only), and a pooled connection skips the address check its lookup made when it was
 * opened. After a live reload (say, one that removes `allow_private_ips`), a request must not
 * ride a connection opened under the old rules: the first request of a new generation on a
 * downstream connection retires its agents. Retired agents take no new requests (they leave
 * mockttp's map); their idle connections close now and busy ones once their exchange ends
 * (HTTP/1 agents stop keeping alive; HTTP/2 sessions close gracefully), so a stream in flight
 * across a reload is not cut.
 */
const retireStalePools = (req: OngoingRequest, gen: object): void => {
  let connection: PooledConnection
  try {
    connection = getConnection(req) as unknown as PooledConnection
  } catch {
    return
  }
  if (connection[POOL_GENERATION] === gen) return
  connection[POOL_GENERATION] = gen
  const agents = connection[UpstreamConnectionAgents]
  if (agents === undefined || agents.size === 0) return
  for (const agent of agents.values()) {
    try {
      if (agent.freeSockets) {
        agent.keepAlive = false
        for (const list of Object.values(agent.freeSockets)) for (const socket of [...list]) socket.destroy()
      }
      if (agent.sessions) for (const list of Object.values(agent.sessions)) for (const session of [...list]) session.close()
    } catch {
      // A broken agent: it leaves the map all the same.
    }
  }
  agents.clear()
}

// --- rules -----------------------------------------------------------------------------------

const buildRules = (gen: Generation, ctx: Context, dnsServers: ReadonlyArray<string> | undefined) => {
  const onRefused = (e: AddressRefused) => {
    ctx.log(e.message)
    if (ctx.addressRefusals.size >= 256) ctx.addressRefusals.clear()
    if (ctx.addressRefusedAt.size >= 256) ctx.addressRefusedAt.clear()
    ctx.addressRefusals.set(e.hostname, e.message)
    ctx.addressRefusedAt.set(e.hostname, performance.now())
  }
  // One set of connection options per route: its lookup options carry its address policy.
  const connectionFor = (route: CompiledRoute) => {
    const lookupOptions: RouteLookupOptions = {
      ...(dnsServers && dnsServers.length > 0 ? { servers: [...dnsServers], maxTtl: 60 } : {}),
      [ADDRESS_POLICY]: { allowPrivate: route.route.allow_private_ips === true, onRefused }
    }
    return {
      // Full verification upstream: never ignore certificate errors (trust = process default
      // CA store, which the daemon sets to system roots + configured extra CAs).
      ignoreHostHttpsErrors: false as const,
      lookupOptions
    }
  }
  const connections = gen.policy.routes.map(connectionFor)
  const request = gen.policy.routes.map((route) => ({
    id: `route-${route.index}`,
    matchers: [new RouteMatcher(gen, route.index)],
    steps: [new GuardStep(gen, route, ctx), new PassThroughStep(connections[route.index]!)]
  }))
  const websocket = gen.policy.routes.map((route) => ({
    id: `ws-route-${route.index}`,
    matchers: [new RouteMatcher(gen, route.index)],
    steps: [new WsGuardStep(gen, route, ctx), new RedactingWsPassThrough(connections[route.index]!, gen.masks)]
  }))
  const fallback = { id: "default-deny", priority: 0, matchers: [new WildcardMatcher()] }
  return {
    request: [...request, { ...fallback, steps: [new DenyStep(gen, ctx)] }],
    websocket: [...websocket, { ...fallback, id: "ws-default-deny", steps: [new WsDenyStep(gen, ctx)] }]
  }
}

// --- server ----------------------------------------------------------------------------------

interface PolyglotServer extends net.Server {
  readonly _httpServer?: net.Server & { headersTimeout: number; requestTimeout: number; connectionsCheckingInterval: number }
  readonly _http2Server?: net.Server & { updateSettings: (settings: { maxConcurrentStreams?: number }) => void }
}

/** HTTP/2 streams one agent connection may have open at once (what most servers allow). */
const MAX_STREAMS_PER_SESSION = 100

interface RuleLike {
  readonly matchers: ReadonlyArray<{ matches: (req: OngoingRequest) => unknown }>
}
type RuleSets = Record<number, ReadonlyArray<RuleLike>>

/**
 * mockttp's rule lookup is general (completion checks, asynchronous matchers, "the last
 * matching rule repeats"): per request it builds arrays and awaits every matcher. Egress rules
 * never complete and their matchers answer synchronously and exclusively (one decision per
 * request picks one route; the fallback matches all), so the rule mockttp would pick is the
 * first, highest priority first, whose matchers all match: found here without the promises.
 * A matcher answering anything but a boolean falls back to mockttp's own lookup.
 */
const useDirectRuleLookup = (server: MockttpServer): void => {
  const target = server as unknown as { findMatchingRule: (sets: RuleSets, req: OngoingRequest) => Promise<RuleLike | undefined> }
  const general = target.findMatchingRule
  if (typeof general !== "function") throw new Error("mockttp internals changed: no findMatchingRule")
  // Priorities, highest first, per rule-set object (mockttp replaces the object on every change).
  const order = new WeakMap<RuleSets, ReadonlyArray<number>>()
  target.findMatchingRule = function(this: unknown, sets: RuleSets, req: OngoingRequest) {
    let priorities = order.get(sets)
    if (priorities === undefined) {
      priorities = Object.keys(sets).map(Number).sort((a, b) => b - a)
      order.set(sets, priorities)
    }
    for (const priority of priorities) {
      for (const rule of sets[priority]!) {
        let all = true
        for (const m of rule.matchers) {
          const r = m.matches(req)
          if (r === false) {
            all = false
            break
          }
          if (r !== true) return general.call(this, sets, req)
        }
        if (all) return Promise.resolve(rule)
      }
    }
    return Promise.resolve(undefined)
  }
}

export const startProxy = async (options: ProxyOptions, initial: Policy): Promise<EgressProxy> => {
  const log = options.log ?? ((line: string) => process.stderr.write(line + "\n"))
  const ctx: Context = { bottle: options.bottle, audit: options.audit, log, addressRefusals: new Map(), addressRefusedAt: new Map() }
  const server = new MockttpServer({
    https: { cert: options.ca.certPem, key: options.ca.keyPem },
    // ALPN as the client offers it: h2 when the client speaks it, HTTP/1.1 otherwise.
    http2: true,
    recordTraffic: false,
    suggestChanges: false,
    cors: false,
    // 0: mockttp keeps no copy of bodies (it would otherwise buffer each one whole).
    maxBodySize: 0
  })
  const limits: EgressLimits = {
    ...DEFAULT_LIMITS,
    ...options.limits,
    ...(options.headersTimeoutMs !== undefined ? { headersTimeoutMs: options.headersTimeoutMs } : {}),
    ...(options.idleTimeoutMs !== undefined ? { idleTimeoutMs: options.idleTimeoutMs } : {})
  }
  const admission = new Admission(limits, ctx)
  const shed = () => admission.requestRefusal()
  let gen = new Generation(initial, shed)
  useDirectRuleLookup(server)
  useAddressGuard()

  const apply = async (g: Generation) => {
    const rules = buildRules(g, ctx, options.dnsServers)
    // Both sets are swapped synchronously: a request sees the old or the new policy, whole.
    await Promise.all([
      server.setRequestRules(...(rules.request as unknown as Array<mockttp.RequestRuleData>)),
      server.setWebSocketRules(...(rules.websocket as unknown as Array<mockttp.WebSocketRuleData>))
    ])
    gen = g
  }

  // mockttp can only listen on all interfaces; start it on an ephemeral port, then move the
  // same server to the requested address before any rule exists (until then it answers
  // nothing: mockttp has no rules, so the window admits no traffic to anywhere).
  await server.start(0)
  const inner = (server as unknown as { server?: PolyglotServer }).server
  if (!inner) {
    await server.stop()
    throw new Error("mockttp internals changed: no underlying server")
  }
  await new Promise<void>((resolve) => inner.close(() => resolve()))
  const held = options.listener
  if (!held) {
    await new Promise<void>((resolve, reject) => {
      inner.once("error", reject)
      inner.listen({ host: options.listen.host, port: options.listen.port }, () => {
        inner.off("error", reject)
        resolve()
      })
    })
  }
  // Slow clients: Node's HTTP server enforces headersTimeout from a periodic check that it
  // starts on 'listening'. mockttp's HTTP/1 server is a sub-server that never listens itself
  // (httpolyglot feeds it sockets), so the check never starts: start it here.
  const http1 = inner._httpServer
  if (!http1) throw new Error("mockttp internals changed: no HTTP/1 sub-server")
  const headersTimeout = limits.headersTimeoutMs
  http1.headersTimeout = headersTimeout
  http1.requestTimeout = 0
  http1.connectionsCheckingInterval = Math.max(250, Math.min(5_000, Math.floor(headersTimeout / 2)))
  http1.emit("listening")

  // Half-closed, stalled or garbage connections (e.g. a TLS hello that never completes inside
  // a tunnel) must not hold a socket forever.
  const idleMs = limits.idleTimeoutMs
  const http2 = inner._http2Server
  if (!http2) throw new Error("mockttp internals changed: no HTTP/2 sub-server")
  // Sockets an HTTP/2 session drives, and the ones beneath them (the TLS socket, the tunnel's
  // TCP socket). The session reads and writes its socket's handle natively: its traffic never
  // passes through these JS sockets, so their idle timers would fire mid-stream and cut a busy
  // session (a streamed response cleanly ended, its tail lost). Their timers are disarmed, and
  // the session's own timer, refreshed by every read and write of its streams, decides instead.
  const underSession = new WeakSet<net.Socket>()
  let arriving: Array<net.Socket> = []
  // Prepended: runs before Node creates the session and before the listener below (which
  // httpolyglot also feeds this sub-server's connections to).
  http2.prependListener("connection", (socket: unknown) => {
    arriving = []
    for (let s: unknown = socket; s instanceof net.Socket; s = getParentSocket(s)) {
      underSession.add(s)
      s.setTimeout(0)
      arriving.push(s)
    }
  })
  // Emitted synchronously by Node's connection listener, right after the one above.
  http2.on("session", (session: { setTimeout: (ms: number, cb: () => void) => void; destroy: () => void }) => {
    const chain = arriving
    arriving = []
    session.setTimeout(idleMs, () => {
      session.destroy()
      for (const s of chain) s.destroy() // innermost first
    })
  })
  // A timer cuts a connection whole, innermost socket first: the TLS socket inside a tunnel owns
  // the tunnel's handle, so destroying only the tunnel's socket leaves both never 'close'd
  // (held open in every server's connection list until shutdown, which then trips on them).
  const layered = new WeakMap<net.Socket, Array<net.Socket>>()
  const armed = new WeakSet<net.Socket>()
  const cut = (socket: net.Socket): void => {
    for (const s of layered.get(socket) ?? []) cut(s)
    socket.destroy()
  }
  // httpolyglot feeds this listener every socket of a connection: the TCP one, then (from its
  // sub-servers) the TLS one inside it.
  inner.prependListener("connection", (socket: net.Socket) => {
    if (!(socket instanceof net.Socket)) return
    const parent = getParentSocket(socket)
    if (parent instanceof net.Socket) {
      const on = layered.get(parent) ?? []
      if (!on.includes(socket)) layered.set(parent, [...on, socket])
    }
    if (underSession.has(socket) || armed.has(socket)) return
    armed.add(socket)
    socket.setTimeout(idleMs, () => cut(socket))
  })

  // What the agent may hold (admission.ts): connections past the cap get a 503 before anything
  // reads them; a connection must reach an HTTP parser within the headers timeout; requests in
  // flight are counted (past the cap, or with the heap high, the decision is a 503).
  gateConnections(inner, admission, { parsers: [http1, http2], setupMs: headersTimeout, parentOf: (s) => getParentSocket(s as net.Socket) as object | undefined })
  // Node's HTTP/2 server allows 2^32-1 concurrent streams per session by default.
  http2.updateSettings({ maxConcurrentStreams: MAX_STREAMS_PER_SESSION })
  for (const sub of [http1, http2]) {
    for (const event of ["request", "checkContinue", "checkExpectation"]) {
      sub.prependListener(event, (_req: unknown, res: OngoingResponse) => admission.trackRequest(res))
    }
  }

  // Refuse CONNECT to targets no route admits, before any TLS.
  const [mockttpConnect] = inner.listeners("connect") as Array<(req: unknown, socket: unknown, head: unknown) => void>
  if (!mockttpConnect) throw new Error("mockttp internals changed: no CONNECT listener")
  inner.removeListener("connect", mockttpConnect)
  inner.on("connect", (req: { url?: string; method?: string }, socket: unknown, head: unknown) => {
    if (socket instanceof net.Socket) {
      const started = performance.now()
      const target = req.url ?? ""
      const refusal = gen.connectVerdict(target)
      if (refusal) {
        const body = denialBody(refusal.rule, refusal.reason)
        socket.on("error", () => {})
        socket.end(`HTTP/1.1 403 Forbidden\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`)
        const { host } = hostOfTarget(target)
        ctx.audit.write({
          time: new Date().toISOString(),
          bottle: ctx.bottle,
          method: "CONNECT",
          host,
          path: target,
          status: 403,
          bytes_in: 0,
          bytes_out: Buffer.byteLength(body),
          duration_ms: Math.round((performance.now() - started) * 100) / 100,
          decision: "deny",
          rule: refusal.rule,
          reason: refusal.reason
        })
        return
      }
    }
    mockttpConnect.call(inner, req, socket, head)
  })

  await apply(gen)
  // A port bound earlier (the daemon said ready then) moves to mockttp's server only now, with
  // every guard and rule in place: the connections it held are served from here on, whole.
  if (held) await held.transferTo(inner)
  const address = inner.address() as net.AddressInfo
  // mockttp asks its server for its address on every request (a getsockname system call and a
  // fresh object each time, ~2% of the proxy's core under load); it cannot change while we
  // listen, so it is answered from memory.
  inner.address = () => address
  return {
    host: options.listen.host,
    port: address.port,
    setPolicy: (policy) => apply(new Generation(policy, shed)),
    stop: () => {
      admission.close()
      return server.stop()
    }
  }
}
