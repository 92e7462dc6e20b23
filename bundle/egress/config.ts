/**
 * How the egress daemon is told where to listen and which extra CAs to trust, shared by its
 * two entry points: `bottle daemon egress` (flags, on the host) and dist/egress-daemon.mjs
 * (the environment, in the bundle).
 */
import * as fs from "node:fs"
import { Effect } from "effect"
import { EgressError } from "./errors.ts"

/** `HOST:PORT`, `[v6]:PORT` or `:PORT` (all interfaces). */
export const parseListen = (text: string): Effect.Effect<{ host: string; port: number }, EgressError> => {
  const m = /^(?:\[([^\]]+)\]|([^:]*)):(\d{1,5})$/.exec(text.trim())
  const port = m ? Number(m[3]) : NaN
  if (!m || port > 65535) {
    return Effect.fail(new EgressError({ reason: { _tag: "BadArgument", message: `--listen expects HOST:PORT (e.g. 127.0.0.1:8080), got ${JSON.stringify(text)}` } }))
  }
  return Effect.succeed({ host: m[1] ?? (m[2] || "0.0.0.0"), port })
}

/** `$BOTTLE_EGRESS_EXTRA_CA`: a path, or paths joined by `:`. */
export const extraCaFromEnv = (env: Record<string, string | undefined>): ReadonlyArray<string> =>
  (env["BOTTLE_EGRESS_EXTRA_CA"] ?? "").split(":").filter((p) => p.length > 0)

/**
 * Readiness, as the bundle's init asks for it: with `$BOTTLE_READY_FD` set, write `ready` to
 * that descriptor (a pipe the init holds) once the daemon's configuration is checked and its
 * port bound (connections are accepted, and served as soon as the proxy engine is up), then
 * close it. The init needs no polling, and learns it the moment it is true.
 */
export const notifyReady = (env: Record<string, string | undefined>): Effect.Effect<void> =>
  Effect.sync(() => {
    const fd = Number(env["BOTTLE_READY_FD"] ?? NaN)
    if (!Number.isInteger(fd) || fd < 3) return
    try {
      fs.writeSync(fd, "ready\n")
      fs.closeSync(fd)
    } catch {
      // No init listening (the descriptor is not ours): nothing to tell.
    }
  })

/** What one bottle's agent may hold of the daemon (see admission.ts and proxy.ts). */
export interface EgressLimits {
  /** Agent TCP connections served at once; past it, new ones get a 503 and are closed. */
  readonly maxConnections: number
  /** Requests in flight at once; past it, new ones get a 503. */
  readonly maxRequests: number
  /**
   * How long a client may take to send a request's headers (HTTP/1, the CONNECT line
   * included), and, from a connection's start or its CONNECT, to reach an HTTP parser at all
   * (protocol sniffing, TLS client hello and handshake).
   */
  readonly headersTimeoutMs: number
  /** A connection with no traffic either way for this long is closed. */
  readonly idleTimeoutMs: number
}

export const DEFAULT_LIMITS: EgressLimits = {
  maxConnections: 512,
  maxRequests: 1024,
  headersTimeoutMs: 15_000,
  idleTimeoutMs: 5 * 60_000
}

const LIMIT_ENV: ReadonlyArray<readonly [keyof EgressLimits, string, number]> = [
  ["maxConnections", "BOTTLE_EGRESS_MAX_CONNECTIONS", 1],
  ["maxRequests", "BOTTLE_EGRESS_MAX_REQUESTS", 1],
  ["headersTimeoutMs", "BOTTLE_EGRESS_HEADERS_TIMEOUT_MS", 100],
  ["idleTimeoutMs", "BOTTLE_EGRESS_IDLE_TIMEOUT_MS", 100]
]

/**
 * The limits, from `$BOTTLE_EGRESS_MAX_CONNECTIONS`, `$BOTTLE_EGRESS_MAX_REQUESTS`,
 * `$BOTTLE_EGRESS_HEADERS_TIMEOUT_MS` and `$BOTTLE_EGRESS_IDLE_TIMEOUT_MS` (each a whole
 * number; unset or empty: the default).
 */
export const limitsFromEnv = (env: Record<string, string | undefined>): Effect.Effect<EgressLimits, EgressError> => {
  const out: Record<string, number> = { ...DEFAULT_LIMITS }
  for (const [key, name, min] of LIMIT_ENV) {
    const text = (env[name] ?? "").trim()
    if (text === "") continue
    const n = /^\d{1,9}$/.test(text) ? Number(text) : NaN
    if (!(n >= min)) {
      return Effect.fail(new EgressError({ reason: { _tag: "BadArgument", message: `$${name} must be a whole number ≥ ${min}, got ${JSON.stringify(text)}` } }))
    }
    out[key] = n
  }
  return Effect.succeed(out as unknown as EgressLimits)
}
