/**
 * Upstream-address refusals that used to slip by: a WebSocket upgrade refused for its address
 * (on a route without credentials, and with) is answered 502 and audited `deny` by rule
 * `upstream-address`, not `allow`/101; and a keep-alive connection opened before a live reload
 * that removes `allow_private_ips` does not carry a request after it.
 */
import * as fs from "node:fs/promises"
import * as http2 from "node:http2"
import * as https from "node:https"
import * as path from "node:path"
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import WebSocket from "ws"
import { readAudit } from "../../src/schema/AuditLog.ts"
import { connectTunnel, proxiedRequest, tlsOverTunnel } from "./support/client.ts"
import { API, harness, OTHER } from "./support/harness.ts"

const WS = "ws.example.test"

/** Polls the audit log (written in batches within ~20 ms) for a line, bounded. */
const auditLine = (stateDir: string, match: (e: { host: string; path: string; decision: string }) => boolean) =>
  Effect.gen(function*() {
    for (let i = 0; i < 100; i++) {
      const line = (yield* readAudit(stateDir)).find(match)
      if (line !== undefined) return line
      yield* Effect.sleep("20 millis")
    }
    return undefined
  })

/**
 * Replaces the routes file atomically and waits until the reload has applied: a fresh
 * connection to API is refused for its (private) address.
 */
const reloadUntilRefused = (h: { readonly routesFile: string; readonly proxyPort: number; readonly bottleCa: string; readonly upstreamPort: number }, text: string) =>
  Effect.gen(function*() {
    const tmp = path.join(path.dirname(h.routesFile), ".routes.tmp")
    yield* Effect.promise(() => fs.writeFile(tmp, text))
    yield* Effect.promise(() => fs.rename(tmp, h.routesFile))
    let fresh = 0
    for (let i = 0; i < 100 && fresh !== 502; i++) {
      fresh = (yield* Effect.promise(() => proxiedRequest({ proxyPort: h.proxyPort, ca: h.bottleCa, host: API, port: h.upstreamPort, path: "/v1/probe" }))).status
      if (fresh !== 502) yield* Effect.sleep("20 millis")
    }
    assert.strictEqual(fresh, 502, "reload applied")
  })

const wsOpen = (proxyPort: number, ca: string, host: string, port: number) =>
  Effect.promise(async () => {
    const tunnel = await connectTunnel(proxyPort, `${host}:${port}`)
    if (!("socket" in tunnel)) return `tunnel refused ${tunnel.status}`
    const socket = await tlsOverTunnel(tunnel.socket, ca, host)
    return new Promise<string>((resolve) => {
      const client = new WebSocket(`wss://${host}:${port}/ws`, { createConnection: () => socket } as WebSocket.ClientOptions)
      client.on("open", () => {
        client.close()
        resolve("open")
      })
      client.on("unexpected-response", (_req, res) => {
        let body = ""
        res.on("data", (c: Buffer) => (body += c.toString()))
        res.on("end", () => resolve(`status ${res.statusCode} ${body}`))
      })
      client.on("error", (e) => resolve(`error ${e.message}`))
    })
  })

describe("egress upstream addresses", () => {
  it.live("a WebSocket upgrade refused for its address is answered 502 and audited deny (upstream-address), with credentials or without", () =>
    Effect.gen(function*() {
      const h = yield* harness({
        routes: (port) => `routes:
  - host: ${API}
    ports: [${port}]
    allow_private_ips: true
  - host: ${OTHER}
    ports: [${port}]
  - host: ${WS}
    ports: [${port}]
    auth: { scheme: Bearer, token_env: API_TOKEN }
`
      })
      // Positive control: the same upstream through a route that allows private addresses.
      assert.strictEqual(yield* wsOpen(h.proxyPort, h.bottleCa, API, h.upstreamPort), "open")
      const control = yield* auditLine(h.stateDir, (e) => e.host === API && e.path === "/ws")
      assert.strictEqual(control?.decision, "allow")
      assert.strictEqual(control?.status, 101)

      for (const host of [OTHER, WS]) {
        const got = yield* wsOpen(h.proxyPort, h.bottleCa, host, h.upstreamPort)
        const line = yield* auditLine(h.stateDir, (e) => e.host === host && e.path === "/ws")
        assert.isDefined(line, `${host}: audit line`)
        assert.strictEqual(`${line!.decision} ${line!.rule} ${line!.status}`, "deny upstream-address 502", host)
        assert.match(got, /^status 502 /, `${host}: ${got}`)
        assert.include(got, "upstream-address", host)
        assert.include(got, "resolves to 127.0.0.1", host)
      }
      assert.deepStrictEqual(h.upstream.received.map((r) => String(r.headers["host"]).split(":")[0]), [API], "only the control reached the upstream")
    }))

  for (const protocol of ["HTTP/1.1", "HTTP/2"] as const) {
    it.live(`${protocol}: after a reload removes allow_private_ips, a keep-alive connection made before it does not reach the private upstream`, () =>
      Effect.gen(function*() {
        const routes = (port: number, allowPrivate: boolean) => `routes:
  - host: ${API}
    ports: [${port}]
${allowPrivate ? "    allow_private_ips: true\n" : ""}`
        const h = yield* harness({ routes: (port) => routes(port, true) })
        const target = `${API}:${h.upstreamPort}`
        // One downstream connection, kept alive across both requests.
        const tunnel = yield* Effect.promise(() => connectTunnel(h.proxyPort, target))
        if (!("socket" in tunnel)) return assert.fail("tunnel refused")
        const socket = yield* Effect.promise(() => tlsOverTunnel(tunnel.socket, h.bottleCa, API, [protocol === "HTTP/2" ? "h2" : "http/1.1"]))
        let get: (p: string) => Effect.Effect<{ status: number; reused: boolean }>
        if (protocol === "HTTP/2") {
          const session = http2.connect(`https://${target}`, { createConnection: () => socket })
          session.on("error", () => {})
          yield* Effect.addFinalizer(() => Effect.sync(() => session.destroy()))
          get = (p) =>
            Effect.promise(() =>
              new Promise((resolve, reject) => {
                const req = session.request({ ":method": "GET", ":path": p, ":authority": target })
                let status = 0
                req.on("response", (hd) => (status = Number(hd[":status"])))
                req.resume()
                req.on("end", () => resolve({ status, reused: !session.destroyed }))
                req.on("error", reject)
                req.end()
              })
            )
        } else {
          const agent = new https.Agent({ keepAlive: true, maxSockets: 1 })
          ;(agent as unknown as { createConnection: () => unknown }).createConnection = () => socket
          yield* Effect.addFinalizer(() => Effect.sync(() => (agent.destroy(), socket.destroy())))
          get = (p) =>
            Effect.promise(() =>
              new Promise((resolve, reject) => {
                const req = https.request({ agent, host: API, port: h.upstreamPort, path: p, headers: { host: target } }, (res) => {
                  res.resume()
                  res.on("end", () => resolve({ status: res.statusCode ?? 0, reused: req.reusedSocket }))
                })
                req.on("error", reject)
                req.end()
              })
            )
        }
        assert.strictEqual((yield* get("/v1/before")).status, 200)

        yield* reloadUntilRefused(h, routes(h.upstreamPort, false))

        const after = yield* get("/v1/after")
        assert.isTrue(after.reused, "the second request rode the same downstream connection")
        assert.strictEqual(after.status, 502)
        assert.notInclude(h.upstream.received.map((r) => r.url), "/v1/after")
      }))
  }

  it.live("HTTP/2: a stream in flight across the reload is not cut when the next request on its connection retires the pool", () =>
    Effect.gen(function*() {
      const routes = (port: number, allowPrivate: boolean) => `routes:
  - host: ${API}
    ports: [${port}]
${allowPrivate ? "    allow_private_ips: true\n" : ""}`
      const h = yield* harness({ routes: (port) => routes(port, true), sseIntervalMs: 250 })
      const target = `${API}:${h.upstreamPort}`
      const tunnel = yield* Effect.promise(() => connectTunnel(h.proxyPort, target))
      if (!("socket" in tunnel)) return assert.fail("tunnel refused")
      const socket = yield* Effect.promise(() => tlsOverTunnel(tunnel.socket, h.bottleCa, API, ["h2"]))
      const session = http2.connect(`https://${target}`, { createConnection: () => socket })
      session.on("error", () => {})
      yield* Effect.addFinalizer(() => Effect.sync(() => session.destroy()))
      // A server-sent event stream (5 events, 250 ms apart), opened under the old rules.
      let events = 0
      const sse = new Promise<{ status: number; events: number }>((resolve, reject) => {
        const req = session.request({ ":method": "GET", ":path": "/sse", ":authority": target })
        let status = 0
        req.on("response", (hd) => (status = Number(hd[":status"])))
        req.on("data", (c: Buffer) => (events += (c.toString().match(/event: tick/g) ?? []).length))
        req.on("end", () => resolve({ status, events }))
        req.on("error", reject)
        req.end()
      })
      while (events === 0) yield* Effect.sleep("10 millis")

      yield* reloadUntilRefused(h, routes(h.upstreamPort, false))
      // A new request on the same session: refused (a new, checked upstream connection)...
      const after = yield* Effect.promise(() =>
        new Promise<number>((resolve, reject) => {
          const req = session.request({ ":method": "GET", ":path": "/v1/after", ":authority": target })
          let status = 0
          req.on("response", (hd) => (status = Number(hd[":status"])))
          req.resume()
          req.on("end", () => resolve(status))
          req.on("error", reject)
          req.end()
        })
      )
      assert.strictEqual(after, 502)
      assert.isBelow(events, 5, "the stream was still in flight when its pool was retired")
      // ...while the stream opened before the reload runs to its end.
      const done = yield* Effect.promise(() => sse)
      assert.deepStrictEqual(done, { status: 200, events: 5 })
    }))
})
