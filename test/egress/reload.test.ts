/**
 * Live reload, `bottle egress allow|deny` edits, and the audit log of a running daemon.
 */
import * as fs from "node:fs/promises"
import * as path from "node:path"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Logger } from "effect"
import { readAudit } from "../../src/schema/AuditLog.ts"
import { allowHost, denyHost, loadRoutes } from "../../src/schema/RoutesFile.ts"
import { connectTunnel, proxiedRequest } from "./support/client.ts"
import { API, harness, OTHER, REAL_TOKEN } from "./support/harness.ts"

const routes = (port: number) => `routes:
  - host: ${API}
    ports: [${port}]
    allow_private_ips: true
    auth: { scheme: Bearer, token_env: API_TOKEN }
`

const waitFor = <A>(probe: Effect.Effect<A>, ok: (a: A) => boolean, what: string) =>
  Effect.gen(function*() {
    for (let i = 0; i < 50; i++) {
      const a = yield* probe
      if (ok(a)) return a
      yield* Effect.sleep("100 millis")
    }
    return yield* Effect.die(new Error(`timed out waiting for ${what}`))
  })

describe("egress live reload and audit", () => {
  it.live("a routes file replaced by rename takes effect without restart; an invalid one is ignored", () => {
    // The daemon's log lines, to know when it has read (and refused) the invalid file.
    const logged: Array<string> = []
    const recorder = Logger.make(({ message }) => {
      logged.push((Array.isArray(message) ? message : [message]).map(String).join(" "))
    })
    return Effect.gen(function*() {
      const h = yield* harness({ routes })
      const probe = Effect.promise(() => connectTunnel(h.proxyPort, `${OTHER}:${h.upstreamPort}`)).pipe(
        Effect.map((t) => ("socket" in t ? (t.socket.destroy(), 200) : t.status))
      )
      assert.strictEqual(yield* probe, 403)

      const tmp = path.join(path.dirname(h.routesFile), ".routes.tmp")
      yield* Effect.promise(() => fs.writeFile(tmp, `${routes(h.upstreamPort)}  - host: ${OTHER}\n    ports: [${h.upstreamPort}]\n    allow_private_ips: true\n`))
      yield* Effect.promise(() => fs.rename(tmp, h.routesFile))
      yield* waitFor(probe, (s) => s === 200, "route added")

      // Invalid file: previous routes stay.
      yield* Effect.promise(() => fs.writeFile(tmp, "routes:\n  - host: 10.0.0.1\n"))
      yield* Effect.promise(() => fs.rename(tmp, h.routesFile))
      yield* waitFor(Effect.sync(() => logged.some((l) => l.includes("keeping previous routes"))), (seen) => seen, "the invalid file refused")
      assert.strictEqual(yield* probe, 200)
    }).pipe(Effect.provide(Logger.layer([recorder], { mergeWithExisting: true })))
  })

  it.live("allow and deny edit the routes file atomically and the daemon follows", () =>
    Effect.gen(function*() {
      const h = yield* harness({ routes: (port) => `# keep this comment\nroutes:\n  - host: ${API}\n    ports: [${port}]\n    allow_private_ips: true\n` })
      const status = (host: string) =>
        Effect.promise(() => proxiedRequest({ proxyPort: h.proxyPort, ca: h.bottleCa, host, port: 443, path: "/" }).catch(() => ({ status: -1 })))
      assert.strictEqual((yield* status(OTHER)).status, 403)
      assert.strictEqual(yield* allowHost(h.routesFile, OTHER), "changed")
      assert.strictEqual(yield* allowHost(h.routesFile, OTHER), "unchanged")
      // --allow-private-ips marks the existing route; a second time changes nothing.
      assert.strictEqual(yield* allowHost(h.routesFile, OTHER, { allowPrivateIps: true }), "changed")
      assert.strictEqual(yield* allowHost(h.routesFile, OTHER, { allowPrivateIps: true }), "unchanged")
      const text = yield* Effect.promise(() => fs.readFile(h.routesFile, "utf8"))
      assert.include(text, "# keep this comment")
      const loaded = yield* loadRoutes(h.routesFile)
      assert.deepStrictEqual(loaded.routes.map((r) => [r.host, r.allow_private_ips]), [[API, true], [OTHER, true]])
      // Port 443 is what a bare route admits: the CONNECT passes policy now (upstream has no 443).
      yield* waitFor(
        Effect.promise(() => connectTunnel(h.proxyPort, `${OTHER}:443`)).pipe(Effect.map((t) => ("socket" in t ? (t.socket.destroy(), 200) : t.status))),
        (s) => s === 200,
        "allow applied"
      )
      assert.strictEqual(yield* denyHost(h.routesFile, OTHER), "changed")
      yield* waitFor(
        Effect.promise(() => connectTunnel(h.proxyPort, `${OTHER}:443`)).pipe(Effect.map((t) => ("socket" in t ? (t.socket.destroy(), 200) : t.status))),
        (s) => s === 403,
        "deny applied"
      )
      const bad = yield* Effect.flip(allowHost(h.routesFile, "http://x"))
      assert.strictEqual(bad.reason._tag, "BadArgument")
    }))

  it.live("audit: one JSON line per request, no token or query, size-rotated", () =>
    Effect.gen(function*() {
      const h = yield* harness({ routes, auditMaxBytes: 2000 })
      for (let i = 0; i < 12; i++) {
        yield* Effect.promise(() => proxiedRequest({ proxyPort: h.proxyPort, ca: h.bottleCa, host: API, port: h.upstreamPort, path: `/echo?q=${i}`, method: "POST", body: "x".repeat(i) }))
      }
      yield* Effect.promise(() => connectTunnel(h.proxyPort, `${OTHER}:${h.upstreamPort}`))
      yield* Effect.sleep("100 millis")
      const entries = yield* readAudit(h.stateDir)
      const allowed = entries.filter((e) => e.decision === "allow")
      assert.strictEqual(allowed.length, 12)
      const first = allowed[0]!
      assert.strictEqual(first.bottle, "test")
      assert.strictEqual(first.host, API)
      assert.strictEqual(first.path, "/echo")
      assert.strictEqual(first.status, 200)
      assert.strictEqual(first.rule, "routes[0] (api.example.test)")
      assert.strictEqual(allowed[5]!.bytes_in, 5)
      assert.isAbove(first.bytes_out, 0)
      assert.isAtLeast(first.duration_ms, 0)
      const denied = entries.find((e) => e.decision === "deny")!
      assert.strictEqual(denied.rule, "default-deny")
      const files = yield* Effect.promise(() => fs.readdir(h.stateDir))
      assert.include(files, "audit.log.1")
      for (const f of files.filter((f) => f.startsWith("audit.log"))) {
        const text = yield* Effect.promise(() => fs.readFile(path.join(h.stateDir, f), "utf8"))
        assert.notInclude(text, REAL_TOKEN)
        assert.notInclude(text, "q=")
      }
    }))
})
