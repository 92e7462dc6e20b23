/**
 * `npm run bench:cli`: start-up time of `bottle --help` and `bottle plan claude` (in an empty
 * directory, so the embedded default manifest is used), measured with hyperfine when present,
 * else with repeated spawns. Target: under 300 ms each. Prints figures; asserts nothing.
 */
import { execFileSync, spawnSync } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"

const root = path.resolve(import.meta.dirname, "..")
const node = process.execPath
const bin = path.join(root, "bin", "bottle.js")
if (!fs.existsSync(path.join(root, "dist", "bottle.mjs"))) execFileSync("npm", ["run", "-s", "build"], { cwd: root, stdio: "inherit" })
const empty = fs.mkdtempSync(path.join(os.tmpdir(), "bottle-bench-"))
const state = fs.mkdtempSync(path.join(os.tmpdir(), "bottle-bench-state-"))
const env = { ...process.env, BOTTLE_STATE_DIR: state }

const cases = [
  { name: "bottle --help", args: ["--help"] },
  { name: "bottle plan claude", args: ["plan", "claude"] }
]
const TARGET_MS = 300
const runs = 20

const hasHyperfine = spawnSync("hyperfine", ["--version"]).status === 0
const results: Array<{ name: string; mean: number; p50: number; max: number }> = []
for (const c of cases) {
  if (hasHyperfine) {
    const out = path.join(empty, "hf.json")
    execFileSync("hyperfine", ["--warmup", "3", "--runs", String(runs), "--export-json", out, "--style", "none", `${node} ${bin} ${c.args.join(" ")}`], { cwd: empty, env, stdio: "ignore" })
    const r = (JSON.parse(fs.readFileSync(out, "utf8")) as { results: Array<{ mean: number; median: number; max: number }> }).results[0]!
    results.push({ name: c.name, mean: r.mean * 1000, p50: r.median * 1000, max: r.max * 1000 })
  } else {
    const times: Array<number> = []
    for (let i = 0; i < runs + 3; i++) {
      const t = process.hrtime.bigint()
      const r = spawnSync(node, [bin, ...c.args], { cwd: empty, env, stdio: "ignore" })
      if (r.status !== 0) throw new Error(`${c.name} exited ${r.status}`)
      if (i >= 3) times.push(Number(process.hrtime.bigint() - t) / 1e6)
    }
    times.sort((a, b) => a - b)
    results.push({ name: c.name, mean: times.reduce((a, b) => a + b, 0) / times.length, p50: times[Math.floor(times.length / 2)]!, max: times[times.length - 1]! })
  }
}
console.log(`CLI start-up (${runs} runs each, ${hasHyperfine ? "hyperfine" : "spawnSync"}; node ${process.version}; target < ${TARGET_MS} ms)`)
console.log("command                 mean ms   p50 ms   max ms   target")
for (const r of results) {
  console.log(`${r.name.padEnd(22)} ${r.mean.toFixed(1).padStart(7)}  ${r.p50.toFixed(1).padStart(7)}  ${r.max.toFixed(1).padStart(7)}   ${r.mean < TARGET_MS ? "met" : "MISSED"}`)
}
fs.rmSync(empty, { recursive: true, force: true })
fs.rmSync(state, { recursive: true, force: true })
