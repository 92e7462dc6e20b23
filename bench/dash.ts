/**
 * `npm run bench:dash`: the dashboard with 20 bottles on fake layers. The measured process is
 * the dashboard alone (bench/dash-child.ts, bundled as scripts/build.mjs bundles `bottle`, run
 * in a pseudo-terminal at 80×24, setting `bottle dash`'s V8 flags): it drives the refresh ticks
 * (the 5-minute window slides and the screen is drawn again; target ≤ 20 ms CPU) and full
 * refreshes (listBottles, every bottle's new audit lines and approvals, then the draw) and
 * reports their CPU; this driver, which made the 20 bottles (real state dirs from the test
 * fixture), reads the child's peak (VmHWM) and steady (VmRSS, at rest after the ticks) memory
 * from /proc (target ≤ 120 MB). Then the built `bottle dash` itself (the whole CLI, the real
 * engine: the bottles have no containers) on the same 20 bottles, at rest. Median of 3 runs
 * each (BENCH_DASH_RUNS). Asserts nothing.
 */
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { spawn, spawnSync } from "node:child_process"
import { DASH_V8_FLAGS } from "../src/cli/nodeFlags.ts"
import { makeFixture } from "../test/dash.fixtures.ts"

const BOTTLES = 20
const RUNS = Number(process.env["BENCH_DASH_RUNS"] ?? 3)
const repo = path.dirname(import.meta.dirname)

if (spawnSync("script", ["--version"]).status !== 0 || !fs.existsSync("/proc/self/status")) {
  console.log("bench:dash needs `script` (util-linux) and /proc")
  process.exit(1)
}

const median = (xs: ReadonlyArray<number>) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!
const rest = (ms: number) => new Promise((r) => setTimeout(r, ms))
const memOf = (pid: string | number) => {
  const status = fs.readFileSync(`/proc/${pid}/status`, "utf8")
  const mb = (k: string) => Number(new RegExp(`${k}:\\s+(\\d+)`).exec(status)?.[1] ?? NaN) / 1024
  return { rss: mb("VmRSS"), peak: mb("VmHWM") }
}

/** Runs `argv` in a pseudo-terminal (80×24); `pidOf` finds the measured process; `measure` runs while it is up; then `q`. */
const inPty = async <A>(argv: ReadonlyArray<string>, env: Record<string, string | undefined>, measure: (pid: () => string) => Promise<A>): Promise<A> => {
  const quoted = argv.map((a) => `'${a.replace(/'/g, `'\\''`)}'`).join(" ")
  const child = spawn("script", ["-qfc", `stty cols 80 rows 24; exec ${quoted}`, "/dev/null"], {
    env: { ...process.env, ...env, TERM: "xterm" },
    stdio: ["pipe", "ignore", "ignore"]
  })
  const pid = () => spawnSync("pgrep", ["-P", String(child.pid)], { encoding: "utf8" }).stdout.trim().split("\n")[0] ?? ""
  try {
    return await measure(pid)
  } finally {
    child.stdin!.write("q")
    const exited = new Promise((r) => child.once("exit", r))
    await Promise.race([exited, rest(3000)])
    if (child.exitCode === null) child.kill()
  }
}

// The 20 bottles, made here (the driver's memory is not measured).
const f = await makeFixture()
for (let i = 0; i < BOTTLES; i++) {
  const slug = `coder-${String(i).padStart(2, "0")}`
  await f.addBottle(slug, i % 2 === 0 ? "coder" : "scout")
  f.audit(slug, Array.from({ length: 200 }, (_, j) => (j % 7 === 0 ? { decision: "deny" as const, status: 403 } : {})))
  if (i % 3 === 0) f.ask(slug, { id: `benchreq${String(i).padStart(2, "0").replace(/[01]/g, "a")}ab`.slice(0, 12).padEnd(12, "a"), title: "may I push?" })
}
await f.close()

// The child bundled as `bottle` is (scripts/build.mjs's options).
const dir = fs.mkdtempSync(path.join(os.tmpdir(), "bench-dash-"))
const { build } = await import("esbuild")
await build({
  entryPoints: { "dash-child": path.join(import.meta.dirname, "dash-child.ts") }, outdir: dir, outExtension: { ".js": ".mjs" },
  splitting: true, chunkNames: "chunks/[name]-[hash]", bundle: true, platform: "node", format: "esm", target: "node22",
  banner: { js: "import { createRequire as __cr } from 'node:module'; const require = __cr(import.meta.url);" },
  define: { __BOTTLE_VERSION__: JSON.stringify("bench") }, jsx: "automatic", external: ["react-devtools-core"], logLevel: "warning"
})

type Run = { tickMs: number; refreshMs: number; peak: number; steady: number; rows: number; heap: number; external: number }
const runs: Array<Run> = []
for (let r = 0; r < RUNS; r++) {
  const out = path.join(dir, `out-${r}.json`)
  runs.push(await inPty([process.execPath, path.join(dir, "dash-child.mjs")], { BENCH_DASH_OUT: out, BENCH_DASH_ROOT: f.root, BENCH_DASH_CWD: f.cwd }, async () => {
    for (let i = 0; i < 6000 && !(fs.existsSync(out) && JSON.parse(fs.readFileSync(out, "utf8")).done); i++) await rest(20)
    const res = JSON.parse(fs.readFileSync(out, "utf8")) as { pid: number; tickMs: number; refreshMs: number; rows: number; heapUsed: number; external: number }
    await rest(2000)
    const m = memOf(res.pid)
    return { tickMs: res.tickMs, refreshMs: res.refreshMs, rows: res.rows, heap: res.heapUsed / 2 ** 20, external: res.external / 2 ** 20, peak: m.peak, steady: m.rss }
  }))
}

// The built `bottle dash` (the whole CLI) at rest on the same bottles.
if (!fs.existsSync(path.join(repo, "dist", "bottle.mjs"))) spawnSync("npm", ["run", "-s", "build"], { cwd: repo, stdio: "inherit" })
const real: Array<{ peak: number; steady: number }> = []
for (let r = 0; r < RUNS; r++) {
  real.push(await inPty([process.execPath, path.join(repo, "bin", "bottle.js"), "dash"], { BOTTLE_STATE_DIR: f.root }, async (pid) => {
    await rest(6000)
    const m = memOf(pid())
    return { peak: m.peak, steady: m.rss }
  }))
}
fs.rmSync(dir, { recursive: true, force: true })

const mid = (k: keyof Run) => median(runs.map((x) => x[k]))
const ok = (v: number, max: number) => (v <= max ? "ok" : "OVER")
console.log(`bottle dash, ${BOTTLES} bottles on fake layers, 80×24, in its own process (V8 ${DASH_V8_FLAGS.join(" ")}); median of ${RUNS}`)
console.log(`  refresh tick (window slide + draw): ${mid("tickMs").toFixed(2)} ms CPU per tick (runs: ${runs.map((x) => x.tickMs.toFixed(2)).join(", ")})  target ≤ 20 ms  ${ok(mid("tickMs"), 20)}`)
console.log(`  full refresh (listBottles + ${BOTTLES} feeds + draw): ${mid("refreshMs").toFixed(2)} ms CPU per refresh`)
console.log(`  RSS: peak ${mid("peak").toFixed(1)} MB, steady ${mid("steady").toFixed(1)} MB (runs: ${runs.map((x) => `${x.peak.toFixed(0)}/${x.steady.toFixed(0)}`).join(", ")})  target ≤ 120 MB  ${ok(mid("peak"), 120)}`)
console.log(`  (JS heap used ${mid("heap").toFixed(1)} MB, external ${mid("external").toFixed(1)} MB after the refreshes)`)
const rmid = (k: "peak" | "steady") => median(real.map((x) => x[k]))
console.log(`  built \`bottle dash\` (whole CLI, real engine, same bottles, at rest): RSS peak ${rmid("peak").toFixed(1)} MB, steady ${rmid("steady").toFixed(1)} MB  target ≤ 120 MB  ${ok(rmid("peak"), 120)}`)
