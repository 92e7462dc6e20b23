/**
 * One egress daemon wired to real parts: a test root CA, an HTTPS upstream on loopback with a
 * certificate for made-up host names, a DNS server mapping those names to 127.0.0.1, a state
 * dir, and the daemon itself (`runEgress`) on an ephemeral port. Everything is released with
 * the test's scope.
 */
import * as fs from "node:fs/promises"
import * as os from "node:os"
import * as path from "node:path"
import { Effect } from "effect"
import { runEgress } from "../../../bundle/egress/daemon.ts"
import { startFakeDns } from "./dns.ts"
import { issueServerCert, makeTestCa } from "./pki.ts"
import { startUpstream } from "./upstream.ts"

export const API = "api.example.test"
export const OTHER = "other.example.test"
export const EVIL = "evil.example.test"
export const HOSTS = [API, OTHER, EVIL, "ws.example.test", "a.svc.example.test"]

export const REAL_TOKEN = "real-secret-token-0123456789abcdef"
export const OTHER_TOKEN = "other-secret-token-fedcba9876543210"

export interface HarnessOptions {
  /** routes.yaml text, given the upstream's port. */
  readonly routes: (port: number) => string
  readonly env?: Record<string, string>
  readonly sseIntervalMs?: number
  readonly sseEvents?: number
  readonly auditMaxBytes?: number
  /** More DNS answers (name → IPv4 address); every name in HOSTS answers 127.0.0.1. */
  readonly dns?: Record<string, string>
  /** Runs once the daemon's port is bound, before its proxy engine is up (see listener.ts). */
  readonly onBound?: (bound: { readonly proxyPort: number; readonly stateDir: string; readonly upstreamPort: number }) => Effect.Effect<void>
}

export const harness = Effect.fn("harness")(function*(options: HarnessOptions) {
  const root = yield* Effect.promise(() => makeTestCa())
  const cert = yield* Effect.promise(() => issueServerCert(root, HOSTS))
  const upstream = yield* Effect.acquireRelease(
    Effect.promise(() =>
      startUpstream(cert, {
        ...(options.sseIntervalMs !== undefined ? { sseIntervalMs: options.sseIntervalMs } : {}),
        ...(options.sseEvents !== undefined ? { sseEvents: options.sseEvents } : {})
      })
    ),
    (u) => Effect.promise(() => u.close())
  )
  const dns = yield* Effect.acquireRelease(
    Effect.promise(() => startFakeDns({ ...Object.fromEntries(HOSTS.map((h) => [h, "127.0.0.1"])), ...options.dns })),
    (d) => Effect.promise(() => d.close())
  )
  const dir = yield* Effect.acquireRelease(
    Effect.promise(() => fs.mkdtemp(path.join(os.tmpdir(), "egress-test-"))),
    (d) => Effect.promise(() => fs.rm(d, { recursive: true, force: true }))
  )
  const stateDir = path.join(dir, "bottles", "test", "egress")
  yield* Effect.promise(() => fs.mkdir(stateDir, { recursive: true }))
  const rootFile = path.join(dir, "upstream-root.pem")
  const routesFile = path.join(stateDir, "routes.yaml")
  yield* Effect.promise(() => fs.writeFile(rootFile, root.certPem))
  yield* Effect.promise(() => fs.writeFile(routesFile, options.routes(upstream.port)))
  const egress = yield* runEgress({
    routesFile,
    stateDir,
    listen: { host: "127.0.0.1", port: 0 },
    bottle: "test",
    extraCaFiles: [rootFile],
    env: options.env ?? { API_TOKEN: REAL_TOKEN, OTHER_TOKEN },
    dnsServers: [dns.server],
    headersTimeoutMs: 1500,
    idleTimeoutMs: 1500,
    pollMs: 100,
    ...(options.auditMaxBytes !== undefined ? { auditMaxBytes: options.auditMaxBytes } : {}),
    ...(options.onBound ? { onBound: (port: number) => options.onBound!({ proxyPort: port, stateDir, upstreamPort: upstream.port }) } : {})
  })
  const bottleCa = yield* Effect.promise(() => fs.readFile(egress.caCertPath, "utf8"))
  return { upstream, dns, dir, stateDir, routesFile, rootFile, egress, bottleCa, proxyPort: egress.port, upstreamPort: upstream.port }
})
