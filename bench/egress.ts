/**
 * `npm run bench:egress`: bot-bottle's egress proxy against mitmproxy (Debian's package, with
 * an addon that streams both bodies), same local HTTPS upstream, same load client, one run.
 * Prints each run as it goes, then a side-by-side table. A script, not a test.
 *
 * bot-bottle is measured as it ships: `npm run build`, then `dist/egress-daemon.mjs` configured
 * by its environment, under the V8 flags and environment the bundle's init gives it.
 *
 * Fairness on a small machine: when `taskset` is available and there are ≥ 2 cores, the proxy
 * under test (either one) gets core 1 to itself and the upstream and load client share core 0,
 * so neither proxy fights the load it serves. Every requests/s run loads the proxy for a
 * warm-up period first (unmeasured), and runs are repeated and interleaved (direct, ours,
 * mitmproxy, direct, …); the table shows the median and the range. Streaming likewise: an
 * unmeasured 32 MB stream, then the median of `BENCH_STREAM_RUNS` (3) streams per target.
 *
 * Needs: mitmdump (apt-get install mitmproxy). Network: loopback only.
 */
import { spawn, spawnSync } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { EGRESS_ENV, EGRESS_NODE_FLAGS } from "../bundle/egress/node-flags.ts"
import { children, killChildren, spawnReady } from "./egress/processes.ts"
import { issueServerCert, makeTestCa } from "../test/egress/support/pki.ts"

const HOST = "api.bench.test"
const RPS_CONNECTIONS = Number(process.env["BENCH_CONNECTIONS"] ?? 8)
const RPS_MS = Number(process.env["BENCH_DURATION_MS"] ?? 8000)
const WARMUP_MS = Number(process.env["BENCH_WARMUP_MS"] ?? 3000)
const ROUNDS = Number(process.env["BENCH_ROUNDS"] ?? 3)
const STREAM_MB = Number(process.env["BENCH_STREAM_MB"] ?? 256)
const STREAM_RUNS = Number(process.env["BENCH_STREAM_RUNS"] ?? 3)
const here = path.dirname(new URL(import.meta.url).pathname)
const repo = path.join(here, "..")
const node = process.execPath

/** Core pinning: [proxy], [upstream + load client]; none when taskset or a 2nd core is missing. */
const pinning = ((): { proxy: Array<string>; load: Array<string>; label: string } => {
  const none = { proxy: [], load: [], label: "not pinned" }
  if (process.env["BENCH_PIN"] === "0" || os.cpus().length < 2) return none
  if (spawnSync("taskset", ["-c", "0", "true"]).status !== 0) return none
  return { proxy: ["taskset", "-c", "1"], load: ["taskset", "-c", "0"], label: "proxy on core 1, upstream + load client on core 0" }
})()
const pinned = (prefix: Array<string>, cmd: string, args: Array<string>): [string, Array<string>] =>
  prefix.length > 0 ? [prefix[0]!, [...prefix.slice(1), cmd, ...args]] : [cmd, args]

const cleanup = () => killChildren()
process.on("exit", cleanup)
process.on("SIGINT", () => process.exit(130))

const run = <A>(args: object): Promise<A> =>
  new Promise((resolve, reject) => {
    const [cmd, argv] = pinned(pinning.load, node, [path.join(here, "egress", "load.ts"), JSON.stringify(args)])
    const child = spawn(cmd, argv, { stdio: ["ignore", "pipe", "pipe"] })
    let out = ""
    let err = ""
    child.stdout.on("data", (c) => (out += c))
    child.stderr.on("data", (c) => (err += c))
    child.once("exit", (code) => (code === 0 ? resolve(JSON.parse(out) as A) : reject(new Error(`load client failed: ${err}`))))
  })

/** Resident set (VmRSS) and its peak (VmHWM) of a process, in MB. */
const rssOf = (pid: number): { now: number; peak: number } => {
  const status = fs.readFileSync(`/proc/${pid}/status`, "utf8")
  const kb = (field: string) => Number(new RegExp(`${field}:\\s+(\\d+) kB`).exec(status)?.[1] ?? NaN)
  return { now: kb("VmRSS") / 1024, peak: kb("VmHWM") / 1024 }
}

const waitForPort = async (port: number) => {
  const net = await import("node:net")
  for (let i = 0; i < 100; i++) {
    const ok = await new Promise<boolean>((r) => {
      const s = net.connect(port, "127.0.0.1", () => (s.destroy(), r(true)))
      s.on("error", () => r(false))
    })
    if (ok) return
    await new Promise((r) => setTimeout(r, 100))
  }
  throw new Error(`nothing listening on ${port}`)
}

const freePort = async (): Promise<number> => {
  const net = await import("node:net")
  return new Promise((r) => {
    const s = net.createServer().listen(0, "127.0.0.1", () => {
      const { port } = s.address() as import("node:net").AddressInfo
      s.close(() => r(port))
    })
  })
}

interface Rps {
  rps: number
  p50: number
  p99: number
}

const median = (xs: Array<number>) => {
  const s = [...xs].sort((a, b) => a - b)
  return s.length % 2 === 1 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2
}

const main = async () => {
  if (process.env["BENCH_NO_BUILD"] !== "1") {
    process.stderr.write("bench: npm run build …\n")
    const built = spawnSync(node, [path.join(repo, "scripts", "build.mjs")], { cwd: repo, stdio: "inherit" })
    if (built.status !== 0) throw new Error("build failed")
  }
  const egressEntry = path.join(repo, "dist", "egress-daemon.mjs")
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "bench-egress-"))
  const root = await makeTestCa()
  const cert = await issueServerCert(root, [HOST])
  const rootFile = path.join(dir, "root.pem")
  fs.writeFileSync(rootFile, root.certPem)

  const upstream = await spawnReady(
    ...pinned(pinning.load, node, [path.join(here, "egress", "upstream-process.ts"), JSON.stringify({ ...cert, hosts: [HOST] })]),
    (line) => (line.startsWith("{") ? (JSON.parse(line) as { port: number; dns: string }) : undefined)
  )
  const upPort = upstream.ready.port

  // bot-bottle egress, as shipped and as the bundle's init starts it (same V8 flags).
  const stateDir = path.join(dir, "egress")
  fs.mkdirSync(stateDir, { recursive: true })
  const routesFile = path.join(stateDir, "routes.yaml")
  fs.writeFileSync(routesFile, `routes:\n  - host: ${HOST}\n    ports: [${upPort}]\n    auth: { scheme: Bearer, token_env: BENCH_TOKEN }\n    allow_private_ips: true\n`)
  const nodeFlags = [...EGRESS_NODE_FLAGS, ...(process.env["BENCH_NODE_FLAGS"] ?? "").split(" ").filter((f) => f.length > 0)]
  const ours = await spawnReady(
    ...pinned(pinning.proxy, node, [
      ...nodeFlags,
      egressEntry
    ]),
    (line) => {
      const m = /egress: listening on [^ ]+:(\d+)/.exec(line)
      return m ? Number(m[1]) : undefined
    },
    // The bench's made-up host resolves through the upstream helper's DNS server.
    {
      ...process.env,
      ...EGRESS_ENV,
      BOTTLE_EGRESS_DIR: stateDir,
      BOTTLE_EGRESS_LISTEN: "127.0.0.1:0",
      BOTTLE_EGRESS_EXTRA_CA: rootFile,
      BOTTLE_SLUG: "bench",
      BENCH_TOKEN: "bench-token-0123456789abcdef",
      BOTTLE_EGRESS_DNS: upstream.ready.dns
    }
  )
  const oursCa = fs.readFileSync(path.join(stateDir, "ca.pem"), "utf8")

  // mitmproxy, streaming both ways, verifying upstream against the same root.
  const mitmPort = await freePort()
  const confdir = path.join(dir, "mitm")
  fs.mkdirSync(confdir)
  const mitm = spawn(
    ...pinned(pinning.proxy, "mitmdump", [
      "--listen-host", "127.0.0.1", "--listen-port", String(mitmPort),
      "--set", `confdir=${confdir}`, "--set", `ssl_verify_upstream_trusted_ca=${rootFile}`,
      "--set", "flow_detail=0", "--set", "termlog_verbosity=error", "--set", "stream_large_bodies=1",
      "-s", path.join(here, "egress", "mitm_addon.py")
    ]),
    { stdio: ["ignore", "ignore", "inherit"] }
  )
  children.push(mitm)
  await waitForPort(mitmPort)
  const mitmCa = fs.readFileSync(path.join(confdir, "mitmproxy-ca-cert.pem"), "utf8")
  await new Promise((r) => setTimeout(r, 500))
  const idle = { "bot-bottle": rssOf(ours.child.pid!).now, mitmproxy: rssOf(mitm.pid!).now }

  const base = { host: HOST, port: upPort }
  const targets = [
    { name: "direct", extra: { ca: root.certPem } },
    { name: "bot-bottle", extra: { ca: oursCa, proxyPort: ours.ready } },
    { name: "mitmproxy", extra: { ca: mitmCa, proxyPort: mitmPort } }
  ] as const
  type Name = (typeof targets)[number]["name"]

  process.stderr.write(`bench: ${pinning.label}; bot-bottle flags: ${nodeFlags.join(" ") || "none"}, env: ${Object.entries(EGRESS_ENV).map(([k, v]) => `${k}=${v}`).join(" ")}\n`)
  const rpsRuns: Record<Name, Array<Rps>> = { direct: [], "bot-bottle": [], mitmproxy: [] }
  for (let round = 1; round <= ROUNDS; round++) {
    for (const t of targets) {
      const r = await run<Rps>({ kind: "rps", ...base, ...t.extra, path: "/small", connections: RPS_CONNECTIONS, warmupMs: WARMUP_MS, durationMs: RPS_MS })
      rpsRuns[t.name].push(r)
      process.stderr.write(`bench: round ${round}/${ROUNDS} requests/s ${t.name.padEnd(10)} ${r.rps.toFixed(0).padStart(6)}  (p50 ${r.p50.toFixed(2)} ms)\n`)
    }
  }
  const results = {} as Record<Name, { rps: Rps; rpsRange: [number, number]; single: Rps; mbps: number; sse: number }>
  for (const t of targets) {
    process.stderr.write(`bench: ${t.name}: 1-connection latency, streaming, SSE …\n`)
    const single = await run<Rps>({ kind: "rps", ...base, ...t.extra, path: "/small", connections: 1, warmupMs: 1000, durationMs: Math.min(RPS_MS, 4000) })
    // Streaming: one unmeasured stream first (as the requests/s runs warm up: a JIT compiles the
    // streaming path on first use), then the median of STREAM_RUNS.
    await run({ kind: "stream", ...base, ...t.extra, path: "/big?mb=32" })
    const streams: Array<number> = []
    for (let i = 0; i < STREAM_RUNS; i++) streams.push((await run<{ mbps: number }>({ kind: "stream", ...base, ...t.extra, path: `/big?mb=${STREAM_MB}` })).mbps)
    const stream = { mbps: median(streams) }
    const sse = await run<{ firstChunkP50: number }>({ kind: "sse", ...base, ...t.extra, path: "/sse", samples: 30 })
    const runs = rpsRuns[t.name]
    const rates = runs.map((r) => r.rps)
    results[t.name] = {
      rps: { rps: median(rates), p50: median(runs.map((r) => r.p50)), p99: median(runs.map((r) => r.p99)) },
      rpsRange: [Math.min(...rates), Math.max(...rates)],
      single,
      mbps: stream.mbps,
      sse: sse.firstChunkP50
    }
  }
  const rss = { "bot-bottle": rssOf(ours.child.pid!).peak, mitmproxy: rssOf(mitm.pid!).peak }

  const d = results["direct"]
  const fmt = (n: number, digits = 1) => (Number.isFinite(n) ? n.toFixed(digits) : "n/a")
  const row = (label: string, f: (name: "bot-bottle" | "mitmproxy") => string, direct: string, target: string) =>
    `| ${label.padEnd(40)} | ${f("bot-bottle").padStart(11)} | ${f("mitmproxy").padStart(11)} | ${direct.padStart(11)} | ${target.padEnd(22)} |`
  const r = (n: "bot-bottle" | "mitmproxy") => results[n]
  const ratio = r("bot-bottle").rps.rps / r("mitmproxy").rps.rps
  const range = (n: Name) => `${fmt(results[n].rpsRange[0], 0)}–${fmt(results[n].rpsRange[1], 0)}`
  const lines = [
    "",
    `egress bench: ${os.cpus().length} cores (${pinning.label}); Node ${process.version}; bot-bottle = ${Object.entries(EGRESS_ENV).map(([k, v]) => `${k}=${v}`).join(" ")} node ${nodeFlags.join(" ")} dist/egress-daemon.mjs; mitmproxy (Debian) with a streaming addon`,
    `requests/s: ${RPS_CONNECTIONS} keep-alive connections, small (3 B) responses, ${WARMUP_MS / 1000}s warm-up + ${RPS_MS / 1000}s measured, median of ${ROUNDS} interleaved runs; streaming: ${STREAM_MB} MB after a 32 MB warm-up, median of ${STREAM_RUNS}`,
    "",
    `| ${"metric".padEnd(40)} | ${"bot-bottle".padStart(11)} | ${"mitmproxy".padStart(11)} | ${"direct".padStart(11)} | ${"target".padEnd(22)} |`,
    `|${"-".repeat(42)}|${"-".repeat(13)}|${"-".repeat(13)}|${"-".repeat(13)}|${"-".repeat(24)}|`,
    row("requests/s (keep-alive, small)", (n) => fmt(r(n).rps.rps, 0), fmt(d.rps.rps, 0), `≥ 3× mitmproxy (${fmt(ratio, 2)}×)`),
    row("  range over runs", (n) => range(n), range("direct"), ""),
    row("added p50 latency, 1 connection (ms)", (n) => fmt(r(n).single.p50 - d.single.p50, 2), fmt(d.single.p50, 2), "≤ 1 ms"),
    row("added p99 latency, 1 connection (ms)", (n) => fmt(r(n).single.p99 - d.single.p99, 2), fmt(d.single.p99, 2), ""),
    row(`added p50 latency, ${RPS_CONNECTIONS} connections (ms)`, (n) => fmt(r(n).rps.p50 - d.rps.p50, 2), fmt(d.rps.p50, 2), ""),
    row("streaming throughput (MB/s)", (n) => fmt(r(n).mbps, 0), fmt(d.mbps, 0), ""),
    row("added delay to first SSE chunk (ms)", (n) => fmt(r(n).sse - d.sse, 2), fmt(d.sse, 2), "≤ 5 ms"),
    row("RSS of the proxy, idle (MB)", (n) => fmt(idle[n], 0), "", ""),
    row("peak RSS of the proxy (MB)", (n) => fmt(rss[n], 0), "", "≤ 150 MB"),
    ""
  ]
  process.stdout.write(lines.join("\n"))
  cleanup()
  fs.rmSync(dir, { recursive: true, force: true })
  process.exit(0)
}

main().catch((e) => {
  process.stderr.write(`bench failed: ${e instanceof Error ? e.stack : String(e)}\n`)
  cleanup()
  process.exit(1)
})
