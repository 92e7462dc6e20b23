/**
 * The egress proxy against real TLS: a loopback HTTPS upstream with a certificate for made-up
 * names, reached through the daemon with clients that trust only the bottle CA.
 */
import { execFile } from "node:child_process"
import * as http from "node:http"
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { connectTunnel, proxiedRequest, tlsOverTunnel } from "./support/client.ts"
import { API, EVIL, harness, OTHER, OTHER_TOKEN, REAL_TOKEN } from "./support/harness.ts"
import * as fs from "node:fs/promises"
import * as path from "node:path"
import * as https from "node:https"

const routes = (port: number) => `# test routes
routes:
  - host: ${API}
    ports: [${port}]
    allow_private_ips: true
    methods: [GET, POST]
    paths: [/echo, /sse, /v1/]
    auth: { scheme: Bearer, token_env: API_TOKEN, alternates: [x-api-key] }
  - host: ${OTHER}
    ports: [${port}]
    allow_private_ips: true
  - host: "*.svc.example.test"
    ports: [${port}]
    allow_private_ips: true
    auth: { header: x-api-key, token_env: OTHER_TOKEN }
`

const curl = (args: ReadonlyArray<string>) =>
  Effect.promise(
    () =>
      new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
        execFile("curl", ["-sS", "--max-time", "10", ...args], (error, stdout, stderr) =>
          resolve({ code: error ? (typeof error.code === "number" ? error.code : 1) : 0, stdout, stderr })
        )
      })
  )

const request = (h: { proxyPort: number; bottleCa: string; upstreamPort: number }, host: string, extra: Partial<Parameters<typeof proxiedRequest>[0]> = {}) =>
  Effect.promise(() => proxiedRequest({ proxyPort: h.proxyPort, ca: h.bottleCa, host, port: h.upstreamPort, ...extra }))

describe("egress proxy", () => {
  it.live("routed host: upstream gets the real token, the client sent a placeholder (Node client)", () =>
    Effect.gen(function*() {
      const h = yield* harness({ routes })
      const res = yield* request(h, API, {
        path: "/echo",
        method: "POST",
        headers: { authorization: ["Bearer placeholder", "Bearer second-copy"], "x-api-key": "placeholder-key" },
        body: "hello"
      })
      assert.strictEqual(res.status, 200)
      const got = h.upstream.received.at(-1)!
      // Every copy the agent sent is gone (mockttp's own updateHeaders skips adjacent copies).
      assert.strictEqual(got.headers["authorization"], `Bearer ${REAL_TOKEN}`)
      assert.strictEqual(got.headers["x-api-key"], undefined)
      assert.strictEqual(got.body, "hello")
      assert.notInclude(got.rawHeaders.join("\n"), "placeholder")
      // The response echoed the injected token: redacted on the way back.
      assert.notInclude(res.body, REAL_TOKEN)
    }))

  it.live("a request sent once the port is bound, before the proxy engine is up, waits and is served whole", () =>
    Effect.gen(function*() {
      // The daemon says ready once its port is bound; the agent may send at once. Its request
      // is held, unread, and served (token injected) once the engine takes the port over. The
      // upstream's root is trusted only as an extra CA: a 200 shows the trust store was set
      // before the held request went upstream.
      let early: Promise<Awaited<ReturnType<typeof proxiedRequest>>> | undefined
      const h = yield* harness({
        routes,
        onBound: (b) =>
          Effect.promise(async () => {
            const ca = await fs.readFile(path.join(b.stateDir, "ca.pem"), "utf8")
            early = proxiedRequest({ proxyPort: b.proxyPort, ca, host: API, port: b.upstreamPort, path: "/echo", method: "POST", body: "early" })
            early.catch(() => {})
            // The engine is not loaded while this runs: the request sits in the held queue.
            await new Promise((r) => setTimeout(r, 150))
          })
      })
      assert.isDefined(early)
      const res = yield* Effect.promise(() => early!)
      assert.strictEqual(res.status, 200)
      const got = h.upstream.received.find((r) => r.body === "early")
      assert.isDefined(got)
      assert.strictEqual(got!.headers["authorization"], `Bearer ${REAL_TOKEN}`)
    }))

  it.live("routed host with curl (HTTP/2 to the proxy): real token injected; unrouted host refused", () =>
    Effect.gen(function*() {
      const h = yield* harness({ routes })
      const caFile = path.join(h.dir, "bottle-ca.pem")
      yield* Effect.promise(() => fs.writeFile(caFile, h.bottleCa))
      const ok = yield* curl([
        "--proxy", `http://127.0.0.1:${h.proxyPort}`, "--cacert", caFile,
        "-H", "authorization: Bearer placeholder", "-w", "\\n%{http_code} %{http_version}",
        `https://${API}:${h.upstreamPort}/echo-auth`
      ])
      assert.strictEqual(ok.code, 0, ok.stderr)
      // /echo-auth is not under the route's paths: refused with the rule named.
      assert.match(ok.stdout, /routes\[0\] \(api\.example\.test\)/)
      assert.match(ok.stdout, /\n403 2$/)
      const echo = yield* curl([
        "--proxy", `http://127.0.0.1:${h.proxyPort}`, "--cacert", caFile,
        "-H", "authorization: Bearer placeholder", "-w", "\\n%{http_code}",
        `https://${API}:${h.upstreamPort}/echo`
      ])
      assert.strictEqual(echo.code, 0, echo.stderr)
      assert.match(echo.stdout, /\n200$/)
      assert.strictEqual(h.upstream.received.at(-1)!.headers["authorization"], `Bearer ${REAL_TOKEN}`)
      const denied = yield* curl(["--proxy", `http://127.0.0.1:${h.proxyPort}`, "--cacert", caFile, `https://${EVIL}:${h.upstreamPort}/`])
      assert.notStrictEqual(denied.code, 0)
      assert.match(denied.stderr, /403/)
    }))

  it.live("unrouted host, wrong method, wrong path, wrong port → 403 naming the rule", () =>
    Effect.gen(function*() {
      const h = yield* harness({ routes })
      const unrouted = yield* Effect.promise(() => connectTunnel(h.proxyPort, `${EVIL}:${h.upstreamPort}`))
      assert.ok("status" in unrouted && unrouted.status === 403)
      assert.match("body" in unrouted ? unrouted.body : "", /"rule":"default-deny"/)

      const method = yield* request(h, API, { path: "/echo", method: "DELETE" })
      assert.strictEqual(method.status, 403)
      assert.include(method.body, "routes[0] (api.example.test)")
      assert.include(method.body, "method DELETE not allowed")

      const wrongPath = yield* request(h, API, { path: "/admin" })
      assert.strictEqual(wrongPath.status, 403)
      assert.include(wrongPath.body, "path /admin not allowed")

      const dots = yield* request(h, API, { path: "/v1/../admin" })
      assert.strictEqual(dots.status, 403)
      assert.include(dots.body, "not canonical")

      // A route without `ports` admits 443 only: CONNECT to another port is refused up front.
      const port443 = yield* Effect.promise(() => connectTunnel(h.proxyPort, `${API}:8443`))
      assert.ok("status" in port443 && port443.status === 403)
      assert.include("body" in port443 ? port443.body : "", "port 8443 not allowed")

      const received = h.upstream.received.length
      assert.strictEqual(received, 0, "nothing reached the upstream")

      // Plain HTTP proxying (absolute URL) to an unrouted host is refused too.
      const plain = yield* Effect.promise(
        () =>
          new Promise<{ status: number; body: string }>((resolve, reject) => {
            const req = http.request({ host: "127.0.0.1", port: h.proxyPort, path: `http://${EVIL}/x`, headers: { host: EVIL } }, (res) => {
              let body = ""
              res.on("data", (c) => (body += c))
              res.on("end", () => resolve({ status: res.statusCode ?? 0, body }))
            })
            req.on("error", reject)
            req.end()
          })
      )
      assert.strictEqual(plain.status, 403)
      assert.include(plain.body, "default-deny")
    }))

  it.live("SNI or Host disagreeing with the CONNECT target → refused (no domain fronting)", () =>
    Effect.gen(function*() {
      const h = yield* harness({ routes })
      const sni = yield* request(h, API, { path: "/echo", sni: OTHER })
      assert.strictEqual(sni.status, 403)
      assert.include(sni.body, "no-domain-fronting")
      const host = yield* request(h, OTHER, { path: "/echo", headers: { host: `${API}:${h.upstreamPort}` } })
      assert.strictEqual(host.status, 403)
      assert.include(host.body, "no-domain-fronting")
      assert.strictEqual(h.upstream.received.length, 0)
    }))

  it.live("server-sent events arrive as sent, spread out in time", () =>
    Effect.gen(function*() {
      const h = yield* harness({ routes, sseIntervalMs: 150 })
      const arrivals = yield* Effect.promise(async () => {
        const tunnel = await connectTunnel(h.proxyPort, `${API}:${h.upstreamPort}`)
        if (!("socket" in tunnel)) throw new Error("refused")
        const socket = await tlsOverTunnel(tunnel.socket, h.bottleCa, API)
        return new Promise<Array<number>>((resolve, reject) => {
          const times: Array<number> = []
          const req = https.request({ host: API, path: "/sse", headers: { host: `${API}:${h.upstreamPort}` }, createConnection: () => socket }, (res) => {
            let buf = ""
            res.on("data", (c: Buffer) => {
              buf += c.toString()
              while (buf.includes("\n\n")) {
                buf = buf.slice(buf.indexOf("\n\n") + 2)
                times.push(performance.now())
              }
            })
            res.on("end", () => resolve(times))
          })
          req.on("error", reject)
          req.end()
        })
      })
      assert.strictEqual(arrivals.length, 5)
      const gaps = arrivals.slice(1).map((t, i) => t - arrivals[i]!)
      // Each event arrives about when it was sent (150 ms apart), not batched at the end.
      for (const g of gaps) assert.isAbove(g, 90, `gaps ${gaps.join(", ")}`)
      assert.isAbove(arrivals.at(-1)! - arrivals[0]!, 450)
    }))

  it.live("DLP: a held token in a URL, header or body to another host is blocked; a credential shape too", () =>
    Effect.gen(function*() {
      const h = yield* harness({ routes })
      const inUrl = yield* request(h, OTHER, { path: `/x?leak=${REAL_TOKEN}` })
      assert.strictEqual(inUrl.status, 403)
      assert.include(inUrl.body, '"rule":"dlp"')
      assert.include(inUrl.body, "$API_TOKEN")
      assert.notInclude(inUrl.body, REAL_TOKEN)

      const encoded = yield* request(h, OTHER, { path: `/x?leak=${encodeURIComponent(REAL_TOKEN).replace(/e/g, "%65")}` })
      assert.strictEqual(encoded.status, 403)

      const inHeader = yield* request(h, OTHER, { path: "/x", headers: { "x-note": `token ${OTHER_TOKEN}` } })
      assert.strictEqual(inHeader.status, 403)

      // A body streamed in small pieces, the token split across them.
      const body = Buffer.from(`{"data":"${"a".repeat(5000)}${REAL_TOKEN}${"b".repeat(5000)}"}`)
      const inBody = yield* request(h, OTHER, { path: "/upload", method: "POST", body })
      assert.strictEqual(inBody.status, 403)
      assert.include(inBody.body, "body carries the value of $API_TOKEN")

      const aws = yield* request(h, OTHER, { path: "/upload", method: "POST", body: "key=AKIAIOSFODNN7EXAMPLE" })
      assert.strictEqual(aws.status, 403)
      assert.include(aws.body, "AWS access key id")

      const pem = yield* request(h, OTHER, { path: "/upload", method: "POST", body: "-----BEGIN OPENSSH PRIVATE KEY-----\nabc" })
      assert.strictEqual(pem.status, 403)

      // Every request above was refused: none reached the upstream whole (the loop below
      // would otherwise pass vacuously).
      assert.lengthOf(h.upstream.received, 0, "a refused request reached the upstream")
      for (const r of h.upstream.received) {
        assert.notInclude(r.body + r.url + r.rawHeaders.join(" "), REAL_TOKEN)
        assert.notInclude(r.body, "AKIAIOSFODNN7EXAMPLE")
      }
      // A clean body to the same host still passes.
      const clean = yield* request(h, OTHER, { path: "/upload", method: "POST", body: "all good" })
      assert.strictEqual(clean.status, 200)
      assert.strictEqual(h.upstream.received.at(-1)!.body, "all good")
    }))

  it.live("wildcard route with a custom auth header", () =>
    Effect.gen(function*() {
      const h = yield* harness({ routes })
      const res = yield* request(h, "a.svc.example.test", { path: "/echo", headers: { "x-api-key": "placeholder" } })
      assert.strictEqual(res.status, 200)
      assert.strictEqual(h.upstream.received.at(-1)!.headers["x-api-key"], OTHER_TOKEN)
    }))
})
