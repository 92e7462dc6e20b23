/**
 * A request the route allows but whose upstream cannot be reached is audited `error` with a
 * `reason` naming why (DNS, connect refused, TLS), not as a bare `allow` 502 whose why lived
 * only in the sidecar's log.
 */
import * as net from "node:net"
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { type AuditEntry, readAudit } from "../../src/schema/AuditLog.ts"
import { upstreamFailure } from "../../bundle/egress/proxy.ts"
import { proxiedRequest } from "./support/client.ts"
import { API, harness } from "./support/harness.ts"

const NOWHERE = "nowhere.example.test"
const BADCERT = "badcert.example.test"

const auditLine = (stateDir: string, host: string) =>
  Effect.gen(function*() {
    for (let i = 0; i < 100; i++) {
      const line = (yield* readAudit(stateDir)).find((e) => e.host === host)
      if (line !== undefined) return line
      yield* Effect.sleep("20 millis")
    }
    return undefined
  })

/** A loopback port nothing listens on (bound, then closed). */
const closedPort = () =>
  Effect.promise(() =>
    new Promise<number>((resolve) => {
      const s = net.createServer()
      s.listen(0, "127.0.0.1", () => {
        const port = (s.address() as net.AddressInfo).port
        s.close(() => resolve(port))
      })
    })
  )

describe("egress upstream failure reasons", () => {
  it.live("DNS, connection refused and a bad certificate each give an error line with its reason", () =>
    Effect.gen(function*() {
      const dead = yield* closedPort()
      const h = yield* harness({
        dns: { [BADCERT]: "127.0.0.1" },
        routes: (port) => `routes:
  - host: ${NOWHERE}
    ports: [${port}]
  - host: ${API}
    ports: [${dead}]
    allow_private_ips: true
  - host: ${BADCERT}
    ports: [${port}]
    allow_private_ips: true
`
      })
      const cases: ReadonlyArray<readonly [string, number, RegExp]> = [
        [NOWHERE, h.upstreamPort, /^DNS: nowhere\.example\.test did not resolve \(ENOTFOUND\)/],
        [API, dead, /^connect: api\.example\.test refused the connection \(ECONNREFUSED\)/],
        [BADCERT, h.upstreamPort, /^TLS: the handshake with badcert\.example\.test failed \(.*ALTNAME.*\)/]
      ]
      for (const [host, port, reason] of cases) {
        const res = yield* Effect.promise(() => proxiedRequest({ proxyPort: h.proxyPort, ca: h.bottleCa, host, port, path: "/v1/x" }))
        assert.strictEqual(res.status, 502, `${host}: ${res.body}`)
        const line: AuditEntry | undefined = yield* auditLine(h.stateDir, host)
        assert.isDefined(line, `${host}: audit line`)
        assert.strictEqual(line!.decision, "error", host)
        assert.strictEqual(line!.status, 502, host)
        assert.match(line!.reason ?? "", reason, host)
      }
    }))

  it("names timeouts and unknown codes too, and nothing when there was no upstream error", () => {
    assert.match(upstreamFailure("h.test", ["passthrough-error:ETIMEDOUT"]) ?? "", /^timeout: /)
    assert.match(upstreamFailure("h.test", ["passthrough-error:EWEIRD"]) ?? "", /^upstream: h\.test failed \(EWEIRD\)/)
    assert.strictEqual(upstreamFailure("h.test", []), undefined)
    assert.strictEqual(upstreamFailure("h.test", undefined), undefined)
  })
})
