/**
 * Attacks from the egress security review, each performed for real through the daemon: the
 * path check and the forwarded path must not disagree, no second name for the host may reach
 * the upstream, the injected token must not come back to the agent by any channel we can see,
 * and what the agent sends must not carry another route's token by a side door.
 */
import * as http from "node:http"
import * as https from "node:https"
import type * as net from "node:net"
import * as zlib from "node:zlib"
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import WebSocket from "ws"
import { readAudit } from "../../src/schema/AuditLog.ts"
import { connectTunnel, h2OverTunnel, proxiedRequest, rawOverTunnel, rawToProxy, tlsOverTunnel } from "./support/client.ts"
import { API, EVIL, harness, OTHER, OTHER_TOKEN, REAL_TOKEN } from "./support/harness.ts"

const routes = (port: number, httpPort = 1) => `routes:
  - host: ${API}
    ports: [${port}]
    allow_private_ips: true
    paths: [/v1/, /echo-everywhere, /ws]
    auth: { scheme: Bearer, token_env: API_TOKEN, alternates: [x-api-key] }
  - host: ${OTHER}
    ports: [${port}]
    allow_private_ips: true
    auth: { header: x-other-key, token_env: OTHER_TOKEN }
  - host: ${OTHER}
    ports: [${httpPort}]
    allow_private_ips: true
    paths: [/debian/]
    methods: [GET]
`

/** A plain-HTTP upstream (for absolute-form proxying), recording the request targets. */
const plainUpstream = Effect.acquireRelease(
  Effect.promise(
    () =>
      new Promise<{ port: number; got: Array<string>; server: http.Server }>((resolve) => {
        const got: Array<string> = []
        const server = http.createServer((req, res) => {
          got.push(req.url ?? "")
          res.end(`ok ${req.url}`)
        })
        server.listen(0, "127.0.0.1", () => resolve({ port: (server.address() as net.AddressInfo).port, got, server }))
      })
  ),
  (u) => Effect.promise(() => new Promise<void>((r) => u.server.close(() => r())))
)

const statusOf = (reply: string): number => Number(/^HTTP\/1\.1 (\d{3})/.exec(reply)?.[1] ?? 0)

describe("egress attacks", () => {
  it.live("path allowlist: backslashes, dot segments and parser disagreements are refused, in a tunnel and in absolute form", () =>
    Effect.gen(function*() {
      const plain = yield* plainUpstream
      const h = yield* harness({ routes: (port) => routes(port, plain.port) })
      const target = `${API}:${h.upstreamPort}`
      // WHATWG turns `\` into `/` and resolves `..`: `/v1/..\admin` would reach `/admin`.
      for (const path of ["/v1/..\\admin", "/v1/%2e%2e/admin", "/v1/x%2f..%2f..%2fadmin", "/v1/..%5cadmin", "/v1/x\\..\\..\\admin"]) {
        const reply = yield* Effect.promise(() =>
          rawOverTunnel({ proxyPort: h.proxyPort, ca: h.bottleCa, target, sni: API, bytes: `GET ${path} HTTP/1.1\r\nHost: ${target}\r\nConnection: close\r\n\r\n` })
        )
        assert.strictEqual(statusOf(reply), 403, `${path}: ${reply}`)
        assert.include(reply, "not canonical")
      }
      assert.strictEqual(h.upstream.received.length, 0, "nothing reached the upstream")

      // Absolute form (plain-HTTP proxying): url.parse turns `\` into `/`, and mockttp's
      // path extraction and url.parse disagree on `host:port?/allowed`.
      const base = `http://${OTHER}:${plain.port}`
      for (const url of [`${base}/debian/..\\secret`, `${base}?/debian/x`, `${base}/debian/%2e%2e/secret`]) {
        const reply = yield* Effect.promise(() => rawToProxy(h.proxyPort, `GET ${url} HTTP/1.1\r\nHost: ${OTHER}:${plain.port}\r\nConnection: close\r\n\r\n`))
        assert.strictEqual(statusOf(reply), 403, `${url}: ${reply}`)
      }
      assert.deepStrictEqual(plain.got, [], "nothing reached the plain upstream")

      // Controls: allowed paths still pass, through both doors.
      const ok = yield* Effect.promise(() => rawToProxy(h.proxyPort, `GET ${base}/debian/x?q=1 HTTP/1.1\r\nHost: ${OTHER}:${plain.port}\r\nConnection: close\r\n\r\n`))
      assert.strictEqual(statusOf(ok), 200, ok)
      assert.deepStrictEqual(plain.got, ["/debian/x?q=1"])
      const viaTunnel = yield* Effect.promise(() => proxiedRequest({ proxyPort: h.proxyPort, ca: h.bottleCa, host: API, port: h.upstreamPort, path: "/v1/models?x='y'" }))
      assert.strictEqual(viaTunnel.status, 200)
    }))

  it.live("no domain fronting: two Host lines (HTTP/1) or an :authority naming another host (HTTP/2) are refused", () =>
    Effect.gen(function*() {
      const h = yield* harness({ routes })
      const target = `${API}:${h.upstreamPort}`
      const dup = yield* Effect.promise(() =>
        rawOverTunnel({
          proxyPort: h.proxyPort,
          ca: h.bottleCa,
          target,
          sni: API,
          bytes: `GET /v1/x HTTP/1.1\r\nHost: ${target}\r\nHost: ${EVIL}\r\nConnection: close\r\n\r\n`
        })
      )
      assert.strictEqual(statusOf(dup), 403, dup)
      assert.include(dup, "no-domain-fronting")

      const wrongPort = yield* Effect.promise(() =>
        rawOverTunnel({ proxyPort: h.proxyPort, ca: h.bottleCa, target, sni: API, bytes: `GET /v1/x HTTP/1.1\r\nHost: ${API}:1\r\nConnection: close\r\n\r\n` })
      )
      assert.strictEqual(statusOf(wrongPort), 403, wrongPort)
      assert.include(wrongPort, "no-domain-fronting")

      const fronted = yield* Effect.promise(() =>
        h2OverTunnel({ proxyPort: h.proxyPort, ca: h.bottleCa, target, sni: API, headers: { ":method": "GET", ":path": "/v1/y", ":authority": EVIL, host: target } })
      )
      assert.strictEqual(fronted.status, 403, fronted.body)
      assert.include(fronted.body, "no-domain-fronting")
      assert.strictEqual(h.upstream.received.length, 0, "nothing reached the upstream")

      // Control: a consistent HTTP/2 request passes.
      const ok = yield* Effect.promise(() =>
        h2OverTunnel({ proxyPort: h.proxyPort, ca: h.bottleCa, target, sni: API, headers: { ":method": "GET", ":path": "/v1/y", ":authority": target } })
      )
      assert.strictEqual(ok.status, 200, ok.body)
    }))

  it.live("the injected token does not come back: response headers, trailers, a gzip-requested body; an encoded response is refused", () =>
    Effect.gen(function*() {
      const h = yield* harness({ routes })
      const target = `${API}:${h.upstreamPort}`
      const reply = yield* Effect.promise(() =>
        rawOverTunnel({
          proxyPort: h.proxyPort,
          ca: h.bottleCa,
          target,
          sni: API,
          bytes: `GET /echo-everywhere HTTP/1.1\r\nHost: ${target}\r\nAccept-Encoding: gzip\r\nTE: trailers\r\nConnection: close\r\n\r\n`
        })
      )
      assert.strictEqual(statusOf(reply), 200, reply)
      // The upstream did get the real token (so it did echo it), asked for an identity body.
      const got = h.upstream.received.at(-1)!
      assert.strictEqual(got.headers["authorization"], `Bearer ${REAL_TOKEN}`)
      assert.strictEqual(got.headers["accept-encoding"], "identity")
      assert.notInclude(reply, REAL_TOKEN, "not in headers, trailers or the (plain) body")
      assert.include(reply, "x-echo-auth: Bearer *")
      assert.include(reply, "x-echo-trailer: Bearer *")
      assert.notMatch(reply, /content-encoding/i)

      // An upstream that encodes anyway: the body cannot be redacted, so it is refused.
      const forced = yield* Effect.promise(() =>
        rawOverTunnel({ proxyPort: h.proxyPort, ca: h.bottleCa, target, sni: API, bytes: `GET /echo-everywhere?gzip=always HTTP/1.1\r\nHost: ${target}\r\nConnection: close\r\n\r\n` })
      )
      assert.strictEqual(statusOf(forced), 502, forced)
      assert.include(forced, "encoded-response")
      const body = Buffer.from(forced.slice(forced.indexOf("\r\n\r\n") + 4), "latin1")
      assert.notInclude(forced, REAL_TOKEN)
      assert.throws(() => zlib.gunzipSync(body))
    }))

  it.live("addresses: a routed name that resolves to loopback is refused unless its route allows private IPs; link-local (cloud metadata) always", () =>
    Effect.gen(function*() {
      const META = "metadata.example.test"
      const h = yield* harness({
        routes: (port) => `routes:
  - host: ${API}
    ports: [${port}]
    allow_private_ips: true
  - host: ${OTHER}
    ports: [${port}]
    auth: { scheme: Bearer, token_env: API_TOKEN }
  - host: ${META}
    ports: [${port}]
    allow_private_ips: true
`,
        dns: { [META]: "169.254.169.254" },
        // A held token starting with the refusal's last letter: the redactor holds that letter
        // back until the response ends, and must then release it (HTTP/2 included).
        env: { API_TOKEN: `e2e-${REAL_TOKEN}`, OTHER_TOKEN }
      })
      const get = (host: string) => Effect.promise(() => proxiedRequest({ proxyPort: h.proxyPort, ca: h.bottleCa, host, port: h.upstreamPort, path: "/echo" }))
      // Positive control: the same upstream, through a route that allows private addresses.
      assert.strictEqual((yield* get(API)).status, 200)

      const loopback = yield* get(OTHER)
      assert.strictEqual(loopback.status, 502)
      assert.include(loopback.body, "resolves to 127.0.0.1")
      assert.include(loopback.body, "allow_private_ips: true")
      assert.isTrue(loopback.body.endsWith("allow_private_ips: true"), loopback.body)
      const overH2 = yield* Effect.promise(() =>
        h2OverTunnel({ proxyPort: h.proxyPort, ca: h.bottleCa, target: `${OTHER}:${h.upstreamPort}`, sni: OTHER, headers: { ":method": "GET", ":path": "/echo" } })
      )
      assert.strictEqual(overH2.status, 502)
      assert.isTrue(overH2.body.endsWith("allow_private_ips: true"), overH2.body)
      const metadata = yield* get(META)
      assert.strictEqual(metadata.status, 502)
      assert.include(metadata.body, "169.254.169.254")
      assert.include(metadata.body, "link-local")
      // WebSockets take the same path upstream.
      const ws = yield* Effect.promise(async () => {
        const tunnel = await connectTunnel(h.proxyPort, `${OTHER}:${h.upstreamPort}`)
        if (!("socket" in tunnel)) throw new Error("refused")
        const socket = await tlsOverTunnel(tunnel.socket, h.bottleCa, OTHER)
        return new Promise<string>((resolve) => {
          const client = new WebSocket(`wss://${OTHER}:${h.upstreamPort}/ws`, { createConnection: () => socket } as WebSocket.ClientOptions)
          client.on("open", () => resolve("open"))
          client.on("unexpected-response", (_req, res) => resolve(`status ${res.statusCode}`))
          client.on("error", (e) => resolve(`error ${e.message}`))
        })
      })
      assert.notStrictEqual(ws, "open")
      // Nothing reached the upstream but the positive control.
      assert.deepStrictEqual(h.upstream.received.map((r) => String(r.headers["host"]).split(":")[0]), [API])
      // The audit says who refused what: the route allowed the request, the address check did not.
      yield* Effect.sleep("100 millis")
      const refused = (yield* readAudit(h.stateDir)).filter((e) => e.host === OTHER && e.path === "/echo")
      assert.isAtLeast(refused.length, 2)
      for (const e of refused) {
        assert.strictEqual(e.decision, "deny")
        assert.strictEqual(e.rule, "upstream-address")
        assert.strictEqual(e.status, 502)
        assert.include(e.reason ?? "", "resolves to 127.0.0.1")
      }
    }))

  it.live("the injected token does not come back in a 103 Early Hints header, the reason phrase or a header name", () =>
    Effect.gen(function*() {
      const h = yield* harness({ routes })
      const target = `${API}:${h.upstreamPort}`
      const got = yield* Effect.promise(async () => {
        const tunnel = await connectTunnel(h.proxyPort, target)
        if (!("socket" in tunnel)) throw new Error("refused")
        const socket = await tlsOverTunnel(tunnel.socket, h.bottleCa, API)
        return new Promise<{ hints: string; status: string; raw: string; body: string }>((resolve, reject) => {
          let hints = ""
          const req = https.request({ host: API, path: "/echo-everywhere/hints", headers: { host: target }, createConnection: () => socket }, (res) => {
            let body = ""
            res.on("data", (c: Buffer) => (body += c.toString()))
            res.on("end", () => resolve({ hints, status: res.statusMessage ?? "", raw: res.rawHeaders.join("\n"), body }))
          })
          req.on("information", (info) => (hints += `${info.statusCode} ${info.rawHeaders.join("\n")}`))
          req.on("error", reject)
          req.end()
        })
      })
      assert.strictEqual(h.upstream.received.at(-1)?.headers["authorization"], `Bearer ${REAL_TOKEN}`, "the upstream got the token")
      assert.strictEqual(got.body, "ok")
      assert.include(got.hints, "103", "the hint arrived")
      assert.include(got.hints, "x-hint-auth")
      assert.include(got.raw, "named", "the header named after the token arrived")
      for (const part of [got.hints, got.status, got.raw]) assert.notInclude(part, REAL_TOKEN)
    }))

  it.live("WebSocket: an upgrade the upstream refuses (echoing the token) reaches the agent as egress's own 502, without the token", () =>
    Effect.gen(function*() {
      const h = yield* harness({ routes })
      const target = `${API}:${h.upstreamPort}`
      const reply = yield* Effect.promise(() =>
        rawOverTunnel({
          proxyPort: h.proxyPort,
          ca: h.bottleCa,
          target,
          sni: API,
          bytes: `GET /ws/refuse HTTP/1.1\r\nHost: ${target}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n`
        })
      )
      // The upstream did get the real token (and echoed it back)...
      assert.strictEqual(h.upstream.received.at(-1)?.headers["authorization"], `Bearer ${REAL_TOKEN}`)
      // ...but the agent sees only egress's refusal.
      assert.match(reply, /^HTTP\/1\.1 502 /)
      assert.include(reply, "upgrade-refused")
      assert.include(reply, "403")
      assert.notInclude(reply, REAL_TOKEN)
      assert.notInclude(reply, "no websocket for")
    }))

  it.live("WebSocket: the injected token echoed by the upstream is redacted in messages to the agent", () =>
    Effect.gen(function*() {
      const h = yield* harness({ routes })
      const target = `${API}:${h.upstreamPort}`
      const messages = yield* Effect.promise(async () => {
        const tunnel = await connectTunnel(h.proxyPort, target)
        if (!("socket" in tunnel)) throw new Error("refused")
        const socket = await tlsOverTunnel(tunnel.socket, h.bottleCa, API)
        return new Promise<Array<string>>((resolve, reject) => {
          const got: Array<string> = []
          const ws = new WebSocket(`wss://${target}/ws`, { createConnection: () => socket } as WebSocket.ClientOptions)
          ws.on("open", () => ws.send("whoami"))
          ws.on("message", (m) => {
            got.push(m.toString())
            if (got.length === 1) ws.send("plain message")
            else ws.close()
          })
          ws.on("close", () => resolve(got))
          ws.on("error", reject)
        })
      })
      assert.strictEqual(h.upstream.received.at(-1)!.headers["authorization"], `Bearer ${REAL_TOKEN}`)
      assert.strictEqual(messages[0], `you are Bearer ${"*".repeat(REAL_TOKEN.length)}`)
      assert.strictEqual(messages[1], "echo:plain message")
    }))

  it.live("DLP side doors: Proxy-Authorization is stripped; a token split across headers, in a trailer, or in base64/hex is blocked", () =>
    Effect.gen(function*() {
      const h = yield* harness({ routes })
      const target = `${API}:${h.upstreamPort}`
      const send = (bytes: string) => Effect.promise(() => rawOverTunnel({ proxyPort: h.proxyPort, ca: h.bottleCa, target, sni: API, bytes }))

      const proxyAuth = yield* send(`GET /v1/z HTTP/1.1\r\nHost: ${target}\r\nProxy-Authorization: Basic ${OTHER_TOKEN}\r\nConnection: close\r\n\r\n`)
      assert.strictEqual(statusOf(proxyAuth), 200, proxyAuth)
      assert.notMatch(h.upstream.received.at(-1)!.rawHeaders.join("\n"), /proxy-authorization/i)

      const before = h.upstream.received.length
      const half = Math.floor(OTHER_TOKEN.length / 2)
      const split = yield* send(`GET /v1/s HTTP/1.1\r\nHost: ${target}\r\nX-A: ${OTHER_TOKEN.slice(0, half)}\r\nX-B: ${OTHER_TOKEN.slice(half)}\r\nConnection: close\r\n\r\n`)
      assert.strictEqual(statusOf(split), 403, split)
      assert.include(split, "$OTHER_TOKEN")

      const trailer = yield* send(
        `POST /v1/t HTTP/1.1\r\nHost: ${target}\r\nTransfer-Encoding: chunked\r\nTrailer: X-T\r\nConnection: close\r\n\r\n2\r\nhi\r\n0\r\nX-T: ${OTHER_TOKEN}\r\n\r\n`
      )
      assert.strictEqual(statusOf(trailer), 403, trailer)
      assert.include(trailer, "trailer carries")

      const encodings = {
        base64: Buffer.from(`{"k":"${OTHER_TOKEN}"}`).toString("base64"),
        base64at1: Buffer.from(`x${OTHER_TOKEN}`).toString("base64"),
        base64at2: Buffer.from(`xy${OTHER_TOKEN}`).toString("base64url"),
        hex: Buffer.from(OTHER_TOKEN).toString("hex").toUpperCase()
      }
      for (const [name, body] of Object.entries(encodings)) {
        const reply = yield* send(`POST /v1/b HTTP/1.1\r\nHost: ${target}\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n${body}`)
        assert.strictEqual(statusOf(reply), 403, `${name}: ${reply}`)
        assert.include(reply, "$OTHER_TOKEN")
      }
      for (const r of h.upstream.received.slice(before)) assert.notInclude(r.body + r.rawTrailers.join(" "), OTHER_TOKEN)
      assert.isAtMost(h.upstream.received.length - before, 1, "only the trailer request's body may have started upstream (aborted)")
    }))
})
