/**
 * The idle timeout cuts connections that are idle, not ones that are busy: a response streamed
 * through a CONNECT tunnel for longer than the timeout, with traffic every quarter of it, arrives
 * whole over HTTP/2 and over HTTP/1.1; and a tunnel that goes quiet after a request is still
 * closed once the timeout passes (the harness's idle timeout is 1.5 s).
 */
import * as http2 from "node:http2"
import * as https from "node:https"
import type * as tls from "node:tls"
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { connectTunnel, tlsOverTunnel } from "./support/client.ts"
import { API, harness } from "./support/harness.ts"

const routes = (port: number) => `routes:
  - host: ${API}
    ports: [${port}]
    allow_private_ips: true
`
// 8 events 375 ms apart: the stream lasts ~2.6 s, past the harness's 1.5 s idle timeout.
const EVENTS = 8
const EVERY_MS = 375

const tunnelTls = (proxyPort: number, ca: string, target: string, alpn: Array<string>) =>
  Effect.acquireRelease(
    Effect.promise(async () => {
      const tunnel = await connectTunnel(proxyPort, target)
      if (!("socket" in tunnel)) throw new Error(`tunnel refused: ${tunnel.status} ${tunnel.body}`)
      return tlsOverTunnel(tunnel.socket, ca, API, alpn)
    }),
    (socket) => Effect.sync(() => socket.destroy())
  )

const countTicks = (c: Buffer) => (c.toString().match(/event: tick/g) ?? []).length

const h2Get = (session: http2.ClientHttp2Session, target: string, path: string) =>
  new Promise<{ status: number; events: number }>((resolve) => {
    const req = session.request({ ":method": "GET", ":path": path, ":authority": target })
    let status = 0
    let events = 0
    req.on("response", (hd) => (status = Number(hd[":status"])))
    req.on("data", (c: Buffer) => (events += countTicks(c)))
    req.on("end", () => resolve({ status, events }))
    req.on("error", () => resolve({ status, events }))
    req.end()
  })

const h1Get = (socket: tls.TLSSocket, target: string, path: string) =>
  new Promise<{ status: number; events: number }>((resolve) => {
    // A keep-alive agent that hands out the tunnel's TLS socket once.
    const agent = new https.Agent({ keepAlive: true, maxSockets: 1 })
    agent.createConnection = () => socket
    const req = https.request({ agent, host: API, path, headers: { host: target } }, (res) => {
      let events = 0
      res.on("data", (c: Buffer) => (events += countTicks(c)))
      res.on("end", () => resolve({ status: res.statusCode ?? 0, events }))
      res.on("error", () => resolve({ status: res.statusCode ?? 0, events }))
    })
    req.on("error", () => resolve({ status: 0, events: 0 }))
    req.end()
  })

/** Resolves once the socket closes, or with false after `ms`. */
const closedWithin = (socket: tls.TLSSocket, ms: number) =>
  new Promise<boolean>((resolve) => {
    if (socket.destroyed) return resolve(true)
    const timer = setTimeout(() => resolve(false), ms)
    socket.once("close", () => {
      clearTimeout(timer)
      resolve(true)
    })
  })

describe("egress idle timeout", () => {
  it.live("HTTP/2: a stream busier than the idle timeout but longer than it arrives whole", () =>
    Effect.gen(function*() {
      const h = yield* harness({ routes, sseIntervalMs: EVERY_MS, sseEvents: EVENTS })
      const target = `${API}:${h.upstreamPort}`
      const socket = yield* tunnelTls(h.proxyPort, h.bottleCa, target, ["h2"])
      assert.strictEqual(socket.alpnProtocol, "h2")
      const session = http2.connect(`https://${target}`, { createConnection: () => socket })
      session.on("error", () => {})
      yield* Effect.addFinalizer(() => Effect.sync(() => session.destroy()))
      const got = yield* Effect.promise(() => h2Get(session, target, "/sse"))
      assert.deepStrictEqual(got, { status: 200, events: EVENTS })
    }), 20_000)

  it.live("HTTP/1.1: a stream busier than the idle timeout but longer than it arrives whole", () =>
    Effect.gen(function*() {
      const h = yield* harness({ routes, sseIntervalMs: EVERY_MS, sseEvents: EVENTS })
      const target = `${API}:${h.upstreamPort}`
      const socket = yield* tunnelTls(h.proxyPort, h.bottleCa, target, ["http/1.1"])
      const got = yield* Effect.promise(() => h1Get(socket, target, "/sse"))
      assert.deepStrictEqual(got, { status: 200, events: EVENTS })
    }), 20_000)

  it.live("a tunnel that goes quiet after a request is closed by the idle timeout, HTTP/2 and HTTP/1.1", () =>
    Effect.gen(function*() {
      const h = yield* harness({ routes, sseIntervalMs: 10, sseEvents: 1 })
      const target = `${API}:${h.upstreamPort}`

      const h2Socket = yield* tunnelTls(h.proxyPort, h.bottleCa, target, ["h2"])
      // No client-side pings or timeouts: only the proxy may close this session.
      const session = http2.connect(`https://${target}`, { createConnection: () => h2Socket })
      session.on("error", () => {})
      yield* Effect.addFinalizer(() => Effect.sync(() => session.destroy()))
      assert.deepStrictEqual(yield* Effect.promise(() => h2Get(session, target, "/sse")), { status: 200, events: 1 })

      const h1Socket = yield* tunnelTls(h.proxyPort, h.bottleCa, target, ["http/1.1"])
      h1Socket.on("error", () => {})
      assert.deepStrictEqual(yield* Effect.promise(() => h1Get(h1Socket, target, "/sse")), { status: 200, events: 1 })

      // Bounded wait, well past the 1.5 s timeout (and past HTTP/1.1's 5 s keep-alive default).
      const [h2Closed, h1Closed] = yield* Effect.promise(() => Promise.all([closedWithin(h2Socket, 10_000), closedWithin(h1Socket, 10_000)]))
      assert.isTrue(h2Closed, "the quiet HTTP/2 tunnel was closed")
      assert.isTrue(h1Closed, "the quiet HTTP/1.1 tunnel was closed")
    }), 20_000)
})
