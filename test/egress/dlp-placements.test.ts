/**
 * DLP placements and encodings, tried for real through the daemon over HTTP/1.1 and HTTP/2:
 * another route's token as a header name, split between a header's name and its value, in
 * mixed-case hex, percent-encoded in a form body (small and streamed, the escape cut across
 * two writes), in a cookie, and in a query or path that also holds a malformed escape. Each
 * must be refused with 403 by rule `dlp`, never reach the upstream whole, and leave a
 * `dlp-block` audit line.
 */
import * as http2 from "node:http2"
import type * as tls from "node:tls"
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { readAudit } from "../../src/schema/AuditLog.ts"
import { connectTunnel, tlsOverTunnel } from "./support/client.ts"
import { API, harness, OTHER, OTHER_TOKEN } from "./support/harness.ts"

const routes = (port: number) => `routes:
  - host: ${API}
    ports: [${port}]
    allow_private_ips: true
    auth: { scheme: Bearer, token_env: API_TOKEN }
  - host: ${OTHER}
    ports: [${port}]
    auth: { header: x-other-key, token_env: OTHER_TOKEN }
`

/** Every character `%XX`-encoded (what a form encoder does to reserved characters, applied to all). */
const pct = (s: string): string => [...Buffer.from(s)].map((b) => `%${b.toString(16).padStart(2, "0")}`).join("")
/** Hex with letters alternating in case: neither all-lower nor all-upper. */
const mixedHex = (s: string): string => {
  let letters = 0
  return Buffer.from(s).toString("hex").replace(/[a-f]/g, (c) => (letters++ % 2 === 0 ? c.toUpperCase() : c))
}

const HALF = Math.floor(OTHER_TOKEN.length / 2)

interface Attempt {
  readonly name: string
  readonly path: string
  readonly method?: string
  readonly headers?: ReadonlyArray<readonly [string, string]>
  /** Body parts, each written (and flushed) separately. */
  readonly body?: ReadonlyArray<string>
}

const PAD = "a".repeat(40_000)
const formToken = pct(OTHER_TOKEN)
const cut = formToken.length / 2 + 1 // inside an escape: `%6` | `f%74…`

const attempts: ReadonlyArray<Attempt> = [
  { name: "token as a header name", path: "/v1/a", headers: [[OTHER_TOKEN, "x"]] },
  { name: "token split between a header's name and value", path: "/v1/b", headers: [[`x-${OTHER_TOKEN.slice(0, HALF)}`, OTHER_TOKEN.slice(HALF)]] },
  { name: "mixed-case hex in a header", path: "/v1/c", headers: [["x-data", mixedHex(OTHER_TOKEN)]] },
  { name: "mixed-case hex in a body", path: "/v1/d", method: "POST", body: [`data=${mixedHex(OTHER_TOKEN)}`] },
  { name: "percent-encoded form body", path: "/v1/e", method: "POST", headers: [["content-type", "application/x-www-form-urlencoded"]], body: [`a=1&t=${formToken}&b=x+y`] },
  {
    name: "percent-encoded form body, streamed, an escape cut across writes",
    path: "/v1/f",
    method: "POST",
    headers: [["content-type", "application/x-www-form-urlencoded"]],
    body: [`p=${PAD}&t=${formToken.slice(0, cut)}`, `${formToken.slice(cut)}&q=${PAD}`]
  },
  {
    name: "mixed-case hex in a streamed body, cut across writes",
    path: "/v1/i",
    method: "POST",
    body: [`${PAD}${mixedHex(OTHER_TOKEN).slice(0, 21)}`, `${mixedHex(OTHER_TOKEN).slice(21)}${PAD}`]
  },
  { name: "percent-encoded cookie", path: "/v1/g", headers: [["cookie", `s=${formToken}`]] },
  { name: "percent-encoded query with a malformed escape", path: `/v1/h?bad=%zz&t=${formToken}` },
  { name: "percent-encoded path with a malformed escape", path: `/v1/%zz/${formToken}` }
]

/** HTTP/1.1 over CONNECT + TLS; each body part is written and flushed before the next. */
const viaH1 = async (proxyPort: number, ca: string, target: string, a: Attempt): Promise<{ status: number; body: string }> => {
  const tunnel = await connectTunnel(proxyPort, target)
  if (!("socket" in tunnel)) return { status: tunnel.status, body: tunnel.body }
  const socket = await tlsOverTunnel(tunnel.socket, ca, API, ["http/1.1"])
  const reply = new Promise<string>((resolve) => {
    const chunks: Array<Buffer> = []
    const done = () => resolve(Buffer.concat(chunks).toString("latin1"))
    socket.on("data", (c: Buffer) => chunks.push(c))
    socket.on("end", done)
    socket.on("close", done)
    socket.on("error", done)
  })
  const head = [`${a.method ?? "GET"} ${a.path} HTTP/1.1`, `Host: ${target}`, "Connection: close", ...(a.headers ?? []).map(([k, v]) => `${k}: ${v}`)]
  const write = (s: string | Buffer) => new Promise<void>((resolve) => (socket.writable ? socket.write(s, () => resolve()) : resolve()))
  if (a.body) {
    await write(`${head.join("\r\n")}\r\nTransfer-Encoding: chunked\r\n\r\n`)
    for (const part of a.body) await write(`${Buffer.byteLength(part).toString(16)}\r\n${part}\r\n`)
    await write("0\r\n\r\n")
  } else await write(`${head.join("\r\n")}\r\n\r\n`)
  const raw = await reply
  socket.destroy()
  return { status: Number(/^HTTP\/1\.1 (\d{3})/.exec(raw)?.[1] ?? 0), body: raw.slice(raw.indexOf("\r\n\r\n") + 4) }
}

/** HTTP/2 over CONNECT + TLS (ALPN h2); each body part is written and flushed before the next. */
const viaH2 = async (proxyPort: number, ca: string, target: string, a: Attempt): Promise<{ status: number; body: string }> => {
  const tunnel = await connectTunnel(proxyPort, target)
  if (!("socket" in tunnel)) return { status: tunnel.status, body: tunnel.body }
  const socket: tls.TLSSocket = await tlsOverTunnel(tunnel.socket, ca, API, ["h2"])
  const client = http2.connect(`https://${target}`, { createConnection: () => socket })
  client.on("error", () => {})
  try {
    return await new Promise((resolve, reject) => {
      const headers: http2.OutgoingHttpHeaders = { ":method": a.method ?? "GET", ":path": a.path, ":authority": target }
      for (const [k, v] of a.headers ?? []) headers[k] = v
      const req = client.request(headers, { endStream: a.body === undefined })
      let status = 0
      const chunks: Array<Buffer> = []
      req.on("response", (h) => (status = Number(h[":status"])))
      req.on("data", (c: Buffer) => chunks.push(c))
      req.on("end", () => resolve({ status, body: Buffer.concat(chunks).toString() }))
      req.on("error", (e) => (status ? resolve({ status, body: Buffer.concat(chunks).toString() }) : reject(e)))
      if (a.body) {
        const parts = [...a.body]
        const next = () => {
          const part = parts.shift()
          if (part === undefined) return req.end()
          if (!req.writable) return
          req.write(part, () => next())
        }
        next()
      }
    })
  } finally {
    client.close()
  }
}

describe("egress DLP placements and encodings", () => {
  for (const [protocol, send] of [["HTTP/1.1", viaH1], ["HTTP/2", viaH2]] as const) {
    it.live(`${protocol}: a token as or across a header name, in mixed-case hex, percent-encoded in a form body, cookie, query or path is blocked`, () =>
      Effect.gen(function*() {
        const h = yield* harness({ routes })
        const target = `${API}:${h.upstreamPort}`
        // Positive control: the same request shapes without the token pass and reach the upstream.
        const control = yield* Effect.promise(() =>
          send(h.proxyPort, h.bottleCa, target, { name: "control", path: "/v1/ok?t=%zz%41", method: "POST", headers: [["x-data", "plain"], ["cookie", "s=%41"]], body: [`a=${pct("not a secret")}`, `&b=${PAD}`] })
        )
        assert.strictEqual(control.status, 200, control.body)
        assert.strictEqual(h.upstream.received.length, 1, "the control reached the upstream")

        // Every attempt is made before any is judged, so a failure names all that got through.
        const replies: Array<{ a: Attempt; status: number; body: string }> = []
        for (const a of attempts) replies.push({ a, ...(yield* Effect.promise(() => send(h.proxyPort, h.bottleCa, target, a))) })
        const through = replies.filter((r) => r.status !== 403).map((r) => `${r.a.name} (${r.status})`)
        assert.isTrue(through.length === 0, `got through: ${through.join("; ")}`)
        for (const { a, body } of replies) {
          assert.include(body, `"rule":"dlp"`, a.name)
          assert.include(body, "$OTHER_TOKEN", a.name)
          // Audited (the batch is written within ~20 ms; wait for it, bounded).
          const path = a.path.split("?")[0]!
          let line: { decision: string; rule: string; status: number } | undefined
          for (let i = 0; i < 100 && line === undefined; i++) {
            line = (yield* readAudit(h.stateDir)).find((e) => e.path === path && e.decision === "dlp-block")
            if (line === undefined) yield* Effect.sleep("20 millis")
          }
          assert.isDefined(line, `${a.name}: audit line`)
          assert.strictEqual(line!.rule, "dlp")
          assert.strictEqual(line!.status, 403)
        }
        // Nothing but the control reached the upstream (a streamed body's first part may have
        // started, but that request was aborted, never completed).
        assert.deepStrictEqual(h.upstream.received.map((r) => r.url), ["/v1/ok?t=%zz%41"])
      }), 60_000)
  }
})
