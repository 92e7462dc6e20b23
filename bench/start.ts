/**
 * `npm run bench:start`: warm-cache `bottle start --yes --detach` until the bottle is
 * exec-ready, against the raw docker calls it makes (2 network creates, 2 runs) in the same
 * run, plus the unchanged-image check. Needs a Docker engine and the images already built
 * (the first, untimed, start builds them). Prints figures; asserts nothing.
 *
 * Targets: start ≤ 1.5 × raw, start ≤ 2 s, unchanged-image check ≤ 200 ms.
 */
import { spawnSync } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { Effect } from "effect"
import * as DockerLive from "../src/layers/Docker.ts"
import { bottleNames } from "../src/programs/bottleNames.ts"
import { agentImageSource, bundleImageSource, ensureImage } from "../src/programs/images.ts"

const root = path.resolve(import.meta.dirname, "..")
const bin = path.join(root, "bin", "bottle.js")
const runs = Number(process.env["BENCH_RUNS"] ?? 5)
spawnSync("npm", ["run", "-s", "build"], { cwd: root, stdio: "inherit" })

const cwd = fs.mkdtempSync(path.join(os.tmpdir(), "bottle-bench-start-"))
const state = fs.mkdtempSync(path.join(os.tmpdir(), "bottle-bench-state-"))
const env = { ...process.env, BOTTLE_STATE_DIR: state, CLAUDE_CODE_OAUTH_TOKEN: "bench-placeholder-token" }

const sh = (cmd: string, args: ReadonlyArray<string>, e: NodeJS.ProcessEnv = env) => {
  const r = spawnSync(cmd, args, { cwd, env: e, encoding: "utf8" })
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(" ")} failed: ${r.stderr}`)
  return r.stdout
}
const time = (f: () => void) => {
  const t = process.hrtime.bigint()
  f()
  return Number(process.hrtime.bigint() - t) / 1e6
}
const median = (xs: Array<number>) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!

// Warm-up: builds images if needed (not timed).
sh(process.execPath, [bin, "start", "claude", "--yes", "--detach", "--name", "bench-warm"])
sh(process.execPath, [bin, "stop", "bench-warm", "--purge"])
const images = spawnSync("docker", ["images", "--format", "{{.Repository}}:{{.Tag}} {{.CreatedAt}}"], { encoding: "utf8" }).stdout
const latest = (name: string) => images.split("\n").filter((l) => l.startsWith(`bot-bottle/${name}:`)).sort((a, b) => b.split(" ").slice(1).join(" ").localeCompare(a.split(" ").slice(1).join(" ")))[0]!.split(" ")[0]!

const bottle: Array<number> = []
const raw: Array<number> = []
for (let i = 0; i < runs; i++) {
  const name = `bench-${i}`
  bottle.push(time(() => {
    sh(process.execPath, [bin, "start", "claude", "--yes", "--detach", "--name", name])
    sh("docker", ["exec", bottleNames(state, name).agent, "true"])
  }))
  sh(process.execPath, [bin, "stop", name, "--purge"])

  const n = `bench-raw-${i}`
  raw.push(time(() => {
    sh("docker", ["network", "create", "--internal", "--subnet", "10.213.250.0/24", "--ip-range", "10.213.250.128/25", `${n}-int`])
    sh("docker", ["network", "create", `${n}-ext`])
    sh("docker", ["run", "-d", "--name", `${n}-bundle`, "--network", `${n}-int`, "--ip", "10.213.250.2", "--entrypoint", "sleep", latest("bundle"), "infinity"])
    sh("docker", ["run", "-d", "--name", `${n}-agent`, "--network", `${n}-int`, latest("agent"), "sleep", "infinity"])
  }))
  spawnSync("docker", ["rm", "-f", `${n}-bundle`, `${n}-agent`])
  spawnSync("docker", ["network", "rm", `${n}-int`, `${n}-ext`])
}

const check: Array<number> = []
for (let i = 0; i < runs; i++) {
  check.push(await Effect.runPromise(Effect.gen(function*() {
    const t = process.hrtime.bigint()
    const a = yield* ensureImage(agentImageSource(), { env })
    const b = yield* ensureImage(bundleImageSource(), { env })
    if (a.built || b.built) throw new Error("images were rebuilt: the check is not warm")
    return Number(process.hrtime.bigint() - t) / 1e6
  }).pipe(Effect.provide(DockerLive.layer))))
}

const s = median(bottle)
const r = median(raw)
console.log(`bottle start, warm cache (${runs} runs, medians; docker ${sh("docker", ["version", "--format", "{{.Server.Version}}"]).trim()})`)
console.log(`  bottle start --yes --detach → exec-ready   ${s.toFixed(0).padStart(6)} ms   (all: ${bottle.map((x) => x.toFixed(0)).join(", ")})`)
console.log(`  raw docker calls (2 network create, 2 run) ${r.toFixed(0).padStart(6)} ms   (all: ${raw.map((x) => x.toFixed(0)).join(", ")})`)
console.log(`  ratio                                        ${(s / r).toFixed(2)}×     target ≤ 1.5×  ${s / r <= 1.5 ? "met" : "MISSED"}`)
console.log(`  absolute                                     ${(s / 1000).toFixed(2)} s    target ≤ 2 s    ${s <= 2000 ? "met" : "MISSED"}`)
console.log(`  unchanged-image check (agent + bundle)     ${median(check).toFixed(0).padStart(6)} ms   target ≤ 200 ms ${median(check) <= 200 ? "met" : "MISSED"}`)
fs.rmSync(cwd, { recursive: true, force: true })
fs.rmSync(state, { recursive: true, force: true })
