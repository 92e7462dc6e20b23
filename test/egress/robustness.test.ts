/**
 * Malformed and hostile input: each gets a clean error (or a closed connection) and the proxy
 * keeps serving other clients.
 */
import * as net from "node:net"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Fiber } from "effect"
import WebSocket from "ws"
import { connectTunnel, proxiedRequest, rawConnection, tlsOverTunnel } from "./support/client.ts"
import { API, EVIL, harness, REAL_TOKEN } from "./support/harness.ts"

const routes = (port: number) => `routes:
  - host: ${API}
    ports: [${port}]
    allow_private_ips: true
    auth: { scheme: Bearer, token_env: API_TOKEN }
  - host: ws.example.test
    ports: [${port}]
    allow_private_ips: true
    auth: { scheme: Bearer, token_env: API_TOKEN }
`

/** Sends raw bytes, returns what came back before the proxy closed (or the timeout). */
const raw = (port: number, bytes: string | Buffer, opts: { halfClose?: boolean; waitMs?: number } = {}) =>
  Effect.promise(() => rawConnection(port, { send: bytes, ...(opts.halfClose ? { halfClose: true } : {}), waitMs: opts.waitMs ?? 3000 }))

const stillServes = (h: { proxyPort: number; bottleCa: string; upstreamPort: number }) =>
  Effect.gen(function*() {
    const res = yield* Effect.promise(() => proxiedRequest({ proxyPort: h.proxyPort, ca: h.bottleCa, host: API, port: h.upstreamPort, path: "/echo" }))
    assert.strictEqual(res.status, 200)
  })

describe("egress robustness", () => {
  it.live("bad CONNECT lines, oversized headers, garbage, half-closed and slow clients", () =>
    Effect.gen(function*() {
      const h = yield* harness({ routes })
      const badConnect = yield* raw(h.proxyPort, "CONNECT\r\n\r\n")
      assert.match(badConnect.reply, /^HTTP\/1\.1 400/)
      const noPort = yield* raw(h.proxyPort, `CONNECT ${API} HTTP/1.1\r\nHost: ${API}\r\n\r\n`)
      assert.match(noPort.reply, /^HTTP\/1\.1 403/)
      assert.include(noPort.reply, "bad-connect")
      const ipTarget = yield* raw(h.proxyPort, "CONNECT 127.0.0.1:22 HTTP/1.1\r\nHost: 127.0.0.1:22\r\n\r\n")
      assert.match(ipTarget.reply, /^HTTP\/1\.1 403/)
      yield* stillServes(h)

      const huge = yield* raw(h.proxyPort, `GET http://${API}/ HTTP/1.1\r\nHost: ${API}\r\nX-Big: ${"a".repeat(100_000)}\r\n\r\n`)
      assert.match(huge.reply, /^HTTP\/1\.1 431|^HTTP\/1\.1 400/)
      const garbage = yield* raw(h.proxyPort, Buffer.from([0x00, 0xff, 0x13, 0x37, 0x0d, 0x0a, 0x0d, 0x0a, 0x99, 0x42]))
      assert.ok(garbage.closed)
      assert.notMatch(garbage.reply, /^HTTP\/1\.1 2/)
      const half = yield* raw(h.proxyPort, `CONNECT ${API}:${h.upstreamPort} HTTP/1.1\r\nHost: ${API}\r\n`, { halfClose: true })
      assert.ok(half.closed)
      const tlsGarbage = yield* Effect.promise(async () => {
        const t = await connectTunnel(h.proxyPort, `${API}:${h.upstreamPort}`)
        if (!("socket" in t)) throw new Error("refused")
        t.socket.resume()
        t.socket.end(Buffer.from("\x16\x03\x01\x00\x05hello-not-tls-at-all"))
        return new Promise<boolean>((resolve) => {
          t.socket.on("close", () => resolve(true))
          t.socket.on("error", () => resolve(true))
          setTimeout(() => resolve(false), 3000)
        })
      })
      assert.ok(tlsGarbage, "garbage inside the tunnel closes it")
      yield* stillServes(h)

      // Slowloris: headers trickle in; the proxy serves others meanwhile and cuts it off.
      const slow = yield* Effect.promise(
        () =>
          new Promise<{ closedAfterMs: number; reply: string }>((resolve) => {
            const started = performance.now()
            const s = net.connect(h.proxyPort, "127.0.0.1")
            let reply = ""
            s.on("data", (c) => (reply += c.toString()))
            const timer = setInterval(() => s.write("X-Slow: 1\r\n"), 200)
            s.on("connect", () => s.write(`GET http://${API}:${h.upstreamPort}/ HTTP/1.1\r\nHost: ${API}:${h.upstreamPort}\r\n`))
            s.on("close", () => {
              clearInterval(timer)
              resolve({ closedAfterMs: performance.now() - started, reply })
            })
            s.on("error", () => {})
          })
      ).pipe(Effect.forkChild)
      yield* Effect.sleep("300 millis")
      yield* stillServes(h)
      const slowResult = yield* Fiber.await(slow)
      assert.strictEqual(slowResult._tag, "Success")
      if (slowResult._tag === "Success") {
        assert.isBelow(slowResult.value.closedAfterMs, 10_000)
        assert.match(slowResult.value.reply, /^HTTP\/1\.1 (408|400)/)
      }
      yield* stillServes(h)
    }))

  it.live("WebSockets pass on routed hosts with the credential injected; unrouted ones are refused", () =>
    Effect.gen(function*() {
      const h = yield* harness({ routes })
      const echoed = yield* Effect.promise(async () => {
        const t = await connectTunnel(h.proxyPort, `ws.example.test:${h.upstreamPort}`)
        if (!("socket" in t)) throw new Error("refused")
        const socket = await tlsOverTunnel(t.socket, h.bottleCa, "ws.example.test", ["http/1.1"])
        const ws = new WebSocket(`wss://ws.example.test:${h.upstreamPort}/chat`, {
          createConnection: () => socket,
          headers: { authorization: "Bearer placeholder" }
        })
        return new Promise<string>((resolve, reject) => {
          ws.on("open", () => ws.send("hi"))
          ws.on("message", (m) => {
            resolve(m.toString())
            ws.close()
          })
          ws.on("error", reject)
        })
      })
      assert.strictEqual(echoed, "echo:hi")
      const upgrade = h.upstream.received.find((r) => r.url === "/chat")!
      assert.strictEqual(upgrade.headers["authorization"], `Bearer ${REAL_TOKEN}`)

      const refused = yield* Effect.promise(() => connectTunnel(h.proxyPort, `${EVIL}:${h.upstreamPort}`))
      assert.ok("status" in refused && refused.status === 403)
    }))
})
