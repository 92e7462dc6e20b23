/**
 * The egress daemon as a scoped program: CA, trust store, routes, audit log, proxy, and a
 * watcher that reloads routes when the routes file is replaced. Everything acquired is
 * released when the scope closes (interruption, SIGINT/SIGTERM through runMain).
 *
 * Guarantees:
 * - it refuses to start with a route whose token is missing from its environment;
 * - a routes file that fails validation on reload is reported and the previous routes stay
 *   in force (the file on disk never half-applies);
 * - what the agent can hold is bounded (connections, requests in flight, slow clients, heap:
 *   see admission.ts); a malformed limit in the environment fails the start;
 * - upstream TLS trusts exactly the system roots, Node's bundled roots and the configured
 *   extra CAs (set as the process default store once, so connections reuse it cheaply, and
 *   before the proxy serves anything).
 */
import * as crypto from "node:crypto"
import * as fs from "node:fs"
import * as fsp from "node:fs/promises"
import * as path from "node:path"
import * as tls from "node:tls"
import { Config, ConfigProvider, Effect, Option, Redacted, Schedule } from "effect"
import { ensureBottleCa } from "../../src/schema/BottleCa.ts"
import type { Route } from "../../src/schema/Route.ts"
import { loadRoutes } from "../../src/schema/RoutesFile.ts"
import { type Asker, makeAsker, withGrants } from "./ask.ts"
import { AuditLog } from "./audit.ts"
import { type EgressLimits, limitsFromEnv } from "./config.ts"
import { EgressError, errorMessage } from "./errors.ts"
import { compilePolicy, type Policy } from "./policy.ts"
import { holdListener } from "./listener.ts"

export interface EgressOptions {
  readonly routesFile: string
  readonly stateDir: string
  readonly listen: { readonly host: string; readonly port: number }
  readonly bottle?: string | undefined
  readonly extraCaFiles?: ReadonlyArray<string> | undefined
  /** Where tokens come from (default: the process environment). */
  readonly env?: Record<string, string | undefined> | undefined
  /**
   * Upstream DNS servers ("127.0.0.1:5353"); default: `$BOTTLE_EGRESS_DNS` (servers joined by
   * `,`), else the system resolver.
   */
  readonly dnsServers?: ReadonlyArray<string> | undefined
  readonly headersTimeoutMs?: number | undefined
  readonly idleTimeoutMs?: number | undefined
  /**
   * Connection and request caps and timeouts; default: `$BOTTLE_EGRESS_MAX_CONNECTIONS` and
   * the others read by `limitsFromEnv` (the two timeouts above win).
   */
  readonly limits?: Partial<EgressLimits> | undefined
  /** How often the routes file is re-checked when no watch event arrives. */
  readonly pollMs?: number | undefined
  readonly auditMaxBytes?: number | undefined
  /**
   * Runs once the configuration (CA, routes, tokens, extra CAs) is checked and the port is
   * bound, before the proxy engine loads: connections wait, unread, until it serves them.
   */
  readonly onBound?: ((port: number) => Effect.Effect<void>) | undefined
}

export interface RunningEgress {
  readonly host: string
  readonly port: number
  readonly caCertPath: string
  /** Re-reads the routes file now (the watcher does this on its own). */
  readonly reload: Effect.Effect<void, EgressError>
}

/** Reads the tokens named by auth routes, as Redacted values, via Config. */
const readTokens = (routes: ReadonlyArray<Route>, env: Record<string, string | undefined> | undefined) =>
  Effect.gen(function*() {
    const provider = env ? ConfigProvider.fromEnvRecord(env) : ConfigProvider.fromEnv()
    const tokens = new Map<string, Redacted.Redacted<string>>()
    for (const r of routes) {
      const name = r.auth?.token_env
      if (name === undefined || tokens.has(name)) continue
      const value = yield* Effect.option(Config.Redacted(name).parse(provider))
      if (Option.isSome(value) && Redacted.value(value.value).length > 0) tokens.set(name, value.value)
    }
    return tokens
  })

const policyFrom = Effect.fn("egress.policyFrom")(function*(file: string, env: Record<string, string | undefined> | undefined, asker?: Asker): Effect.fn.Return<Policy, EgressError> {
  const routes = yield* loadRoutes(file).pipe(Effect.mapError((e) => new EgressError({ reason: e.reason })))
  const tokens = yield* readTokens(routes.routes, env)
  // on_unrouted: ask: the routes approvals granted (bare, no auth) come after the file's.
  const ask = routes.on_unrouted === "ask" && asker !== undefined ? withGrants(routes.routes, asker) : undefined
  const { policy, missing } = compilePolicy(ask?.routes ?? routes.routes, { get: (name) => tokens.get(name) })
  const first = missing[0]
  if (first) return yield* new EgressError({ reason: { _tag: "MissingToken", env: first.env, host: first.host } })
  return ask ? { ...policy, ask: ask.hooks } : policy
})

/** Reads and checks the extra CA files (each PEM certificate must parse): a bad one fails the start. */
const readExtraCas = (files: ReadonlyArray<string>) =>
  Effect.tryPromise({
    try: async () => {
      const texts = await Promise.all(files.map((f) => fsp.readFile(f, "utf8")))
      const pems = texts.flatMap((pem) => pem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [])
      for (const pem of pems) new crypto.X509Certificate(pem)
      return pems
    },
    catch: (cause) => new EgressError({ reason: { _tag: "CaFailed", path: files.join(", "), message: `cannot load extra CA: ${errorMessage(cause)}` } })
  })

/** Sets the process trust store to system + bundled roots + extra CAs; restores on release. */
const trustStore = (extras: ReadonlyArray<string>) =>
  Effect.acquireRelease(
    Effect.sync(() => {
      const previous = tls.getCACertificates("default")
      tls.setDefaultCACertificates([...new Set([...tls.getCACertificates("bundled"), ...tls.getCACertificates("system"), ...extras])])
      return previous
    }),
    (previous) => Effect.sync(() => tls.setDefaultCACertificates(previous))
  )

const dnsFromEnv = (env: Record<string, string | undefined>): ReadonlyArray<string> | undefined => {
  const servers = (env["BOTTLE_EGRESS_DNS"] ?? "").split(",").map((s) => s.trim()).filter((s) => s.length > 0)
  return servers.length > 0 ? servers : undefined
}

const fileStamp = (file: string): string => {
  try {
    const st = fs.statSync(file)
    return `${st.ino}:${st.size}:${st.mtimeMs}`
  } catch {
    return "missing"
  }
}

/**
 * Starts the egress proxy; it runs until the enclosing scope closes. Port 0 binds an
 * ephemeral port, reported in the result.
 */
export const runEgress = Effect.fn("runEgress")(function*(options: EgressOptions) {
  const bottle = options.bottle ?? path.basename(path.dirname(path.resolve(options.stateDir)))
  const ca = yield* ensureBottleCa(options.stateDir).pipe(
    Effect.mapError((e) => new EgressError({ reason: { _tag: "CaFailed", path: e.path, message: e.detail } }))
  )
  const keyPem = yield* Effect.tryPromise({
    try: () => fsp.readFile(ca.keyPath, "utf8"),
    catch: (cause) => new EgressError({ reason: { _tag: "CaFailed", path: ca.keyPath, message: errorMessage(cause) } })
  })
  const envLimits = yield* limitsFromEnv(options.env ?? process.env)
  // on_unrouted: ask keeps its approval requests in the daemon's own dir; a used once grant wakes the reload.
  let onAskChange: () => void = () => {}
  const askExpiry = Number((options.env ?? process.env)["BOTTLE_EGRESS_ASK_EXPIRY_SECONDS"] ?? NaN)
  const asker = makeAsker(options.stateDir, { ...(Number.isInteger(askExpiry) && askExpiry > 0 ? { expirySeconds: askExpiry } : {}), onUse: () => onAskChange() })
  const initial = yield* policyFrom(options.routesFile, options.env, asker)
  const extraCas = yield* readExtraCas(options.extraCaFiles ?? [])

  // Bound now, before the proxy engine (mockttp) is even loaded: see listener.ts.
  const listener = yield* Effect.acquireRelease(
    Effect.tryPromise({
      try: () => holdListener(options.listen),
      catch: (cause) => new EgressError({ reason: { _tag: "ListenFailed", host: options.listen.host, port: options.listen.port, message: errorMessage(cause) } })
    }),
    (l) => Effect.sync(() => l.server.close())
  )
  if (options.onBound) yield* options.onBound(listener.port)
  const { startProxy } = yield* Effect.promise(() => import("./proxy.ts"))
  // Set once the port is bound (readiness does not wait for the ~40 ms the system roots take),
  // and before the engine takes the port over: no request goes upstream without it.
  yield* trustStore(extraCas)

  const audit = yield* Effect.acquireRelease(
    Effect.sync(() => new AuditLog(options.stateDir, options.auditMaxBytes !== undefined ? { maxBytes: options.auditMaxBytes } : {})),
    (log) => Effect.promise(() => log.close())
  )
  const proxy = yield* Effect.acquireRelease(
    Effect.tryPromise({
      try: () =>
        startProxy(
          {
            ca: { certPem: ca.certPem, keyPem },
            listen: options.listen,
            bottle,
            audit,
            dnsServers: options.dnsServers ?? dnsFromEnv(options.env ?? process.env),
            headersTimeoutMs: options.headersTimeoutMs,
            idleTimeoutMs: options.idleTimeoutMs,
            limits: { ...envLimits, ...options.limits },
            listener
          },
          initial
        ),
      catch: (cause) => new EgressError({ reason: { _tag: "ListenFailed", host: options.listen.host, port: options.listen.port, message: errorMessage(cause) } })
    }),
    (p) => Effect.promise(() => p.stop().catch(() => undefined))
  )

  // Live reload: a replaced file (atomic rename in the mounted directory) changes its inode,
  // so we compare a stamp rather than trusting watch events alone (bind mounts may not deliver
  // them); a watch event only makes the next check immediate.
  const stampNow = () => `${fileStamp(options.routesFile)}|${asker.stamp()}`
  let stamp = stampNow()
  const reload = Effect.gen(function*() {
    const policy = yield* policyFrom(options.routesFile, options.env, asker)
    yield* Effect.promise(() => proxy.setPolicy(policy))
    yield* Effect.logInfo(`egress: routes reloaded from ${options.routesFile} (${policy.routes.length} routes)`)
  })
  const check = Effect.suspend(() => {
    const now = stampNow()
    if (now === stamp || now.startsWith("missing")) return Effect.void
    stamp = now
    return reload.pipe(
      Effect.catch((e: EgressError) => Effect.logError(`egress: keeping previous routes: ${e.message}`)),
      // The watcher must outlive any bug in one reload.
      Effect.catchCause((cause) => Effect.logError("egress: reload failed; keeping previous routes", cause))
    )
  })
  const wake = yield* Effect.acquireRelease(
    Effect.sync(() => {
      let notify: (() => void) | undefined
      let watcher: fs.FSWatcher | undefined
      try {
        watcher = fs.watch(path.dirname(options.routesFile), { persistent: false }, () => notify?.())
        watcher.on("error", () => {})
      } catch {
        watcher = undefined
      }
      // Answers to approval requests (on_unrouted: ask) land in their own dir.
      let answers: fs.FSWatcher | undefined
      try {
        answers = fs.watch(asker.answersDir, { persistent: false }, () => notify?.())
        answers.on("error", () => {})
      } catch {
        answers = undefined
      }
      onAskChange = () => notify?.()
      return { watcher, answers, onChange: (f: () => void) => (notify = f) }
    }),
    ({ watcher, answers }) => Effect.sync(() => {
      watcher?.close()
      answers?.close()
    })
  )
  const pollMs = options.pollMs ?? 1000
  yield* Effect.forkScoped(
    Effect.callback<void>((resume) => {
      const timer = setTimeout(() => resume(Effect.void), pollMs)
      wake.onChange(() => {
        clearTimeout(timer)
        // Let a burst of events (write + rename) settle.
        setTimeout(() => resume(Effect.void), 20)
      })
      return Effect.sync(() => clearTimeout(timer))
    }).pipe(Effect.andThen(check), Effect.repeat(Schedule.forever))
  )

  yield* Effect.logInfo(`egress: listening on ${proxy.host}:${proxy.port} (bottle ${bottle}, ${initial.routes.length} routes, CA ${ca.certPath})`)
  return {
    host: proxy.host,
    port: proxy.port,
    caCertPath: ca.certPath,
    reload
  } satisfies RunningEgress
})
