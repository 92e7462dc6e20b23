/**
 * `npm run bench:egress-profile`: bot-bottle's egress proxy alone under the bench's requests/s
 * load, for working on its per-request cost. Prints, per run, requests/s, the proxy's CPU time
 * per request (µs) and, with `PROFILE_HEAP=1`, the bytes it allocates per request (V8's
 * sampling heap profiler, collected objects included). CPU time and allocation per request vary
 * far less than requests/s on a shared machine, so they are what to compare between builds.
 * With `PROFILE_KIND=stream` it streams the bench's large download instead (credential route,
 * response redaction active) and prints MB/s, the proxy's CPU time per MB and its peak RSS.
 * A script, not a test; loopback only.
 *
 *   PROFILE_ENTRY=path/to/egress-daemon.mjs   the build to measure (default: dist/, as built)
 *   PROFILE_KIND=rps|stream    (default rps)
 *   PROFILE_RUNS=3 PROFILE_MS=5000 PROFILE_WARMUP_MS=3000   PROFILE_MB=256 (stream size)
 *   PROFILE_NODE_FLAGS="..."   extra V8 flags for the proxy, after the shipped ones
 *   PROFILE_LOG=FILE     the proxy's stdout and stderr (e.g. with PROFILE_NODE_FLAGS=--trace-gc)
 *   PROFILE_CPU=DIR      also write a V8 CPU profile (.cpuprofile) of the measured runs to DIR
 *   PROFILE_HEAP=1       measure allocation (writes DIR/heap.json when PROFILE_CPU names DIR)
 *
 * Compare two builds: build the other one in a git worktree (`git worktree add /tmp/old REV`,
 * link node_modules, `node scripts/build.mjs`) and alternate PROFILE_ENTRY between runs.
 */
import { spawn, spawnSync } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import * as readline from "node:readline"
import { EGRESS_ENV, EGRESS_NODE_FLAGS } from "../bundle/egress/node-flags.ts"
import { killChildren, spawnReady } from "./egress/processes.ts"
import { issueServerCert, makeTestCa } from "../test/egress/support/pki.ts"

const HOST = "api.bench.test"
const here = path.dirname(new URL(import.meta.url).pathname)
const repo = path.join(here, "..")
const env = process.env
const RUNS = Number(env["PROFILE_RUNS"] ?? 3)
const MS = Number(env["PROFILE_MS"] ?? 5000)
const WARMUP_MS = Number(env["PROFILE_WARMUP_MS"] ?? 3000)
const CPU_DIR = env["PROFILE_CPU"]
const HEAP = env["PROFILE_HEAP"] === "1"
const entry = env["PROFILE_ENTRY"] ?? path.join(repo, "dist", "egress-daemon.mjs")
const KIND = env["PROFILE_KIND"] === "stream" ? "stream" : "rps"
const MB = Number(env["PROFILE_MB"] ?? 256)
const extraFlags = (env["PROFILE_NODE_FLAGS"] ?? "").split(" ").filter((f) => f.length > 0)

const pinned = spawnSync("taskset", ["-c", "0", "true"]).status === 0 && os.cpus().length >= 2
const onCore = (core: number, cmd: string, args: Array<string>): [string, Array<string>] => (pinned ? ["taskset", ["-c", String(core), cmd, ...args]] : [cmd, args])

process.on("exit", () => killChildren("SIGKILL"))

/**
 * Preloaded into the daemon: heap sampling and CPU profiling start on SIGUSR2 (the measured
 * runs) and are written out on SIGTERM, before the daemon's own shutdown.
 */
const preload = (dir: string): string => {
  const file = path.join(dir, "profile-preload.cjs")
  fs.writeFileSync(file, `
const inspector = require("node:inspector"), fs = require("node:fs"), path = require("node:path")
const s = new inspector.Session(); s.connect()
const post = (m, p) => new Promise((res, rej) => s.post(m, p ?? {}, (e, r) => (e ? rej(e) : res(r))))
const out = ${JSON.stringify(dir)}, heap = ${HEAP}, cpu = ${CPU_DIR !== undefined}
process.on("SIGUSR2", async () => {
  if (heap) { await post("HeapProfiler.enable"); await post("HeapProfiler.startSampling", { samplingInterval: 4096, includeObjectsCollectedByMajorGC: true, includeObjectsCollectedByMinorGC: true }) }
  if (cpu) { await post("Profiler.enable"); await post("Profiler.start") }
  process.stdout.write("profile: started\\n")
})
process.prependListener("SIGTERM", async () => {
  if (heap) fs.writeFileSync(path.join(out, "heap.json"), JSON.stringify((await post("HeapProfiler.stopSampling")).profile))
  if (cpu) fs.writeFileSync(path.join(out, "egress.cpuprofile"), JSON.stringify((await post("Profiler.stop")).profile))
  process.exit(0)
})
`)
  return file
}

/** Bytes a sampling heap profile attributes, in total. */
const sampledBytes = (file: string): number => {
  const sum = (n: { selfSize: number; children: Array<unknown> }): number =>
    n.selfSize + n.children.reduce((a: number, c) => a + sum(c as typeof n), 0)
  return sum((JSON.parse(fs.readFileSync(file, "utf8")) as { head: { selfSize: number; children: Array<unknown> } }).head)
}

/** User + system CPU time of a process, in ms (from /proc: clock ticks of 10 ms). */
const cpuMs = (pid: number): number => {
  const fields = fs.readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ")
  return (Number(fields[11]) + Number(fields[12])) * 10
}

/** Peak resident set (VmHWM) of a process, in MB. */
const peakRssMb = (pid: number): number => Number(/VmHWM:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, "utf8"))?.[1] ?? NaN) / 1024

const main = async () => {
  if (!fs.existsSync(entry)) throw new Error(`${entry} does not exist: run npm run build first`)
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "egress-profile-"))
  const root = await makeTestCa()
  const cert = await issueServerCert(root, [HOST])
  const rootFile = path.join(dir, "root.pem")
  fs.writeFileSync(rootFile, root.certPem)
  const upstream = await spawnReady(
    ...onCore(0, process.execPath, [path.join(here, "egress", "upstream-process.ts"), JSON.stringify({ ...cert, hosts: [HOST] })]),
    (line) => (line.startsWith("{") ? (JSON.parse(line) as { port: number; dns: string }) : undefined)
  )
  const stateDir = path.join(dir, "egress")
  fs.mkdirSync(stateDir)
  fs.writeFileSync(path.join(stateDir, "routes.yaml"), `routes:\n  - host: ${HOST}\n    ports: [${upstream.ready.port}]\n    auth: { scheme: Bearer, token_env: BENCH_TOKEN }\n    allow_private_ips: true\n`)
  const profiling = HEAP || CPU_DIR !== undefined
  const outDir = CPU_DIR ?? dir
  if (profiling) fs.mkdirSync(outDir, { recursive: true })
  const proxy = await spawnReady(
    ...onCore(1, process.execPath, [...EGRESS_NODE_FLAGS, ...extraFlags, ...(profiling ? ["-r", preload(outDir)] : []), entry]),
    (line) => {
      const m = /egress: listening on [^ ]+:(\d+)/.exec(line)
      return m ? Number(m[1]) : undefined
    },
    {
      ...env,
      ...EGRESS_ENV,
      BOTTLE_EGRESS_DIR: stateDir,
      BOTTLE_EGRESS_LISTEN: "127.0.0.1:0",
      BOTTLE_EGRESS_EXTRA_CA: rootFile,
      BOTTLE_SLUG: "profile",
      BENCH_TOKEN: "bench-token-0123456789abcdef",
      BOTTLE_EGRESS_DNS: upstream.ready.dns
    }
  )
  const ca = fs.readFileSync(path.join(stateDir, "ca.pem"), "utf8")
  const log = env["PROFILE_LOG"]
  if (log !== undefined) {
    const out = fs.createWriteStream(log)
    proxy.child.stdout!.pipe(out)
    proxy.child.stderr!.pipe(out)
  }
  const client = <A>(input: object) =>
    new Promise<A>((resolve, reject) => {
      const [cmd, args] = onCore(0, process.execPath, [
        path.join(here, "egress", "load.ts"),
        JSON.stringify({ host: HOST, port: upstream.ready.port, ca, proxyPort: proxy.ready, ...input })
      ])
      const child = spawn(cmd, args, { stdio: ["ignore", "pipe", "inherit"] })
      let out = ""
      child.stdout.on("data", (d) => (out += d))
      child.once("exit", (code) => (code === 0 ? resolve(JSON.parse(out) as A) : reject(new Error(`load client exited ${code}`))))
    })
  const load = (warmupMs: number, durationMs: number) =>
    client<{ rps: number; requests: number }>({ kind: "rps", path: "/small", connections: 8, warmupMs, durationMs })
  const stream = (mb: number) => client<{ bytes: number; mbps: number }>({ kind: "stream", path: `/big?mb=${mb}` })

  process.stderr.write(`egress-profile: ${entry} ${extraFlags.join(" ")}; ${KIND}; ${pinned ? "proxy on core 1, upstream + load on core 0" : "not pinned"}; warm-up ${WARMUP_MS} ms\n`)
  if (KIND === "rps") await load(WARMUP_MS, 1000)
  else await stream(16)
  if (profiling) {
    const started = new Promise<void>((resolve) => readline.createInterface({ input: proxy.child.stdout! }).on("line", (l) => l === "profile: started" && resolve()))
    proxy.child.kill("SIGUSR2")
    await started
  }
  let requests = 0
  for (let i = 1; i <= RUNS; i++) {
    const c0 = cpuMs(proxy.child.pid!)
    if (KIND === "stream") {
      const r = await stream(MB)
      const used = cpuMs(proxy.child.pid!) - c0
      const mb = r.bytes / 1024 / 1024
      requests += 1
      process.stdout.write(`run ${i}: ${r.mbps.toFixed(0)} MB/s, ${(used / mb).toFixed(2)} ms of proxy CPU per MB (${mb.toFixed(0)} MB), peak RSS ${peakRssMb(proxy.child.pid!).toFixed(0)} MB\n`)
      continue
    }
    const r = await load(0, MS)
    const used = cpuMs(proxy.child.pid!) - c0
    requests += r.requests
    process.stdout.write(`run ${i}: ${r.rps.toFixed(0)} requests/s, ${((1000 * used) / r.requests).toFixed(0)} µs of proxy CPU per request (${r.requests} requests), peak RSS ${peakRssMb(proxy.child.pid!).toFixed(0)} MB\n`)
  }
  if (profiling) {
    const exited = new Promise((resolve) => proxy.child.once("exit", resolve))
    proxy.child.kill("SIGTERM")
    await exited
    if (HEAP) process.stdout.write(`allocated: ${(sampledBytes(path.join(outDir, "heap.json")) / requests / 1024).toFixed(1)} KB per ${KIND === "stream" ? "stream" : "request"} (sampled)\n`)
    if (CPU_DIR !== undefined) process.stdout.write(`CPU profile: ${path.join(outDir, "egress.cpuprofile")}\n`)
  }
  killChildren()
  fs.rmSync(dir, { recursive: true, force: true })
  process.exit(0)
}

main().catch((e) => {
  process.stderr.write(`egress-profile failed: ${e instanceof Error ? e.stack : String(e)}\n`)
  process.exit(1)
})
