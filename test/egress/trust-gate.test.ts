/**
 * Upstream trust is set after the daemon listens (to keep it off the start-up path). The
 * attack: a request that races the daemon's start must not go upstream before the trust store
 * is settled (it would be verified against Node's defaults alone), and must never go if the
 * store cannot be set. The proxy holds such requests, then refuses them.
 */
import * as fs from "node:fs/promises"
import * as os from "node:os"
import * as path from "node:path"
import * as tls from "node:tls"
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { AuditLog } from "../../bundle/egress/audit.ts"
import { ensureBottleCa } from "../../bundle/egress/ca.ts"
import { compilePolicy } from "../../bundle/egress/policy.ts"
import { startProxy } from "../../bundle/egress/proxy.ts"
import { parseRoutes } from "../../bundle/egress/routes.ts"
import { proxiedRequest } from "./support/client.ts"
import { startFakeDns } from "./support/dns.ts"
import { API, HOSTS } from "./support/harness.ts"
import { issueServerCert, makeTestCa } from "./support/pki.ts"
import { startUpstream } from "./support/upstream.ts"

describe("egress upstream trust gate", () => {
  it.live("a request that arrives before the trust store is settled waits, and is refused if it cannot be set", () =>
    Effect.gen(function*() {
      const root = yield* Effect.promise(() => makeTestCa())
      // The upstream is trusted by the process's store from the start: without the gate, the
      // request would go through at once.
      yield* Effect.acquireRelease(
        Effect.sync(() => {
          const previous = tls.getCACertificates("default")
          tls.setDefaultCACertificates([...previous, root.certPem])
          return previous
        }),
        (previous) => Effect.sync(() => tls.setDefaultCACertificates(previous))
      )
      const upstream = yield* Effect.acquireRelease(
        Effect.promise(async () => startUpstream(await issueServerCert(root, HOSTS))),
        (u) => Effect.promise(() => u.close())
      )
      const dns = yield* Effect.acquireRelease(
        Effect.promise(() => startFakeDns(Object.fromEntries(HOSTS.map((h) => [h, "127.0.0.1"])))),
        (d) => Effect.promise(() => d.close())
      )
      const dir = yield* Effect.promise(() => fs.mkdtemp(path.join(os.tmpdir(), "egress-gate-")))
      const ca = yield* ensureBottleCa(dir)
      const keyPem = yield* Effect.promise(() => fs.readFile(ca.keyPath, "utf8"))
      const routes = yield* parseRoutes(`routes:\n  - host: ${API}\n    ports: [${upstream.port}]\n`, "routes.yaml")
      const { policy } = compilePolicy(routes.routes, { get: () => undefined })
      let settle: (ok: boolean) => void = () => {}
      const upstreamTrust = new Promise<boolean>((resolve) => (settle = resolve))
      const audit = new AuditLog(dir)
      const proxy = yield* Effect.acquireRelease(
        Effect.promise(() =>
          startProxy({ ca: { certPem: ca.certPem, keyPem }, listen: { host: "127.0.0.1", port: 0 }, bottle: "test", audit, dnsServers: [dns.server], upstreamTrust, log: () => {} }, policy)
        ),
        (p) => Effect.promise(() => p.stop().then(() => audit.close()))
      )

      let answered = false
      const response = proxiedRequest({ proxyPort: proxy.port, ca: ca.certPem, host: API, port: upstream.port, path: "/held" }).then((r) => {
        answered = true
        return r
      })
      yield* Effect.sleep("300 millis")
      assert.isFalse(answered, "held while the trust store is unsettled")
      assert.deepStrictEqual(upstream.received, [], "nothing went upstream meanwhile")

      settle(false)
      const r = yield* Effect.promise(() => response)
      assert.isAtLeast(r.status, 500)
      assert.deepStrictEqual(upstream.received, [], "refused, never sent upstream")
    }).pipe(Effect.scoped))
})
