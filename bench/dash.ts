/**
 * `npm run bench:dash`: the dashboard with 20 bottles on fake layers (test/dash.fixtures.ts:
 * real state dirs and programs, a fake backend), rendered by Ink at 80×24 into a fake
 * terminal. Prints the CPU cost of a refresh tick (the 5-minute window slides and the screen
 * is drawn again; target ≤ 20 ms), of a full refresh (listBottles, every bottle's new audit
 * lines and approvals, then the draw), and the process's RSS (target ≤ 120 MB). Asserts nothing.
 *
 * Node runs .ts but not .tsx (JSX): this script first bundles itself with esbuild, then runs
 * the bundle.
 */
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { EventEmitter } from "node:events"
import { spawnSync } from "node:child_process"

const BOTTLES = 20
const TICKS = Number(process.env["BENCH_DASH_TICKS"] ?? 200)
const REFRESHES = 50

const bundleSelf = async () => {
  const { build } = await import("esbuild")
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "bench-dash-"))
  const out = path.join(dir, "dash.mjs")
  await build({
    entryPoints: { dash: import.meta.filename }, outdir: dir, outExtension: { ".js": ".mjs" }, splitting: true, bundle: true, platform: "node", format: "esm", target: "node22",
    // Everything in one file, as scripts/build.mjs bundles `bottle` (memory is then comparable).
    jsx: "automatic", logLevel: "warning", external: ["react-devtools-core"],
    banner: { js: "import { createRequire as __cr } from 'node:module'; const require = __cr(import.meta.url);" },
    define: { "process.env.BENCH_DASH_BUNDLED": '"1"', "process.env.NODE_ENV": '"production"' }
  })
  // A fresh process, so the bundler's own memory is not counted.
  const rootFile = path.join(dir, "root")
  const r = spawnSync(process.execPath, ["--expose-gc", out], { stdio: "inherit", cwd: path.dirname(import.meta.dirname), env: { ...process.env, BENCH_DASH_ROOT_FILE: rootFile } })
  process.exitCode = r.status ?? 1
  if (fs.existsSync(rootFile)) await realProcess(fs.readFileSync(rootFile, "utf8"))
}

/**
 * The built `bottle dash` itself on the same 20 bottles, in a pseudo-terminal (`script`), at
 * rest after its first screens: its RSS from /proc. It asks the real engine for the bottles'
 * status (they have no containers: all stopped; without an engine, unknown).
 */
const realProcess = async (root: string) => {
  const repo = path.dirname(import.meta.dirname)
  const bin = path.join(repo, "bin", "bottle.js")
  if (!fs.existsSync(path.join(repo, "dist", "bottle.mjs"))) spawnSync("npm", ["run", "-s", "build"], { cwd: repo, stdio: "inherit" })
  if (spawnSync("script", ["--version"]).status !== 0 || !fs.existsSync("/proc/self/status")) {
    console.log("  bottle dash process: not measured (needs `script` and /proc)")
    return
  }
  const { spawn } = await import("node:child_process")
  const child = spawn("script", ["-qfc", `exec ${process.execPath} ${bin} dash`, "/dev/null"], {
    env: { ...process.env, BOTTLE_STATE_DIR: root, TERM: "xterm", COLUMNS: "80", LINES: "24" },
    stdio: ["pipe", "ignore", "ignore"]
  })
  await new Promise((r) => setTimeout(r, 5000))
  const pid = spawnSync("pgrep", ["-P", String(child.pid)], { encoding: "utf8" }).stdout.trim().split("\n")[0]
  const status = pid ? fs.readFileSync(`/proc/${pid}/status`, "utf8") : ""
  const kb = (k: string) => Number(new RegExp(`${k}:\\s+(\\d+)`).exec(status)?.[1] ?? NaN) / 1024
  child.stdin!.write("q")
  await new Promise((r) => setTimeout(r, 500))
  child.kill()
  const rss = kb("VmRSS")
  console.log(`  bottle dash process (built CLI, the same 20 bottles, at rest): RSS ${rss.toFixed(1)} MB (peak ${kb("VmHWM").toFixed(1)} MB)  target ≤ 120 MB  ${rss <= 120 ? "ok" : "OVER"}`)
}

const bench = async () => {
  const React = (await import("react")).default
  const { render } = await import("ink")
  const { App } = await import("../src/dash/components/App.tsx")
  const { makeFixture } = await import("../test/dash.fixtures.ts")
  const mem = (what: string) => console.log(`  [${what}] rss ${(process.memoryUsage().rss / 2 ** 20).toFixed(1)} MB heap ${(process.memoryUsage().heapUsed / 2 ** 20).toFixed(1)} MB ext ${(process.memoryUsage().external / 2 ** 20).toFixed(1)} MB`)
  mem("modules loaded")

  // The clock moves a minute per tick, so every tick changes what is drawn (ages, the window).
  let clock = Date.now()
  const f = await makeFixture({ now: () => clock })
  for (let i = 0; i < BOTTLES; i++) {
    const slug = `coder-${String(i).padStart(2, "0")}`
    await f.addBottle(slug, i % 2 === 0 ? "coder" : "scout")
    f.audit(slug, Array.from({ length: 200 }, (_, j) => (j % 7 === 0 ? { decision: "deny" as const, status: 403 } : {})))
    if (i % 3 === 0) f.ask(slug, { id: `benchreq${String(i).padStart(2, "2").replace(/[01]/g, "a")}ab`.slice(0, 12).padEnd(12, "a"), title: "may I push?" })
  }
  await f.store.start()
  mem("20 bottles loaded")

  // A terminal of 80×24 that throws the bytes away.
  class Tty extends EventEmitter {
    columns = 80
    rows = 24
    isTTY = true
    bytes = 0
    writes = 0
    write(chunk: string | Uint8Array, cb?: () => void) {
      this.bytes += chunk.length
      this.writes++
      cb?.()
      return true
    }
  }
  const stdout = new Tty()
  const ink = render(React.createElement(App, { store: f.store, api: f.api }), {
    stdout: stdout as unknown as NodeJS.WriteStream,
    stdin: Object.assign(new EventEmitter(), { isTTY: true, setRawMode() {}, resume() {}, pause() {}, ref() {}, unref() {}, read: () => null, setEncoding() {} }) as unknown as NodeJS.ReadStream,
    interactive: true,
    incrementalRendering: true,
    patchConsole: false,
    maxFps: 1000
  })
  const settle = () => new Promise((r) => setTimeout(r, 2))
  await settle()

  const measure = async (n: number, step: (i: number) => Promise<void> | void) => {
    const framesBefore = stdout.writes
    const start = process.cpuUsage()
    for (let i = 0; i < n; i++) {
      await step(i)
      await settle()
    }
    const used = process.cpuUsage(start)
    return { ms: (used.user + used.system) / 1000 / n, frames: stdout.writes - framesBefore }
  }

  // Idle cost of the loop itself (settling), to subtract.
  mem("first draw")
  const idle = await measure(TICKS, () => undefined)
  const tick = await measure(TICKS, () => {
    clock += 60_000
    f.store.tick()
  })
  ;(globalThis as { gc?: () => void }).gc?.()
  mem("after ticks (GC)")
  const refresh = await measure(REFRESHES, async (i) => {
    f.audit(`coder-${String(i % BOTTLES).padStart(2, "0")}`, [{}, { decision: "deny", status: 403 }])
    await f.store.refreshList()
    await Promise.all(f.store.getSnapshot().rows.map((r) => f.store.refreshBottle(r.slug)))
  })
  mem("after refreshes")
  const rss = process.memoryUsage().rss / 2 ** 20
  const peak = process.resourceUsage().maxRSS / 1024
  ;(globalThis as { gc?: () => void }).gc?.()
  await settle()
  const settled = process.memoryUsage().rss / 2 ** 20
  ink.unmount()
  await f.close()

  if (process.env["BENCH_DASH_ROOT_FILE"]) fs.writeFileSync(process.env["BENCH_DASH_ROOT_FILE"], f.root)
  const tickMs = Math.max(0, tick.ms - idle.ms)
  const refreshMs = Math.max(0, refresh.ms - idle.ms)
  console.log(`bottle dash, ${BOTTLES} bottles on fake layers, 80×24`)
  console.log(`  refresh tick (window slide + draw): ${tickMs.toFixed(2)} ms CPU per tick over ${TICKS} ticks (${tick.frames} screen updates written)  target ≤ 20 ms  ${tickMs <= 20 ? "ok" : "OVER"}`)
  console.log(`  full refresh (listBottles + ${BOTTLES} feeds + draw): ${refreshMs.toFixed(2)} ms CPU per refresh over ${REFRESHES}`)
  console.log(`  bench process RSS: ${rss.toFixed(1)} MB at the end (peak ${peak.toFixed(1)} MB), ${settled.toFixed(1)} MB after a full GC  target ≤ 120 MB  ${peak <= 120 ? "ok" : settled <= 120 ? "ok after GC; the peak is garbage not yet collected" : "OVER"}`)
  process.exit(0)
}

if (process.env["BENCH_DASH_BUNDLED"] === "1") await bench()
else await bundleSelf()
