/**
 * `npm run bench:egress`: bot-bottle's egress proxy against mitmproxy (Debian's package, with
 * an addon that streams both bodies), same local HTTPS upstream, same load client, one run.
 * Prints a side-by-side table. A script, not a test.
 *
 * Needs: mitmdump (apt-get install mitmproxy). Network: loopback only.
 */
import { type ChildProcess, spawn } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import * as readline from "node:readline"
import { build } from "esbuild"
import { issueServerCert, makeTestCa } from "../test/egress/support/pki.ts"

const HOST = "api.bench.test"
const RPS_CONNECTIONS = Number(process.env["BENCH_CONNECTIONS"] ?? 8)
const RPS_MS = Number(process.env["BENCH_DURATION_MS"] ?? 8000)
const STREAM_MB = Number(process.env["BENCH_STREAM_MB"] ?? 256)
const here = path.dirname(new URL(import.meta.url).pathname)
const node = process.execPath

const children: Array<ChildProcess> = []
const cleanup = () => {
  for (const c of children) if (c.exitCode === null) c.kill("SIGTERM")
}
process.on("exit", cleanup)
process.on("SIGINT", () => process.exit(130))

/** Spawns a helper and resolves with its first stdout line parsed as JSON. */
const spawnJson = <A>(cmd: string, args: Array<string>, env?: NodeJS.ProcessEnv): Promise<{ child: ChildProcess; ready: A }> =>
  new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ["ignore", "pipe", "pipe"], env: env ?? process.env })
    children.push(child)
    let err = ""
    child.stderr!.on("data", (c) => (err += c))
    const rl = readline.createInterface({ input: child.stdout! })
    // The first JSON line is the readiness report (log lines may come before it).
    rl.on("line", (line) => {
      if (line.startsWith("{")) resolve({ child, ready: JSON.parse(line) as A })
    })
    child.once("exit", (code) => reject(new Error(`${path.basename(args[0] ?? cmd)} exited ${code}: ${err.slice(-2000)}`)))
  })

const run = <A>(args: object): Promise<A> =>
  new Promise((resolve, reject) => {
    const child = spawn(node, [path.join(here, "egress", "load.ts"), JSON.stringify(args)], { stdio: ["ignore", "pipe", "pipe"] })
    let out = ""
    let err = ""
    child.stdout.on("data", (c) => (out += c))
    child.stderr.on("data", (c) => (err += c))
    child.once("exit", (code) => (code === 0 ? resolve(JSON.parse(out) as A) : reject(new Error(`load client failed: ${err}`))))
  })

/** Peak resident set (VmHWM) of a process, in MB. */
const peakRss = (pid: number): number => {
  const status = fs.readFileSync(`/proc/${pid}/status`, "utf8")
  const m = /VmHWM:\s+(\d+) kB/.exec(status)
  return m ? Number(m[1]) / 1024 : NaN
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

const main = async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "bench-egress-"))
  const root = await makeTestCa()
  const cert = await issueServerCert(root, [HOST])
  const rootFile = path.join(dir, "root.pem")
  fs.writeFileSync(rootFile, root.certPem)

  const upstream = await spawnJson<{ port: number; dns: string }>(node, [path.join(here, "egress", "upstream-process.ts"), JSON.stringify({ ...cert, hosts: [HOST] })])
  const upPort = upstream.ready.port

  // bot-bottle egress, in its own process.
  const stateDir = path.join(dir, "egress")
  fs.mkdirSync(stateDir, { recursive: true })
  const routesFile = path.join(stateDir, "routes.yaml")
  fs.writeFileSync(routesFile, `routes:\n  - host: ${HOST}\n    ports: [${upPort}]\n    auth: { scheme: Bearer, token_env: BENCH_TOKEN }\n`)
  // Run the daemon as it ships: an esbuild bundle with mockttp external (as scripts/build.mjs
  // does), not through Node's TypeScript stripping, which loads a compiler and inflates RSS.
  const bundled = path.join(here, "..", "node_modules", ".cache", "bench-egress", "daemon.mjs")
  await build({
    entryPoints: [path.join(here, "egress", "daemon-process.ts")],
    outfile: bundled,
    bundle: true,
    platform: "node",
    format: "esm",
    target: "node22",
    external: ["mockttp"],
    banner: { js: "import { createRequire as __cr } from 'node:module'; const require = __cr(import.meta.url);" },
    logLevel: "warning"
  })
  const ours = await spawnJson<{ port: number }>(node, [
    ...(process.env["BENCH_NODE_FLAGS"] ?? "").split(" ").filter((f) => f.length > 0),
    bundled,
    JSON.stringify({ routesFile, stateDir, extraCa: rootFile, dns: upstream.ready.dns, env: { BENCH_TOKEN: "bench-token-0123456789abcdef" } })
  ])
  const oursCa = fs.readFileSync(path.join(stateDir, "ca.pem"), "utf8")

  // mitmproxy, streaming both ways, verifying upstream against the same root.
  const mitmPort = await freePort()
  const confdir = path.join(dir, "mitm")
  fs.mkdirSync(confdir)
  const mitm = spawn(
    "mitmdump",
    [
      "--listen-host", "127.0.0.1", "--listen-port", String(mitmPort),
      "--set", `confdir=${confdir}`, "--set", `ssl_verify_upstream_trusted_ca=${rootFile}`,
      "--set", "flow_detail=0", "--set", "termlog_verbosity=error", "--set", "stream_large_bodies=1",
      "-s", path.join(here, "egress", "mitm_addon.py")
    ],
    { stdio: ["ignore", "ignore", "inherit"] }
  )
  children.push(mitm)
  await waitForPort(mitmPort)
  const mitmCa = fs.readFileSync(path.join(confdir, "mitmproxy-ca-cert.pem"), "utf8")

  const base = { host: HOST, port: upPort }
  const targets = [
    { name: "direct", extra: { ca: root.certPem } },
    { name: "bot-bottle", extra: { ca: oursCa, proxyPort: ours.ready.port } },
    { name: "mitmproxy", extra: { ca: mitmCa, proxyPort: mitmPort } }
  ] as const

  const results: Record<string, { rps: Rps; single: Rps; mbps: number; sse: number }> = {}
  for (const t of targets) {
    process.stderr.write(`bench: ${t.name} …\n`)
    const rps = await run<Rps>({ kind: "rps", ...base, ...t.extra, path: "/small", connections: RPS_CONNECTIONS, durationMs: RPS_MS })
    const single = await run<Rps>({ kind: "rps", ...base, ...t.extra, path: "/small", connections: 1, durationMs: Math.min(RPS_MS, 4000) })
    const stream = await run<{ mbps: number }>({ kind: "stream", ...base, ...t.extra, path: `/big?mb=${STREAM_MB}` })
    const sse = await run<{ firstChunkP50: number }>({ kind: "sse", ...base, ...t.extra, path: "/sse", samples: 30 })
    results[t.name] = { rps, single, mbps: stream.mbps, sse: sse.firstChunkP50 }
  }
  const rss = { "bot-bottle": peakRss(ours.child.pid!), mitmproxy: peakRss(mitm.pid!) }

  const d = results["direct"]!
  const fmt = (n: number, digits = 1) => (Number.isFinite(n) ? n.toFixed(digits) : "n/a")
  const row = (label: string, f: (name: "bot-bottle" | "mitmproxy") => string, direct: string, target: string) =>
    `| ${label.padEnd(40)} | ${f("bot-bottle").padStart(11)} | ${f("mitmproxy").padStart(10)} | ${direct.padStart(8)} | ${target.padEnd(22)} |`
  const r = (n: "bot-bottle" | "mitmproxy") => results[n]!
  const ratio = r("bot-bottle").rps.rps / r("mitmproxy").rps.rps
  const lines = [
    `egress bench: ${os.cpus().length} cores, ${RPS_CONNECTIONS} keep-alive connections × ${RPS_MS / 1000}s, small (3 B) responses; Node ${process.version}; mitmproxy (Debian) with a streaming addon`,
    "",
    `| ${"metric".padEnd(40)} | ${"bot-bottle".padStart(11)} | ${"mitmproxy".padStart(10)} | ${"direct".padStart(8)} | ${"target".padEnd(22)} |`,
    `|${"-".repeat(42)}|${"-".repeat(13)}|${"-".repeat(12)}|${"-".repeat(10)}|${"-".repeat(24)}|`,
    row("requests/s (keep-alive, small)", (n) => fmt(r(n).rps.rps, 0), fmt(d.rps.rps, 0), `≥ 3× mitmproxy (${fmt(ratio, 2)}×)`),
    row("added p50 latency, 1 connection (ms)", (n) => fmt(r(n).single.p50 - d.single.p50, 2), fmt(d.single.p50, 2), "≤ 1 ms"),
    row("added p99 latency, 1 connection (ms)", (n) => fmt(r(n).single.p99 - d.single.p99, 2), fmt(d.single.p99, 2), ""),
    row(`added p50 latency, ${RPS_CONNECTIONS} connections (ms)`, (n) => fmt(r(n).rps.p50 - d.rps.p50, 2), fmt(d.rps.p50, 2), ""),
    row("streaming throughput (MB/s)", (n) => fmt(r(n).mbps, 0), fmt(d.mbps, 0), ""),
    row("added delay to first SSE chunk (ms)", (n) => fmt(r(n).sse - d.sse, 2), fmt(d.sse, 2), "≤ 5 ms"),
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
