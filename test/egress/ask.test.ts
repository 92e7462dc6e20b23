/**
 * `on_unrouted: ask` on a real egress daemon (harness: real TLS upstream, real proxy): an
 * unrouted host gets a 403 naming a pending approval request (host, port, method, path only:
 * no query, no header); retries name the same id; `approve --route once` lets exactly one
 * request through; `--route session` routes it (no credential) until the daemon stops, and a
 * new daemon (stop/resume) no longer honours it; a denied host stays refused, across a
 * restart too. Without `on_unrouted` nothing is queued.
 */
import * as fs from "node:fs"
import * as path from "node:path"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Scope } from "effect"
import { layerAt } from "../../src/layers/StateStore.ts"
import { answer, get, list } from "../../src/programs/approvals.ts"
import { proxiedRequest } from "./support/client.ts"
import { API, harness, OTHER } from "./support/harness.ts"
import { runEgress } from "../../bundle/egress/daemon.ts"
import { makeAsker } from "../../bundle/egress/ask.ts"
import { LIMITS } from "../../src/schema/Approval.ts"
import * as os from "node:os"

const askRoutes = (port: number) => `on_unrouted: ask
routes:
  - host: ${API}
    ports: [${port}]
    allow_private_ips: true
`

const pendingId = (body: string): string => {
  const m = /approval request ([a-z2-9]{12})/.exec(body)
  if (!m) throw new Error(`no approval id in ${body}`)
  return m[1]!
}

const waitFor = <A>(probe: Effect.Effect<A>, ok: (a: A) => boolean, what: string) =>
  Effect.gen(function*() {
    let last: A | undefined
    for (let i = 0; i < 60; i++) {
      last = yield* probe
      if (ok(last)) return last
      yield* Effect.sleep("100 millis")
    }
    return yield* Effect.die(new Error(`timed out waiting for ${what}: last ${JSON.stringify(last)}`))
  })

describe("egress on_unrouted: ask", () => {
  it.live("queues an unrouted host, names the id in the 403, and approve --route once lets one request through", () =>
    Effect.gen(function*() {
      const h = yield* harness({ routes: askRoutes })
      const state = layerAt(h.dir)
      const req = (p = "/data?token=s3cret") =>
        Effect.promise(() => proxiedRequest({ proxyPort: h.proxyPort, ca: h.bottleCa, host: OTHER, port: h.upstreamPort, path: p, headers: { authorization: "Bearer agent-secret" } }))

      const first = yield* req()
      assert.strictEqual(first.status, 403)
      const id = pendingId(first.body)
      assert.include(first.body, "pending")
      const again = yield* req()
      assert.strictEqual(pendingId(again.body), id, "a retry names the same request")

      const queued = yield* get(id).pipe(Effect.provide(state))
      assert.deepInclude(queued, { kind: "egress", status: "pending", host: OTHER, port: h.upstreamPort, method: "GET", path: "/data" })
      const onDisk = fs.readFileSync(path.join(h.stateDir, "requests", `${id}.json`), "utf8")
      assert.notInclude(onDisk, "s3cret", "no query string is stored")
      assert.notInclude(onDisk, "agent-secret", "no header is stored")

      yield* answer(id, "approve", { route: "once", allowPrivateIps: true }).pipe(Effect.provide(state))
      const passed = yield* waitFor(req("/once"), (r) => r.status === 200, "the once route applied")
      assert.strictEqual(passed.status, 200)
      const second = yield* req("/twice")
      assert.strictEqual(second.status, 403, "once means one request")
      // The next request after a used once grant queues a new request.
      yield* waitFor(req("/later"), (r) => r.status === 403 && /pending/.test(r.body) && pendingId(r.body) !== id, "a new request after the once grant")
    })
  )

  it.live("--route session routes the host (no credential) until the daemon stops; a new daemon drops it", () =>
    Effect.gen(function*() {
      const h = yield* harness({ routes: askRoutes })
      const state = layerAt(h.dir)
      const status = (port: number) =>
        Effect.promise(() => proxiedRequest({ proxyPort: port, ca: h.bottleCa, host: OTHER, port: h.upstreamPort, path: "/" }))
      const id = pendingId((yield* status(h.proxyPort)).body)
      const r = yield* answer(id, "approve", { route: "session", allowPrivateIps: true }).pipe(Effect.provide(state))
      assert.strictEqual(r.approval.route, "session")
      yield* waitFor(status(h.proxyPort), (x) => x.status === 200, "session route applied")
      assert.strictEqual((yield* status(h.proxyPort)).status, 200, "and again")
      // The upstream got the request with no credential injected: the grant has no auth.
      const seen = h.upstream.received.at(-1)
      assert.isDefined(seen)
      assert.isUndefined(seen!.headers["authorization"])

      // A second daemon on the same state (what a stop/resume starts): the session grant is gone.
      const scope = yield* Scope.make()
      const second = yield* runEgress({
        routesFile: h.routesFile,
        stateDir: h.stateDir,
        listen: { host: "127.0.0.1", port: 0 },
        bottle: "test",
        extraCaFiles: [h.rootFile],
        env: {},
        dnsServers: [h.dns.server],
        pollMs: 100
      }).pipe(Scope.provide(scope))
      const after = yield* status(second.port)
      assert.strictEqual(after.status, 403)
      assert.notStrictEqual(pendingId(after.body), id, "a new request, not the old grant")
      yield* Scope.close(scope, Effect.void as never)
    })
  )

  it.live("a denied host stays refused, also after a restart", () =>
    Effect.gen(function*() {
      const h = yield* harness({ routes: askRoutes })
      const state = layerAt(h.dir)
      const status = (port: number) =>
        Effect.promise(() => proxiedRequest({ proxyPort: port, ca: h.bottleCa, host: OTHER, port: h.upstreamPort, path: "/" }))
      const id = pendingId((yield* status(h.proxyPort)).body)
      yield* answer(id, "deny", { note: "no" }).pipe(Effect.provide(state))
      const denied = yield* status(h.proxyPort)
      assert.strictEqual(denied.status, 403)
      assert.include(denied.body, "denied by the operator")
      assert.include(denied.body, id)
      const scope = yield* Scope.make()
      const second = yield* runEgress({
        routesFile: h.routesFile,
        stateDir: h.stateDir,
        listen: { host: "127.0.0.1", port: 0 },
        bottle: "test",
        extraCaFiles: [h.rootFile],
        env: {},
        dnsServers: [h.dns.server],
        pollMs: 100
      }).pipe(Scope.provide(scope))
      const still = yield* status(second.port)
      assert.include(still.body, "denied by the operator")
      assert.strictEqual((yield* list("test").pipe(Effect.provide(state))).length, 1, "no new request for a denied host")
      yield* Scope.close(scope, Effect.void as never)
    })
  )

  it.live("without on_unrouted an unrouted host is refused and nothing is queued", () =>
    Effect.gen(function*() {
      const h = yield* harness({ routes: (port) => `routes:\n  - host: ${API}\n    ports: [${port}]\n    allow_private_ips: true\n` })
      const r = yield* Effect.promise(() => proxiedRequest({ proxyPort: h.proxyPort, ca: h.bottleCa, host: OTHER, port: h.upstreamPort, path: "/" }).catch(() => ({ status: 403, body: "" })))
      assert.strictEqual(r.status, 403)
      assert.notInclude(r.body, "approval request")
      assert.deepStrictEqual(yield* list("test").pipe(Effect.provide(layerAt(h.dir))), [])
    })
  )

  it("a flood of unrouted hosts queues at most LIMITS.pendingPerDaemon requests; IP addresses are never queued", () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "bb-ask-flood-"))
    const asker = makeAsker(dir, { log: () => {} })
    const reasons = Array.from({ length: LIMITS.pendingPerDaemon + 5 }, (_, i) =>
      asker.unrouted({ host: `h${i}.flood.example.com`, port: 443, method: "GET", pathAndQuery: "/" }).reason)
    assert.strictEqual(fs.readdirSync(path.join(dir, "requests")).length, LIMITS.pendingPerDaemon)
    assert.include(reasons.at(-1)!, "pending already")
    const ip = asker.unrouted({ host: "10.0.0.1", port: 443, method: "GET", pathAndQuery: "/" })
    assert.strictEqual(ip.rule, "default-deny")
    assert.strictEqual(fs.readdirSync(path.join(dir, "requests")).length, LIMITS.pendingPerDaemon)
  })

  it("a wildcard host (a CONNECT to `*.example.com`) is never queued: an approval would route every subdomain", () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "bb-ask-wild-"))
    const asker = makeAsker(dir, { log: () => {} })
    for (const host of ["*.example.com", "*.EXAMPLE.com."]) {
      const r = asker.unrouted({ host, port: 443, method: "GET", pathAndQuery: "/" })
      assert.strictEqual(r.rule, "default-deny")
      assert.include(r.reason, "wildcards")
    }
    assert.deepStrictEqual(fs.readdirSync(path.join(dir, "requests")), [])
  })
})
