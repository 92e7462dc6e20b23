/**
 * The measured process of `npm run bench:dash` (bench/dash.ts bundles it as scripts/build.mjs
 * bundles `bottle`, and runs it in a pseudo-terminal): the dashboard as `bottle dash` runs it
 * (src/dash/run.tsx's `mountDash`, React's production build, its V8 flags, a watching store) on fake layers
 * over the 20 bottles the driver made. It drives the refresh ticks and full refreshes itself
 * and writes its CPU figures (process.cpuUsage) to BENCH_DASH_OUT; the driver reads its memory
 * from /proc. Asserts nothing.
 */
import * as fs from "node:fs"

import { applyDashV8Flags } from "../src/cli/nodeFlags.ts"

// As `bottle dash` does (src/cli/dash.ts), before the dashboard loads.
process.env["NODE_ENV"] ??= "production"
applyDashV8Flags()
const { mountDash } = await import("../src/dash/run.tsx")
const { makeFixture } = await import("../test/dash.fixtures.ts")

const out = process.env["BENCH_DASH_OUT"]!
const TICKS = Number(process.env["BENCH_DASH_TICKS"] ?? 200)
const REFRESHES = 50
const report = (o: object) => fs.writeFileSync(out, JSON.stringify({ pid: process.pid, ...o }))

// The clock moves a minute per tick, so every tick changes what is drawn (ages, the window).
let clock = Date.now()
const f = await makeFixture({ watch: true, now: () => clock, root: process.env["BENCH_DASH_ROOT"]!, cwd: process.env["BENCH_DASH_CWD"]! })
await f.store.start()
const ink = mountDash(f.store, f.api, process.env)
const settle = () => new Promise((r) => setTimeout(r, 2))
const rest = (ms: number) => new Promise((r) => setTimeout(r, ms))
await rest(1000)

const measure = async (n: number, step: (i: number) => Promise<void> | void) => {
  const start = process.cpuUsage()
  for (let i = 0; i < n; i++) {
    await step(i)
    await settle()
  }
  const used = process.cpuUsage(start)
  return (used.user + used.system) / 1000 / n
}
// Idle cost of the loop itself (settling), to subtract.
const idle = await measure(TICKS, () => undefined)
const tick = await measure(TICKS, () => {
  clock += 60_000
  f.store.tick()
})
const slugs = f.store.getSnapshot().rows.map((r) => r.slug)
const refresh = await measure(REFRESHES, async (i) => {
  f.audit(slugs[i % slugs.length]!, [{}, { decision: "deny", status: 403 }])
  await f.store.refreshList()
  await Promise.all(slugs.map((s) => f.store.refreshBottle(s)))
})
// At rest afterwards, as a user leaves it: the driver samples the steady RSS now.
const mu = process.memoryUsage()
report({ heapUsed: mu.heapUsed, heapTotal: mu.heapTotal, external: mu.external, arrayBuffers: mu.arrayBuffers, rows: slugs.length, tickMs: Math.max(0, tick - idle), refreshMs: Math.max(0, refresh - idle), ticks: TICKS, refreshes: REFRESHES, done: true })
await ink.waitUntilExit()
await f.close()
process.exit(0)
