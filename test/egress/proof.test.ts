/**
 * Tests that pin what the egress guarantees claim, each written against a deliberate break of
 * the code that keeps the claim (the break each one catches is named in its title; see the
 * test-proof notes of issue 13):
 * - a route without `auth` never carries another route's token (HTTP/1, HTTP/2, plain-HTTP
 *   proxying and WebSocket upgrades): the agent's own headers pass as sent, nothing is added;
 * - a wildcard `*.svc.example.test` admits subdomains only: not `evilsvc.example.test`, not
 *   the bare `svc.example.test`;
 * - a credential route never injects over plain http://;
 * - the request-body scanner forwards nothing of a token before the window that holds it has
 *   been scanned: the upstream never sees a token's first half, whatever the chunking.
 */
import * as http from "node:http"
import * as net from "node:net"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Redacted } from "effect"
import WebSocket from "ws"
import { BodyScanner, scanSetFor, scanWindowFor } from "../../bundle/egress/dlp.ts"
import { compilePolicy, decide, type RequestFacts } from "../../bundle/egress/policy.ts"
import { hostMatches } from "../../src/schema/Route.ts"
import { connectTunnel, h2OverTunnel, proxiedRequest, rawToProxy, tlsOverTunnel } from "./support/client.ts"
import { API, harness, OTHER, OTHER_TOKEN, REAL_TOKEN } from "./support/harness.ts"

const PLAIN_CRED = "ws.example.test"

const routes = (port: number, plainPort: number) => `routes:
  - host: ${API}
    ports: [${port}]
    allow_private_ips: true
    auth: { scheme: Bearer, token_env: API_TOKEN, alternates: [x-api-key] }
  - host: ${OTHER}
    ports: [${port}, ${plainPort}]
    allow_private_ips: true
  - host: "*.svc.example.test"
    ports: [${port}]
    allow_private_ips: true
    auth: { header: x-api-key, token_env: OTHER_TOKEN }
  - host: ${PLAIN_CRED}
    ports: [${plainPort}]
    allow_private_ips: true
    auth: { scheme: Bearer, token_env: API_TOKEN }
`

interface PlainRequest {
  readonly url: string
  readonly headers: http.IncomingHttpHeaders
  readonly rawHeaders: ReadonlyArray<string>
  /** The body bytes as they arrived so far (filled while the request streams). */
  body: string
}

/** A plain-HTTP upstream recording each request's headers and body as it streams in. */
const plainUpstream = Effect.acquireRelease(
  Effect.promise(
    () =>
      new Promise<{ port: number; got: Array<PlainRequest>; server: http.Server }>((resolve) => {
        const got: Array<PlainRequest> = []
        const server = http.createServer((req, res) => {
          const entry: PlainRequest = { url: req.url ?? "", headers: req.headers, rawHeaders: req.rawHeaders, body: "" }
          got.push(entry)
          req.on("data", (c: Buffer) => (entry.body += c.toString("latin1")))
          req.on("end", () => res.end(JSON.stringify({ url: req.url, headers: req.headers })))
          req.on("error", () => {})
        })
        server.listen(0, "127.0.0.1", () => resolve({ port: (server.address() as net.AddressInfo).port, got, server }))
      })
  ),
  (u) =>
    Effect.promise(() =>
      new Promise<void>((r) => {
        u.server.closeAllConnections()
        u.server.close(() => r())
      })
    )
)

const statusOf = (reply: string): number => Number(/^HTTP\/1\.1 (\d{3})/.exec(reply)?.[1] ?? 0)

/** Polls `cond` every 10 ms until it holds; fails with `what` after 5 s. */
const until = (what: string, cond: () => boolean) =>
  Effect.promise(
    () =>
      new Promise<void>((resolve, reject) => {
        const deadline = Date.now() + 5000
        const tick = () => {
          if (cond()) return resolve()
          if (Date.now() > deadline) return reject(new Error(`timed out waiting for ${what}`))
          setTimeout(tick, 10)
        }
        tick()
      })
  )

const noHeldToken = (text: string, where: string) => {
  assert.notInclude(text, REAL_TOKEN, `${where} carries $API_TOKEN`)
  assert.notInclude(text, OTHER_TOKEN, `${where} carries $OTHER_TOKEN`)
}

describe("egress proof: a route without auth carries no token", () => {
  it.live("HTTP/1, HTTP/2 and plain-HTTP proxying: the agent's own credential headers pass as sent, no token is added", () =>
    Effect.gen(function*() {
      const plain = yield* plainUpstream
      const h = yield* harness({ routes: (port) => routes(port, plain.port) })
      const own = { authorization: "Bearer agents-own-value", "x-api-key": "agents-own-key" }

      const h1 = yield* Effect.promise(() =>
        proxiedRequest({ proxyPort: h.proxyPort, ca: h.bottleCa, host: OTHER, port: h.upstreamPort, path: "/echo", headers: own })
      )
      assert.strictEqual(h1.status, 200, h1.body)
      assert.lengthOf(h.upstream.received, 1)
      const got1 = h.upstream.received[0]!
      assert.strictEqual(got1.headers["authorization"], own.authorization)
      assert.strictEqual(got1.headers["x-api-key"], own["x-api-key"])
      noHeldToken(got1.rawHeaders.join("\n"), "HTTP/1 request headers")

      const h2 = yield* Effect.promise(() =>
        h2OverTunnel({
          proxyPort: h.proxyPort,
          ca: h.bottleCa,
          target: `${OTHER}:${h.upstreamPort}`,
          sni: OTHER,
          headers: { ":method": "GET", ":path": "/echo", ":authority": `${OTHER}:${h.upstreamPort}`, ...own }
        })
      )
      assert.strictEqual(h2.status, 200, h2.body)
      assert.lengthOf(h.upstream.received, 2)
      const got2 = h.upstream.received[1]!
      assert.strictEqual(got2.headers["authorization"], own.authorization)
      noHeldToken(got2.rawHeaders.join("\n"), "HTTP/2 request headers")

      // Plain-HTTP proxying (absolute form) to the same credential-less route.
      const target = `${OTHER}:${plain.port}`
      const reply = yield* Effect.promise(() =>
        rawToProxy(h.proxyPort, `GET http://${target}/x HTTP/1.1\r\nHost: ${target}\r\nAuthorization: ${own.authorization}\r\nConnection: close\r\n\r\n`)
      )
      assert.strictEqual(statusOf(reply), 200, reply)
      assert.lengthOf(plain.got, 1)
      assert.strictEqual(plain.got[0]!.headers["authorization"], own.authorization)
      noHeldToken(plain.got[0]!.rawHeaders.join("\n"), "plain-HTTP request headers")

      // Control: the credential route does get its token (so the checks above can see one).
      const cred = yield* Effect.promise(() => proxiedRequest({ proxyPort: h.proxyPort, ca: h.bottleCa, host: API, port: h.upstreamPort, path: "/echo" }))
      assert.strictEqual(cred.status, 200)
      assert.strictEqual(h.upstream.received.at(-1)!.headers["authorization"], `Bearer ${REAL_TOKEN}`)
    }))

  it.live("WebSocket upgrade: the agent's own Authorization passes as sent, no token is added", () =>
    Effect.gen(function*() {
      const plain = yield* plainUpstream
      const h = yield* harness({ routes: (port) => routes(port, plain.port) })
      const upgrade = (host: string, headers: Record<string, string>) =>
        Effect.promise(async () => {
          const target = `${host}:${h.upstreamPort}`
          const tunnel = await connectTunnel(h.proxyPort, target)
          if (!("socket" in tunnel)) throw new Error(`tunnel refused: ${tunnel.status}`)
          const socket = await tlsOverTunnel(tunnel.socket, h.bottleCa, host)
          return new Promise<Array<string>>((resolve, reject) => {
            const got: Array<string> = []
            const ws = new WebSocket(`wss://${target}/ws`, { headers, createConnection: () => socket } as WebSocket.ClientOptions)
            ws.on("open", () => ws.send("whoami"))
            ws.on("message", (m) => {
              got.push(m.toString())
              ws.close()
            })
            ws.on("close", () => resolve(got))
            ws.on("error", reject)
          })
        })
      const messages = yield* upgrade(OTHER, { authorization: "Bearer agents-own-value" })
      assert.deepStrictEqual(messages, ["you are Bearer agents-own-value"])
      assert.lengthOf(h.upstream.received, 1)
      const got = h.upstream.received[0]!
      assert.strictEqual(got.headers["authorization"], "Bearer agents-own-value")
      noHeldToken(got.rawHeaders.join("\n"), "WebSocket upgrade headers")

      // Control: on the credential route the upgrade does carry the token.
      yield* upgrade(API, {})
      assert.strictEqual(h.upstream.received.at(-1)!.headers["authorization"], `Bearer ${REAL_TOKEN}`)
    }))
})

describe("egress proof: wildcard routes", () => {
  it("hostMatches: *.svc.example.test admits subdomains only", () => {
    const pattern = "*.svc.example.test"
    assert.isTrue(hostMatches(pattern, "a.svc.example.test"))
    assert.isTrue(hostMatches(pattern, "a.b.svc.example.test"))
    assert.isFalse(hostMatches(pattern, "svc.example.test"), "the bare domain")
    assert.isFalse(hostMatches(pattern, "evilsvc.example.test"), "a name that merely ends the same")
    assert.isFalse(hostMatches(pattern, ".svc.example.test"), "an empty label")
    assert.isFalse(hostMatches(pattern, "a.svc.example.test.evil"))
  })

  it.live("CONNECT and plain-HTTP proxying to evilsvc.example.test or the bare svc.example.test are refused", () =>
    Effect.gen(function*() {
      const plain = yield* plainUpstream
      const h = yield* harness({ routes: (port) => routes(port, plain.port), dns: { "evilsvc.example.test": "127.0.0.1", "svc.example.test": "127.0.0.1" } })
      for (const host of ["evilsvc.example.test", "svc.example.test"]) {
        const tunnel = yield* Effect.promise(() => connectTunnel(h.proxyPort, `${host}:${h.upstreamPort}`))
        if ("socket" in tunnel) tunnel.socket.destroy()
        assert.isTrue("status" in tunnel && tunnel.status === 403, `${host}: CONNECT was admitted`)
        assert.include("body" in tunnel ? tunnel.body : "", "default-deny")
      }
      // Control: a subdomain is admitted.
      const ok = yield* Effect.promise(() => connectTunnel(h.proxyPort, `a.svc.example.test:${h.upstreamPort}`))
      assert.isTrue("socket" in ok, "a.svc.example.test: CONNECT refused")
      if ("socket" in ok) ok.socket.destroy()
      assert.strictEqual(h.upstream.received.length, 0)
    }))

  it("decide: a request to evilsvc.example.test or svc.example.test is not routed by the wildcard (and gets no token)", () => {
    const { policy } = compilePolicy(
      [{ host: "*.svc.example.test", auth: { header: "x-api-key", token_env: "OTHER_TOKEN" } }],
      { get: (env) => (env === "OTHER_TOKEN" ? Redacted.make(OTHER_TOKEN) : undefined) }
    )
    const facts = (host: string): RequestFacts => ({
      method: "GET",
      host,
      port: 443,
      tls: true,
      tunnelHost: host,
      sni: host,
      hostHeaders: [["host", host]],
      urlHost: undefined,
      pathAndQuery: "/",
      forwardedPath: "/",
      headers: []
    })
    for (const host of ["evilsvc.example.test", "svc.example.test"]) {
      const d = decide({ ...policy, tokens: [], needles: [] }, facts(host))
      assert.strictEqual(d._tag, "Deny", host)
      if (d._tag === "Deny") assert.strictEqual(d.rule, "default-deny", host)
    }
    assert.strictEqual(decide({ ...policy, tokens: [], needles: [] }, facts("a.svc.example.test"))._tag, "Allow")
  })
})

describe("egress proof: credentials only over TLS", () => {
  it.live("a credential route reached by plain-HTTP proxying is refused, and nothing (no token) reaches the upstream", () =>
    Effect.gen(function*() {
      const plain = yield* plainUpstream
      const h = yield* harness({ routes: (port) => routes(port, plain.port) })
      const target = `${PLAIN_CRED}:${plain.port}`
      for (const method of ["GET", "POST"]) {
        const reply = yield* Effect.promise(() =>
          rawToProxy(h.proxyPort, `${method} http://${target}/x HTTP/1.1\r\nHost: ${target}\r\nContent-Length: 2\r\nConnection: close\r\n\r\nhi`)
        )
        assert.strictEqual(statusOf(reply), 403, reply)
        assert.include(reply, "credentials are injected over TLS only")
        noHeldToken(reply, "the refusal")
      }
      // A WebSocket upgrade over plain HTTP to the same route: refused too.
      const ws = yield* Effect.promise(() =>
        rawToProxy(
          h.proxyPort,
          `GET http://${target}/ws HTTP/1.1\r\nHost: ${target}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n`
        )
      )
      assert.strictEqual(statusOf(ws), 403, ws)
      assert.deepStrictEqual(plain.got, [], "nothing reached the plain upstream")
      // Control: the same upstream is reachable through a credential-less route.
      const ok = yield* Effect.promise(() => rawToProxy(h.proxyPort, `GET http://${OTHER}:${plain.port}/x HTTP/1.1\r\nHost: ${OTHER}:${plain.port}\r\nConnection: close\r\n\r\n`))
      assert.strictEqual(statusOf(ok), 200, ok)
      assert.lengthOf(plain.got, 1)
    }))
})

describe("egress proof: the body scanner forwards nothing of a token before scanning it", () => {
  const held = [{ env: "API_TOKEN", value: REAL_TOKEN }]
  const needles = scanSetFor(held)
  const window = scanWindowFor(needles)

  it("every split of a body into two chunks: the token is found, and nothing of it was forwarded before", () => {
    const body = Buffer.from(`${"a".repeat(600)}${REAL_TOKEN}${"b".repeat(40)}`)
    const at = 600
    for (let cut = 1; cut < body.length; cut++) {
      const scanner = new BodyScanner(needles, undefined, window)
      const first = scanner.push(body.subarray(0, cut))
      // Found in the first chunk (when it holds the whole token) or the second: never passed.
      if (!Buffer.isBuffer(first)) {
        assert.isAtLeast(cut, at + REAL_TOKEN.length, `cut ${cut}: a finding before the token was whole`)
        continue
      }
      assert.isAtMost(first.length, at, `cut ${cut}: forwarded ${first.length} bytes, into the token (starts at ${at})`)
      const second = scanner.push(body.subarray(cut))
      assert.isFalse(Buffer.isBuffer(second), `cut ${cut}: the token split there was not found`)
    }
  })

  it("byte by byte: the token is found, and no byte of it was forwarded", () => {
    const body = Buffer.from(`${"a".repeat(300)}${REAL_TOKEN}tail`)
    const scanner = new BodyScanner(needles, undefined, window)
    let forwarded = ""
    let found = false
    for (let i = 0; i < body.length && !found; i++) {
      const out = scanner.push(body.subarray(i, i + 1))
      if (Buffer.isBuffer(out)) forwarded += out.toString("latin1")
      else found = true
    }
    assert.isTrue(found, "token not found")
    assert.strictEqual(forwarded, "a".repeat(forwarded.length), `forwarded more than the padding: ${forwarded.slice(-40)}`)
  })

  it.live("through the proxy: a body streamed in two parts, the token split between them, never shows the upstream its first half", () =>
    Effect.gen(function*() {
      const plain = yield* plainUpstream
      const h = yield* harness({ routes: (port) => routes(port, plain.port) })
      const target = `${OTHER}:${plain.port}`
      const half = Math.floor(REAL_TOKEN.length / 2)
      const pad = "a".repeat(4000)
      const first = `${pad}${REAL_TOKEN.slice(0, half)}`
      const second = `${REAL_TOKEN.slice(half)}${"b".repeat(100)}`
      const socket = yield* Effect.promise(
        () =>
          new Promise<net.Socket>((resolve, reject) => {
            const s = net.connect(h.proxyPort, "127.0.0.1", () => resolve(s))
            s.once("error", reject)
          })
      )
      let reply = ""
      socket.on("data", (c: Buffer) => (reply += c.toString("latin1")))
      socket.on("error", () => {})
      socket.write(`POST http://${target}/up HTTP/1.1\r\nHost: ${target}\r\nContent-Length: ${first.length + second.length}\r\nConnection: close\r\n\r\n${first}`)
      // The padding before the held-back window is forwarded at once: wait for it upstream.
      yield* until("the padding to reach the upstream", () => (plain.got[0]?.body.length ?? 0) >= pad.length - window)
      assert.notInclude(plain.got[0]!.body, REAL_TOKEN.slice(0, half), "the token's first half was forwarded before the rest was scanned")
      assert.match(plain.got[0]!.body, /^a+$/)
      socket.write(second)
      yield* until("the refusal", () => reply.includes("\r\n\r\n") && reply.includes("dlp"))
      socket.destroy()
      assert.strictEqual(statusOf(reply), 403, reply)
      assert.include(reply, "body carries the value of $API_TOKEN")
      for (const r of plain.got) assert.notInclude(r.body, REAL_TOKEN.slice(0, half))
    }))
})
