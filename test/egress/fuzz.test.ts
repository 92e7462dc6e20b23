/**
 * The robustness suite: a seeded random mix of valid and hostile HTTP/1.1 and HTTP/2 traffic
 * against the egress daemon as it ships (its own process, loopback only), bounded in count
 * and time. Hostile: aborted uploads and downloads, resets mid-body, DLP hits (mid-stream, or
 * a small form body to a name not yet resolved), malformed framing, oversized headers,
 * unrouted hosts, connection floods past the cap and slowloris clients. After it the daemon must still serve, its RSS stay under RSS_LIMIT, it
 * must not have crashed, and every refusal a client saw must have its audit line.
 *
 * The seed is printed with the counts; rerun one with EGRESS_FUZZ_SEED=<seed> (and run longer
 * with EGRESS_FUZZ_ACTIONS=<n>).
 */
import * as http2 from "node:http2"
import * as net from "node:net"
import { afterAll, beforeAll, expect, it } from "vitest"
import { connectTunnel, proxiedRequest, rawOverTunnel, streamedUpload, tlsOverTunnel } from "./support/client.ts"
import { builtDaemon, daemonRoutes as routes, type DaemonProcess, startDaemon } from "./support/daemon.ts"
import { API, EVIL, OTHER, REAL_TOKEN } from "./support/harness.ts"

const ACTIONS = Number(process.env["EGRESS_FUZZ_ACTIONS"] ?? 600)
const CONCURRENCY = 8
const MAX_CONNECTIONS = 48
/** The daemon's resident memory after the run must stay under this (its heap limit is 64 MB of old space). */
const RSS_LIMIT = 200e6


const seed = Number(process.env["EGRESS_FUZZ_SEED"] ?? Math.floor(Math.random() * 2 ** 31))

/** mulberry32: a small seeded PRNG (the same seed, the same sequence of actions). */
const prng = (s: number) => () => {
  s = (s + 0x6d2b79f5) | 0
  let t = Math.imul(s ^ (s >>> 15), 1 | s)
  t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296
}

type Outcome = "ok" | "refused" | "cut" | "other"
interface Counts {
  requests: number
  ok: number
  refusals: number
  cut: number
  other: number
  byAction: Record<string, number>
}
/** What clients saw refused, by audit rule, and the unique paths that must have their own line. */
const seen = { connectionLimit: 0, paths: new Map<string, string>() }

let d: DaemonProcess
beforeAll(async () => {
  builtDaemon()
  d = await startDaemon({
    routes,
    env: { BOTTLE_EGRESS_MAX_CONNECTIONS: String(MAX_CONNECTIONS), BOTTLE_EGRESS_HEADERS_TIMEOUT_MS: "1500", BOTTLE_EGRESS_IDLE_TIMEOUT_MS: "5000" }
  })
}, 180_000)
afterAll(async () => {
  await d?.stop()
})

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))
/** 2xx: served; 4xx/5xx: refused (each must have its audit line); no status: the connection was cut. */
const statusOutcome = (status: number): Outcome => (status >= 200 && status < 300 ? "ok" : status >= 400 ? "refused" : status === 0 ? "cut" : "other")

const tunnelTls = async (host: string, alpn: "h2" | "http/1.1") => {
  const t = await connectTunnel(d.proxyPort, `${host}:${d.upstreamPort}`)
  if (!("socket" in t)) return { refused: t.status }
  t.socket.on("error", () => {})
  return { socket: await tlsOverTunnel(t.socket, d.bottleCa, host, [alpn]) }
}

const chunks = (rand: () => number, n: number, size: number, tokenAt?: number): Array<Buffer> => {
  const out = Array.from({ length: n }, () => Buffer.alloc(size, 0x61 + Math.floor(rand() * 20)))
  if (tokenAt !== undefined) Buffer.from(REAL_TOKEN).copy(out[tokenAt]!, Math.max(0, Math.floor(rand() * (size - REAL_TOKEN.length))))
  return out
}

/** A raw connection to the proxy port: sends `bytes` (optionally a byte at a time), reads until closed. */
const raw = (bytes: Buffer, opts: { everyMs?: number; waitMs?: number } = {}) =>
  new Promise<string>((resolve) => {
    const s = net.connect(d.proxyPort, "127.0.0.1")
    let reply = ""
    let timer: NodeJS.Timeout | undefined
    const done = () => {
      clearInterval(timer)
      clearTimeout(cap)
      s.destroy()
      resolve(reply)
    }
    const cap = setTimeout(done, opts.waitMs ?? 4000)
    s.on("data", (c: Buffer) => (reply += c.toString("latin1")))
    s.on("close", done)
    s.on("error", done)
    s.on("connect", () => {
      if (!opts.everyMs) return void s.write(bytes)
      let i = 0
      timer = setInterval(() => (i < bytes.length ? s.write(bytes.subarray(i, ++i)) : clearInterval(timer)), opts.everyMs)
    })
  })

const replyOutcome = (reply: string): Outcome => {
  const m = /^HTTP\/1\.[01] (\d{3})/.exec(reply)
  if (!m) return "cut"
  if (m[1] === "503" && reply.includes('"rule":"connection-limit"')) seen.connectionLimit++
  return statusOutcome(Number(m[1]))
}

type Action = (rand: () => number, id: number) => Promise<Outcome>

const actions: Record<string, Action> = {
  "h1 GET": async () => statusOutcome((await proxiedRequest({ proxyPort: d.proxyPort, ca: d.bottleCa, host: OTHER, port: d.upstreamPort, path: "/echo" })).status),
  "h2 GET": async () => {
    const r = await streamedUpload({ proxyPort: d.proxyPort, ca: d.bottleCa, host: API, port: d.upstreamPort, path: "/echo", protocol: "h2", chunks: [Buffer.from("hi")] })
    return statusOutcome(r.status)
  },
  "POST streamed": async (rand) => {
    const r = await streamedUpload({ proxyPort: d.proxyPort, ca: d.bottleCa, host: OTHER, port: d.upstreamPort, path: "/upload", protocol: rand() < 0.5 ? "h1" : "h2", chunks: chunks(rand, 2 + Math.floor(rand() * 20), 16 * 1024) })
    return statusOutcome(r.status)
  },
  "DLP hit": async (rand, id) => {
    const path = `/dlp-${id}`
    // Mid-stream after several chunks, or a small form body (`curl -d "x=$TOKEN"`).
    const n = 3 + Math.floor(rand() * 30)
    const body = rand() < 0.3 ? [Buffer.from(`x=${REAL_TOKEN}`)] : chunks(rand, n, 32 * 1024, 1 + Math.floor(rand() * (n - 1)))
    // Sometimes to a routed name never looked up before: the body is then scanned (and
    // blocked) while the upstream's name is still being resolved.
    const host = rand() < 0.3 ? `h${id}.fresh.example.test` : OTHER
    const r = await streamedUpload({ proxyPort: d.proxyPort, ca: d.bottleCa, host, port: d.upstreamPort, path, protocol: rand() < 0.5 ? "h1" : "h2", chunks: body })
    if (r.body.includes('"rule":"dlp"')) seen.paths.set(path, "dlp-block")
    return statusOutcome(r.status)
  },
  "unrouted host": async (rand, id) => {
    const path = `/evil-${id}`
    if (rand() < 0.5) {
      // Refused at CONNECT (the tunnel's audit line names the target, not a path).
      const r = await proxiedRequest({ proxyPort: d.proxyPort, ca: d.bottleCa, host: EVIL, port: d.upstreamPort, path })
      return statusOutcome(r.status)
    }
    const reply = await raw(Buffer.from(`GET http://${EVIL}${path} HTTP/1.1\r\nHost: ${EVIL}\r\n\r\n`))
    if (reply.startsWith("HTTP/1.1 403")) seen.paths.set(path, "deny")
    return replyOutcome(reply)
  },
  "aborted upload": async (rand) => {
    const t = await tunnelTls(OTHER, rand() < 0.5 ? "h2" : "http/1.1")
    if (!t.socket) return "refused"
    const s = t.socket
    s.on("error", () => {})
    if (s.alpnProtocol === "h2") {
      const session = http2.connect(`https://${OTHER}`, { createConnection: () => s })
      session.on("error", () => {})
      const req = session.request({ ":method": "POST", ":path": "/upload" })
      req.on("error", () => {})
      req.write(Buffer.alloc(64 * 1024, 0x62))
      await sleep(10 + rand() * 50)
      // A reset mid-body (RST_STREAM), or the whole connection gone.
      if (rand() < 0.5) req.close(http2.constants.NGHTTP2_CANCEL)
      else session.destroy()
      await sleep(20)
      session.destroy()
    } else {
      s.write(`POST /upload HTTP/1.1\r\nHost: ${OTHER}\r\ncontent-length: 10000000\r\n\r\n`)
      s.write(Buffer.alloc(64 * 1024, 0x62))
      await sleep(10 + rand() * 50)
      if (rand() < 0.5) s.resetAndDestroy()
      else s.destroy()
    }
    return "cut"
  },
  "aborted download": async (rand) => {
    const t = await tunnelTls(OTHER, rand() < 0.5 ? "h2" : "http/1.1")
    if (!t.socket) return "refused"
    const s = t.socket
    if (s.alpnProtocol === "h2") {
      const session = http2.connect(`https://${OTHER}`, { createConnection: () => s })
      session.on("error", () => {})
      const req = session.request({ ":path": "/big?mb=16" })
      req.on("error", () => {})
      await new Promise<void>((r) => {
        let got = 0
        req.on("data", (c: Buffer) => {
          got += c.length
          if (got > 256 * 1024) r()
        })
        req.on("close", () => r())
        setTimeout(r, 3000)
      })
      if (rand() < 0.5) req.close(http2.constants.NGHTTP2_CANCEL)
      session.destroy()
    } else {
      s.write(`GET /big?mb=16 HTTP/1.1\r\nHost: ${OTHER}\r\n\r\n`)
      await new Promise<void>((r) => {
        let got = 0
        s.on("data", (c: Buffer) => {
          got += c.length
          if (got > 256 * 1024) r()
        })
        s.on("close", () => r())
        setTimeout(r, 3000)
      })
      if (rand() < 0.5) s.resetAndDestroy()
      else s.destroy()
    }
    return "cut"
  },
  "malformed framing": async (rand) => {
    const bad = [
      `POST /upload HTTP/1.1\r\nHost: ${OTHER}\r\nTransfer-Encoding: chunked\r\n\r\nZZZ\r\nhello\r\n0\r\n\r\n`,
      `POST /upload HTTP/1.1\r\nHost: ${OTHER}\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n`,
      `POST /upload HTTP/1.1\r\nHost: ${OTHER}\r\nContent-Length: -1\r\n\r\n`,
      `GET /echo HTTP/1.1\r\nHost: ${OTHER}\r\nBad Header\r\n\r\n`,
      `GET /echo HTTP/9.9\r\n\r\n`,
      `\x00\x01\x02garbage\r\n\r\n`
    ]
    const which = bad[Math.floor(rand() * bad.length)]!
    if (rand() < 0.5) {
      const reply = await rawOverTunnel({ proxyPort: d.proxyPort, ca: d.bottleCa, target: `${OTHER}:${d.upstreamPort}`, sni: OTHER, bytes: which, waitMs: 2000 }).catch(() => "")
      return replyOutcome(reply)
    }
    // Straight to the proxy port: framing errors, or an HTTP/2 preface followed by junk frames.
    const h2junk = Buffer.concat([Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"), Buffer.from([0, 0, 4, 0xff, 0xff, 0, 0, 0, 1, 1, 2, 3, 4])])
    return replyOutcome(await raw(rand() < 0.3 ? h2junk : Buffer.from(which), { waitMs: 2000 }))
  },
  "oversized headers": async (rand) => {
    const big = `x-big: ${"a".repeat(20_000 + Math.floor(rand() * 200_000))}\r\n`
    if (rand() < 0.5) return replyOutcome(await raw(Buffer.from(`GET http://${OTHER}/ HTTP/1.1\r\nHost: ${OTHER}\r\n${big}\r\n`), { waitMs: 2000 }))
    const reply = await rawOverTunnel({ proxyPort: d.proxyPort, ca: d.bottleCa, target: `${OTHER}:${d.upstreamPort}`, sni: OTHER, bytes: `GET /echo HTTP/1.1\r\nHost: ${OTHER}\r\n${big}\r\n`, waitMs: 2000 }).catch(() => "")
    return replyOutcome(reply)
  },
  "connection flood": async (rand) => {
    const n = MAX_CONNECTIONS + Math.floor(rand() * MAX_CONNECTIONS)
    const replies = await Promise.all(Array.from({ length: n }, () => raw(Buffer.from(`CONNECT ${OTHER}:${d.upstreamPort} HTTP/1.1\r\nHost: ${OTHER}\r\n`), { waitMs: 100 })))
    const outcomes = replies.map(replyOutcome)
    return outcomes.includes("refused") ? "refused" : "cut"
  },
  slowloris: async (rand) => {
    const line = Buffer.from(`GET http://${OTHER}/ HTTP/1.1\r\nHost: ${OTHER}\r\nX-Slow: ${"z".repeat(200)}\r\n\r\n`)
    return replyOutcome(await raw(line, { everyMs: 50 + Math.floor(rand() * 150), waitMs: 6000 }))
  }
}

/** How often each action is drawn (valid traffic is about half). */
const weights: Array<[string, number]> = [
  ["h1 GET", 14],
  ["h2 GET", 14],
  ["POST streamed", 12],
  ["DLP hit", 10],
  ["unrouted host", 6],
  ["aborted upload", 8],
  ["aborted download", 6],
  ["malformed framing", 10],
  ["oversized headers", 6],
  ["connection flood", 1],
  ["slowloris", 3]
]

it(`survives a seeded mix of valid and hostile traffic (seed ${seed})`, async () => {
  const rand = prng(seed)
  const total = weights.reduce((n, [, w]) => n + w, 0)
  const plan = Array.from({ length: ACTIONS }, () => {
    let x = rand() * total
    for (const [name, w] of weights) if ((x -= w) < 0) return name
    return weights[0]![0]
  })
  const counts: Counts = { requests: 0, ok: 0, refusals: 0, cut: 0, other: 0, byAction: {} }
  const started = performance.now()
  let next = 0
  const worker = async () => {
    while (next < plan.length) {
      const id = next++
      const name = plan[id]!
      const r = prng(seed ^ (id * 2654435761))
      const outcome: Outcome = await actions[name]!(r, id).catch(() => "cut" as const)
      counts.requests++
      counts.byAction[name] = (counts.byAction[name] ?? 0) + 1
      if (outcome === "ok") counts.ok++
      else if (outcome === "refused") counts.refusals++
      else if (outcome === "cut") counts.cut++
      else counts.other++
    }
  }
  await Promise.all(Array.from({ length: CONCURRENCY }, worker))
  const seconds = (performance.now() - started) / 1000

  // Let the rate-limited refusal lines be written, then check.
  await sleep(1200)
  const alive = d.alive()
  const served = alive ? await proxiedRequest({ proxyPort: d.proxyPort, ca: d.bottleCa, host: OTHER, port: d.upstreamPort, path: "/after-fuzz" }) : { status: 0 }
  const rss = d.rss()
  const crashes = alive ? 0 : 1
  const audit = d.audit()
  const auditedLimit = audit.filter((e) => e["rule"] === "connection-limit").reduce((n, e) => n + ((e["count"] as number | undefined) ?? 1), 0)
  const auditedRefusals = audit.filter((e) => (e["status"] as number) >= 400).reduce((n, e) => n + ((e["count"] as number | undefined) ?? 1), 0)
  process.stdout.write(
    `egress fuzz: seed=${seed} actions=${counts.requests} ok=${counts.ok} refusals=${counts.refusals} cut=${counts.cut} other=${counts.other} crashes=${crashes} ` +
      `audited_refusals=${auditedRefusals} connection_limit_seen=${seen.connectionLimit} audited=${auditedLimit} rss=${rss === undefined ? "n/a" : `${(rss / 1e6).toFixed(1)}MB`} time=${seconds.toFixed(1)}s\n` +
      `egress fuzz: by action ${JSON.stringify(counts.byAction)}\n`
  )
  expect(alive, `the daemon died (seed ${seed}):\n${d.output().slice(-3000)}`).toBe(true)
  expect(crashes).toBe(0)
  expect(served.status, `seed ${seed}`).toBe(200)
  expect(d.output(), `seed ${seed}`).not.toMatch(/Unhandled|uncaught|FATAL|heap out of memory/i)
  if (rss !== undefined) expect(rss, `seed ${seed}`).toBeLessThan(RSS_LIMIT)
  // Every refusal a client saw has its audit line.
  for (const [path, decision] of seen.paths) expect(audit.find((e) => e["path"] === path), `no ${decision} line for ${path} (seed ${seed})`).toMatchObject({ decision })
  expect(auditedLimit, `seed ${seed}`).toBeGreaterThanOrEqual(seen.connectionLimit)
  expect(auditedRefusals, `seed ${seed}`).toBeGreaterThanOrEqual(counts.refusals)
}, 120_000)
