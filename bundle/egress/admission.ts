/**
 * What egress lets the agent hold: TCP connections, requests in flight, and heap. Past a
 * bound egress refuses new work with a clear 503 and keeps serving what it already took.
 *
 * Guarantees:
 * - at most `maxConnections` agent TCP connections are served at once (a CONNECT tunnel, and
 *   the TLS and HTTP/2 inside it, ride on the connection that opened it: one each). A
 *   connection past the cap is answered `503` (JSON body naming the limit) and closed, unread;
 *   the connections already open keep working. Past the cap plus a small slack for those
 *   refusals still closing, the kernel-accepted socket is closed at once without a reply;
 * - at most `maxRequests` requests are in flight at once (HTTP/1 and HTTP/2 alike); past it a
 *   new request is answered 503 (audited per request, like any denial, by the step that
 *   answers it);
 * - a connection must reach an HTTP parser within the headers timeout of its start and of
 *   each CONNECT on it (`gateConnections`), so nothing before the parsers' own timers (protocol
 *   sniffing, a trickled TLS hello, the handshake) can hold it open;
 * - when the heap still holds more than SHED_HEAP_FRACTION of the daemon's heap limit after
 *   SHED_AFTER_COLLECTIONS full collections in a row, new connections and requests are refused the same way until a
 *   collection brings it back under: the daemon sheds load instead of running out of heap;
 * - a request the HTTP/1 parser rejects (malformed framing, oversized headers: the engine
 *   answers 400 or 431) and a connection closed by a timeout before its request was complete
 *   (408) are refusals too;
 * - refusals are audited, rate-limited: the first refusal of a kind is written at once, the
 *   others of the next second are counted into one line (`count`), so a flood cannot flood
 *   the disk; the counts add up to every refusal.
 */
import * as net from "node:net"
import * as tls from "node:tls"
import { constants as perf, PerformanceObserver } from "node:perf_hooks"
import * as v8 from "node:v8"
import type { AuditLog } from "./audit.ts"

/** The share of the heap limit that, still live after full collections, turns shedding on. */
export const SHED_HEAP_FRACTION = 0.75
/** How many full collections in a row must leave the heap above the mark before shedding. */
export const SHED_AFTER_COLLECTIONS = 2
/**
 * After a full collection that left the heap `above` the mark or not: shedding starts on the
 * SHED_AFTER_COLLECTIONS-th collection in a row above it, and ends on the first below it.
 */
export const heapVerdict = (was: { readonly high: boolean; readonly streak: number }, above: boolean): { readonly high: boolean; readonly streak: number } => {
  const streak = above ? was.streak + 1 : 0
  return { high: was.high ? above : streak >= SHED_AFTER_COLLECTIONS, streak }
}

/** Refused connections that may be closing at once, beyond the cap, before new ones are dropped unanswered. */
const REFUSAL_SLACK = 256
/** How long a refused connection may take to read its 503 before it is cut. */
const REFUSAL_LINGER_MS = 2000
const AUDIT_EVERY_MS = 1000

export interface AdmissionLimits {
  readonly maxConnections: number
  readonly maxRequests: number
}

export type RefusalKind = "connection-limit" | "request-limit" | "overloaded" | "bad-request" | "slow-client"

const refusalBody = (rule: RefusalKind, reason: string): string =>
  JSON.stringify({ error: "egress busy", rule, reason, hint: "bot-bottle egress limits what one bottle can hold open; retry once other connections or requests finish" }) + "\n"

export class Admission {
  readonly limits: AdmissionLimits
  private readonly audit: AuditLog
  private readonly bottle: string
  private readonly log: (line: string) => void
  connections = 0
  requests = 0
  private heapHigh = false
  private aboveStreak = 0
  private readonly pending = new Map<string, { kind: RefusalKind; status: number; count: number; reason: string; timer: NodeJS.Timeout }>()
  private readonly gc: PerformanceObserver

  constructor(limits: AdmissionLimits, ctx: { audit: AuditLog; bottle: string; log: (line: string) => void }) {
    this.limits = limits
    this.audit = ctx.audit
    this.bottle = ctx.bottle
    this.log = ctx.log
    // After each full collection: is what survived it above the shedding mark?
    const limit = v8.getHeapStatistics().heap_size_limit
    this.gc = new PerformanceObserver((list) => {
      const entries = list.getEntries() as Array<{ detail?: { kind?: number } }>
      if (!entries.some((e) => e.detail?.kind === perf.NODE_PERFORMANCE_GC_MAJOR)) return
      // One reading above the mark can be a busy moment (the observer runs after the collection,
      // and ordinary load promotes short-lived objects with the small young generation): shedding
      // needs two full collections in a row above it, and one below ends it.
      const above = v8.getHeapStatistics().used_heap_size > limit * SHED_HEAP_FRACTION
      const { high, streak } = heapVerdict({ high: this.heapHigh, streak: this.aboveStreak }, above)
      this.aboveStreak = streak
      if (high !== this.heapHigh) this.log(high ? `egress: heap above ${SHED_HEAP_FRACTION * 100}% of its limit after full collections: refusing new work` : "egress: heap back under its mark: accepting new work")
      this.heapHigh = high
    })
    this.gc.observe({ entryTypes: ["gc"] })
  }

  /**
   * Admits or refuses an agent connection, once, when it is accepted. Counted until it closes.
   */
  admitConnection(socket: net.Socket): boolean {
    const kind: RefusalKind | undefined = this.heapHigh ? "overloaded" : this.connections >= this.limits.maxConnections ? "connection-limit" : undefined
    if (kind === undefined) {
      this.connections++
      socket.once("close", () => this.connections--)
      return true
    }
    const reason = kind === "overloaded"
      ? "egress is short of memory; new connections are refused until it recovers"
      : `${this.connections} connections open (limit ${this.limits.maxConnections}); new connections are refused until some close`
    const body = refusalBody(kind, reason)
    socket.on("error", () => {})
    // Read (and drop) what the client sends, so closing does not reset the connection before
    // it has read the answer; cut it if it lingers.
    socket.resume()
    socket.end(`HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`)
    setTimeout(() => socket.destroy(), REFUSAL_LINGER_MS).unref()
    this.refuse(kind, 503, reason)
    return false
  }

  /**
   * A connection the HTTP/1 parser rejected (malformed framing, oversized headers: answered
   * 400 or 431 by the engine) or that its headers timeout closed (408).
   */
  clientError(code: string | undefined): void {
    if (code === "ECONNRESET" || code === "EPIPE") return
    if (code === "ERR_HTTP_REQUEST_TIMEOUT") return this.refuse("slow-client", 408, "request headers not complete within the headers timeout")
    if (code === "HPE_HEADER_OVERFLOW") return this.refuse("bad-request", 431, "request headers too large")
    this.refuse("bad-request", 400, `malformed HTTP/1 request (${code ?? "unknown error"})`)
  }

  /** A connection closed because it did not reach an HTTP parser in time (gateConnections). */
  setupTimedOut(tunnel: boolean): void {
    this.refuse("slow-client", 408, tunnel ? "tunnel not set up (TLS hello and handshake) within the headers timeout" : "no request within the headers timeout")
  }

  /** A connection the kernel handed over past cap + slack, closed unanswered by Node. */
  dropped(): void {
    this.refuse("connection-limit", 503, `more than ${this.limits.maxConnections + REFUSAL_SLACK} connections at once; closed unanswered`)
  }

  /** The hard ceiling for the listening server (`net.Server.maxConnections`). */
  get socketCeiling(): number {
    return this.limits.maxConnections + REFUSAL_SLACK
  }

  /** Counts a request in flight until its response closes. */
  trackRequest(res: { once: (event: "close", f: () => void) => unknown }): void {
    this.requests++
    res.once("close", () => this.requests--)
  }

  /** Whether a new request (already counted) is to be refused, and why. */
  requestRefusal(): { rule: RefusalKind; reason: string } | undefined {
    if (this.heapHigh) return { rule: "overloaded", reason: "egress is short of memory; new requests are refused until it recovers" }
    if (this.requests > this.limits.maxRequests) return { rule: "request-limit", reason: `${this.requests - 1} requests in flight (limit ${this.limits.maxRequests})` }
    return undefined
  }

  private refuse(kind: RefusalKind, status: number, reason: string): void {
    const key = `${kind}/${status}`
    const open = this.pending.get(key)
    if (open) {
      open.count++
      open.reason = reason
      return
    }
    this.log(`egress: refused a connection (${kind}): ${reason}`)
    this.write(kind, status, reason, 1)
    // The next second's refusals of this kind go into one line.
    const timer = setTimeout(() => {
      const p = this.pending.get(key)
      this.pending.delete(key)
      if (p && p.count > 0) this.write(kind, status, p.reason, p.count)
    }, AUDIT_EVERY_MS)
    timer.unref()
    this.pending.set(key, { kind, status, count: 0, reason, timer })
  }

  private write(kind: RefusalKind, status: number, reason: string, count: number): void {
    this.audit.write({
      time: new Date().toISOString(),
      bottle: this.bottle,
      method: "-",
      host: "-",
      path: "-",
      status,
      bytes_in: 0,
      bytes_out: 0,
      duration_ms: 0,
      decision: "deny",
      rule: kind,
      reason,
      count
    })
  }

  /** Writes the counted refusals now and stops watching the heap. */
  close(): void {
    for (const p of this.pending.values()) {
      clearTimeout(p.timer)
      if (p.count > 0) this.write(p.kind, p.status, p.reason, p.count)
    }
    this.pending.clear()
    this.gc.disconnect()
  }
}

export interface GateOptions {
  /** The HTTP/1 and HTTP/2 parsers (in that order): a connection (or a TLS socket over it) that reaches one is set up. */
  readonly parsers: ReadonlyArray<net.Server | { prependListener: (event: "connection", f: (socket: object) => void) => unknown }>
  /** How long a connection may take, from its start or from its CONNECT, to reach a parser. */
  readonly setupMs: number
  /** The socket a TLS socket (or stream wrapper) runs over. */
  readonly parentOf: (socket: object) => object | undefined
}

/**
 * Puts `admission` in front of a server's connections: every TCP connection it accepts (or is
 * handed, e.g. from a held listener) is admitted or refused once, before anything reads it.
 * The same socket re-emitted after CONNECT, and HTTP/2 streams inside a tunnel, pass.
 *
 * Also a setup deadline: from a connection's start, and again from the start of a tunnel on
 * it (CONNECT), it must reach an HTTP parser (whose own header timeout takes over) within
 * `setupMs`, or it is closed. That covers what no parser times: protocol sniffing, a TLS
 * client hello sent a byte at a time (read before the TLS server's handshake timer starts),
 * the handshake itself.
 */
export const gateConnections = (server: net.Server, admission: Admission, options: GateOptions): void => {
  const seen = new WeakSet<object>()
  const deadlines = new WeakMap<object, NodeJS.Timeout>()
  const arm = (socket: { destroy: () => unknown; once: (event: "close", f: () => void) => unknown }, tunnel: boolean) => {
    const previous = deadlines.get(socket)
    if (previous !== undefined) clearTimeout(previous)
    const timer = setTimeout(() => {
      admission.setupTimedOut(tunnel)
      socket.destroy()
    }, options.setupMs)
    timer.unref()
    deadlines.set(socket, timer)
    socket.once("close", () => clearTimeout(timer))
  }
  const reached = (socket: object) => {
    let s: object | undefined = socket
    for (let depth = 0; s !== undefined && depth < 4; depth++) {
      const timer = deadlines.get(s)
      if (timer !== undefined) {
        clearTimeout(timer)
        deadlines.delete(s)
      }
      s = options.parentOf(s)
    }
  }
  // Straight on the parsers (not through `server`: httpolyglot copies listeners added to it
  // onto every sub-server).
  for (const parser of options.parsers) (parser as net.Server).prependListener("connection", reached)

  const target = server as unknown as { emit: (event: string | symbol, ...args: Array<unknown>) => boolean }
  const emit = target.emit
  target.emit = function(this: net.Server, event: string | symbol, ...args: Array<unknown>): boolean {
    if (event === "connection") {
      const socket = args[0] as net.Socket
      if (socket instanceof net.Socket && !(socket instanceof tls.TLSSocket) && !seen.has(socket)) {
        seen.add(socket)
        if (!admission.admitConnection(socket)) return false
        arm(socket, false)
      } else if (socket !== null && typeof socket === "object" && typeof socket.destroy === "function") {
        // A tunnel starts on this socket (HTTP/1 CONNECT) or stream (HTTP/2 CONNECT).
        arm(socket, true)
      }
    }
    return emit.call(this, event, ...args)
  }
  server.maxConnections = admission.socketCeiling
  server.on("drop", () => admission.dropped())
  // Requests the HTTP/1 parser rejects, once per connection (it may report several).
  const failed = new WeakSet<object>()
  ;(options.parsers[0] as net.Server).on("clientError", (error: NodeJS.ErrnoException, socket: object) => {
    if (failed.has(socket)) return
    failed.add(socket)
    admission.clientError(error.code)
  })
}
