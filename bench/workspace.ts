/**
 * `npm run bench:workspace`: `bottle start --yes --detach` (default manifest: copy_cwd) until
 * the bottle is exec-ready, in an empty directory and in a generated 400 MB / 20 000-file one,
 * in the same run, alternating. Both are owned by uid 1500, a typical host user's tree (not root,
 * not the image's 1000: the agent's user takes that uid, so the tree is already the agent's and
 * nothing walks it). As an extra figure, the large tree owned by root (as on CI: the agent keeps
 * uid 1000 and the tree gets the ownership fix-up, a metadata-only copy-up of every entry). Also `bottle resume --detach`
 * of the large one (the workspace is found again, nothing is copied). Needs a Docker engine;
 * the first, untimed, start builds the images. Prints figures; asserts nothing.
 *
 * Target: large (uid 1500) ≤ 1.3 × empty (uid 1500).
 */
import { spawnSync } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { bottleNames } from "../src/programs/bottleNames.ts"

const root = path.resolve(import.meta.dirname, "..")
const bin = path.join(root, "bin", "bottle.js")
const runs = Number(process.env["BENCH_RUNS"] ?? 3)
const FILES = 20_000
const FILE_BYTES = 20 * 1024
spawnSync("npm", ["run", "-s", "build"], { cwd: root, stdio: "inherit" })

const state = fs.mkdtempSync(path.join(os.tmpdir(), "bottle-bench-ws-state-"))
const env = { ...process.env, BOTTLE_STATE_DIR: state, CLAUDE_CODE_OAUTH_TOKEN: "bench-placeholder-token" }

const sh = (cmd: string, args: ReadonlyArray<string>, cwd: string) => {
  const r = spawnSync(cmd, args, { cwd, env, encoding: "utf8" })
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(" ")} failed: ${r.stderr}`)
  return r.stdout
}
const time = (f: () => void) => {
  const t = process.hrtime.bigint()
  f()
  return Number(process.hrtime.bigint() - t) / 1e6
}
const median = (xs: ReadonlyArray<number>) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!

/** 200 directories × 100 files × 20 KB: 400 MB, 20 000 files. */
const generate = (dir: string) => {
  const block = Buffer.alloc(FILE_BYTES)
  for (let d = 0; d < FILES / 100; d++) {
    fs.mkdirSync(path.join(dir, `d${d}`))
    for (let f = 0; f < 100; f++) {
      block.writeUInt32LE(d * 100 + f, 0)
      fs.writeFileSync(path.join(dir, `d${d}`, `f${f}.bin`), block)
    }
  }
}

const empty = fs.mkdtempSync(path.join(os.tmpdir(), "bottle-bench-ws-empty-"))
const large = fs.mkdtempSync(path.join(os.tmpdir(), "bottle-bench-ws-large-"))
const largeRoot = fs.mkdtempSync(path.join(os.tmpdir(), "bottle-bench-ws-large-root-"))
generate(large)
const HOST_UID = 1500
// The same tree, owned by this process's uid (root here; the copy is made before the chown).
fs.cpSync(large, largeRoot, { recursive: true })
const userOwned = [large, empty].every((d) => spawnSync("chown", ["-R", `${HOST_UID}:${HOST_UID}`, d]).status === 0)
if (process.getuid?.() !== 0) console.log(`note: not running as root, the trees are this user's (uid ${process.getuid?.()}), not uid ${HOST_UID}'s and root's`)

const startReady = (cwd: string, name: string) =>
  time(() => {
    sh(process.execPath, [bin, "start", "claude", "--yes", "--detach", "--name", name], cwd)
    sh("docker", ["exec", bottleNames(state, name).agent, "true"], cwd)
  })
const stop = (cwd: string, name: string, purge = true) => sh(process.execPath, [bin, "stop", name, ...(purge ? ["--purge"] : [])], cwd)

// Warm-up (builds images if needed; not timed).
startReady(empty, "bench-ws-warm")
stop(empty, "bench-ws-warm")

const figures = { empty: [] as Array<number>, large: [] as Array<number>, largeOther: [] as Array<number>, resume: [] as Array<number> }
for (let i = 0; i < runs; i++) {
  figures.empty.push(startReady(empty, `bench-ws-e${i}`))
  stop(empty, `bench-ws-e${i}`)
  figures.large.push(startReady(large, `bench-ws-l${i}`))
  stop(large, `bench-ws-l${i}`, false)
  figures.resume.push(time(() => {
    sh(process.execPath, [bin, "resume", `bench-ws-l${i}`, "--detach"], large)
    sh("docker", ["exec", bottleNames(state, `bench-ws-l${i}`).agent, "true"], large)
  }))
  stop(large, `bench-ws-l${i}`)
  figures.largeOther.push(startReady(largeRoot, `bench-ws-r${i}`))
  stop(largeRoot, `bench-ws-r${i}`)
}

const e = median(figures.empty)
const l = median(figures.large)
const all = (xs: ReadonlyArray<number>) => `(all: ${xs.map((x) => x.toFixed(0)).join(", ")})`
const info = spawnSync("docker", ["info", "--format", "{{.OperatingSystem}} / docker {{.ServerVersion}}"], { encoding: "utf8" }).stdout.trim()
console.log(`bottle start --detach → exec-ready, copy_cwd workspace (${runs} runs, medians; ${info})`)
const row = (label: string, ms: number, xs: ReadonlyArray<number>, extra = "") => console.log(`  ${label.padEnd(68)} ${ms.toFixed(0).padStart(6)} ms   ${all(xs)}${extra}`)
row(`empty directory, owned by uid ${HOST_UID}`, e, figures.empty)
row(`${FILES} files / ${(FILES * FILE_BYTES / 1e6).toFixed(0)} MB, owned by uid ${HOST_UID}${userOwned ? "" : " (chown failed: not root?)"}`, l, figures.large)
console.log(`  ${"ratio".padEnd(68)} ${(l / e).toFixed(2).padStart(6)}×    target ≤ 1.3×  ${l / e <= 1.3 ? "met" : "MISSED"}`)
row(`extra: same tree, owned by uid ${process.getuid?.() ?? "?"} (agent keeps 1000, ownership fix-up)`, median(figures.largeOther), figures.largeOther, `  (${(median(figures.largeOther) / e).toFixed(2)}×)`)
row("resume --detach of the large one", median(figures.resume), figures.resume)
for (const d of [empty, large, largeRoot, state]) fs.rmSync(d, { recursive: true, force: true })
