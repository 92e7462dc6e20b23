/**
 * Bench load client (the same for every target): N keep-alive HTTPS connections, each either
 * direct to the upstream or through a proxy (CONNECT + TLS trusting the proxy's CA), each
 * issuing requests back to back. Prints JSON results on stdout.
 *
 * argv[2]: JSON { kind: "rps" | "stream" | "sse", proxyPort?, host, port, path, ca,
 *                 connections?, durationMs?, warmupMs?, samples? }
 * An "rps" run first loads the target for warmupMs (unmeasured: lets a JIT warm up), then
 * measures for durationMs.
 */
import * as http from "node:http"
import * as https from "node:https"
import * as tls from "node:tls"

interface Input {
  kind: "rps" | "stream" | "sse"
  proxyPort?: number
  host: string
  port: number
  path: string
  ca: string
  connections?: number
  durationMs?: number
  warmupMs?: number
  samples?: number
}

const input = JSON.parse(process.argv[2] ?? "{}") as Input

const openSocket = (): Promise<tls.TLSSocket> =>
  new Promise((resolve, reject) => {
    const secure = (socket?: import("node:net").Socket) => {
      const t = tls.connect(
        { ...(socket ? { socket } : { host: "127.0.0.1", port: input.port }), servername: input.host, ca: input.ca, ALPNProtocols: ["http/1.1"] },
        () => resolve(t)
      )
      t.once("error", reject)
    }
    if (input.proxyPort === undefined) return secure()
    const target = `${input.host}:${input.port}`
    const req = http.request({ host: "127.0.0.1", port: input.proxyPort, method: "CONNECT", path: target, headers: { host: target } })
    req.once("connect", (res, socket) => (res.statusCode === 200 ? secure(socket) : reject(new Error(`CONNECT ${res.statusCode}`))))
    req.once("error", reject)
    req.end()
  })

/** An agent bound to one pre-opened socket, reused with keep-alive. */
const connection = async () => {
  const socket = await openSocket()
  const agent = new https.Agent({ keepAlive: true, maxSockets: 1 })
  ;(agent as unknown as { createConnection: () => tls.TLSSocket }).createConnection = () => socket
  return { agent, socket }
}

const get = (agent: https.Agent, path: string, onChunk?: (c: Buffer) => void): Promise<number> =>
  new Promise((resolve, reject) => {
    const req = https.request({ host: input.host, port: input.port, path, agent, headers: { host: `${input.host}:${input.port}`, authorization: "Bearer placeholder" } }, (res) => {
      let n = 0
      res.on("data", (c: Buffer) => {
        n += c.length
        onChunk?.(c)
      })
      res.on("end", () => (res.statusCode === 200 ? resolve(n) : reject(new Error(`status ${res.statusCode}`))))
      res.on("error", reject)
    })
    req.on("error", reject)
    req.end()
  })

const pct = (sorted: Array<number>, p: number) => sorted[Math.min(sorted.length - 1, Math.floor((sorted.length * p) / 100))] ?? NaN

const main = async () => {
  if (input.kind === "rps") {
    const conns = await Promise.all(Array.from({ length: input.connections ?? 1 }, connection))
    const load = (ms: number, latencies?: Array<number>) => {
      const deadline = performance.now() + ms
      return Promise.all(
        conns.map(async (c) => {
          while (performance.now() < deadline) {
            const t0 = performance.now()
            await get(c.agent, input.path)
            latencies?.push(performance.now() - t0)
          }
        })
      )
    }
    for (const c of conns) await get(c.agent, input.path)
    await load(input.warmupMs ?? 0)
    const latencies: Array<number> = []
    const started = performance.now()
    await load(input.durationMs ?? 5000, latencies)
    const elapsed = (performance.now() - started) / 1000
    latencies.sort((a, b) => a - b)
    process.stdout.write(JSON.stringify({ requests: latencies.length, rps: latencies.length / elapsed, p50: pct(latencies, 50), p99: pct(latencies, 99) }) + "\n")
  } else if (input.kind === "stream") {
    const c = await connection()
    const t0 = performance.now()
    const bytes = await get(c.agent, input.path)
    const s = (performance.now() - t0) / 1000
    process.stdout.write(JSON.stringify({ bytes, mbps: bytes / 1024 / 1024 / s }) + "\n")
  } else {
    const c = await connection()
    await get(c.agent, "/small")
    const firsts: Array<number> = []
    for (let i = 0; i < (input.samples ?? 20); i++) {
      const t0 = performance.now()
      let first = NaN
      await get(c.agent, input.path, () => {
        if (Number.isNaN(first)) first = performance.now() - t0
      })
      firsts.push(first)
    }
    firsts.sort((a, b) => a - b)
    process.stdout.write(JSON.stringify({ firstChunkP50: pct(firsts, 50) }) + "\n")
  }
  process.exit(0)
}
main().catch((e) => {
  process.stderr.write(String(e) + "\n")
  process.exit(1)
})
