/**
 * The built CLI (`node bin/bottle.js`, bundled by `npm run build`) as a user runs it, for the
 * CLI-level tests: from a fresh empty directory, with its own state and cache dirs and no
 * Anthropic credential in the environment.
 *
 * The build is rebuilt when older than its sources, then copied to a private dir before use:
 * other processes may rebuild dist/ (which starts with `rm -rf dist`) while the tests run.
 */
import { spawn, spawnSync } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"

export const repo = path.join(import.meta.dirname, "..", "..")

/** A Docker engine address nothing answers on (how CI runs the unit tests: no engine yet). */
export const NO_ENGINE = { DOCKER_HOST: "unix:///nonexistent/bb-docker.sock" } as const

export const tmp = (prefix: string): string => fs.mkdtempSync(path.join(os.tmpdir(), prefix))

/** The non-blank lines of an output. */
export const lines = (s: string): Array<string> => s.split("\n").filter((l) => l.trim() !== "")

export interface Run {
  readonly status: number | null
  readonly stdout: string
  readonly stderr: string
  readonly stateDir: string
}

const newestMtime = (p: string): number => {
  const st = fs.statSync(p)
  if (!st.isDirectory()) return st.mtimeMs
  return fs.readdirSync(p).reduce((m, f) => Math.max(m, newestMtime(path.join(p, f))), st.mtimeMs)
}

const isStale = (): boolean => {
  const built = path.join(repo, "dist/bottle.mjs")
  if (!fs.existsSync(built)) return true
  const sources = ["src", "bundle", "package.json", "scripts/build.mjs"].map((p) => newestMtime(path.join(repo, p)))
  return Math.max(...sources) > fs.statSync(built).mtimeMs
}

/** Variables of the test runner's own environment that would change what the CLI does. */
const CLEARED = ["CLAUDE_CODE_OAUTH_TOKEN", "ANTHROPIC_API_KEY", "BOTTLE_BACKEND", "BOTTLE_DOCKER", "npm_lifecycle_event", "INIT_CWD"]

const invocation = (cliDir: string, args: ReadonlyArray<string>, env: Record<string, string>) => {
  const stateDir = tmp("bb-cli-state-")
  const base: Record<string, string | undefined> = { ...process.env }
  for (const k of CLEARED) delete base[k]
  return {
    stateDir,
    argv: [path.join(cliDir, "bin/bottle.js"), ...args],
    options: {
      cwd: tmp("bb-cli-cwd-"),
      env: { ...base, BOTTLE_STATE_DIR: stateDir, BOTTLE_CACHE_DIR: tmp("bb-cli-cache-"), ...env },
      timeout: 30_000
    }
  }
}

/** A built CLI in a private dir (built first when stale); for `beforeAll`. */
export const prepareCli = (): string => {
  for (let attempt = 0; ; attempt++) {
    if (isStale()) {
      const b = spawnSync("npm", ["run", "-s", "build"], { cwd: repo, encoding: "utf8" })
      if (b.status !== 0) throw new Error(`npm run build failed:\n${b.stdout}${b.stderr}`)
    }
    const cliDir = tmp("bb-cli-build-")
    try {
      for (const d of ["bin", "dist"]) fs.cpSync(path.join(repo, d), path.join(cliDir, d), { recursive: true })
      fs.copyFileSync(path.join(repo, "package.json"), path.join(cliDir, "package.json"))
      if (bottleSync(cliDir, ["--version"]).status === 0) return cliDir
    } catch (e) {
      if (attempt >= 3) throw e
    }
    if (attempt >= 3) throw new Error("could not get a working build of the CLI (is someone else rebuilding dist/?)")
  }
}

/** Runs the CLI to completion; stdin is a closed pipe (not a terminal); `env` is added last. */
export const bottleSync = (cliDir: string, args: ReadonlyArray<string>, env: Record<string, string> = {}): Run => {
  const { stateDir, argv, options } = invocation(cliDir, args, env)
  const r = spawnSync(process.execPath, argv, { ...options, input: "", encoding: "utf8" })
  return { status: r.status, stdout: r.stdout, stderr: r.stderr, stateDir }
}

/** The same, without blocking (for running many at once). */
export const bottleAsync = (cliDir: string, args: ReadonlyArray<string>, env: Record<string, string> = {}): Promise<Run> =>
  new Promise((resolve, reject) => {
    const { stateDir, argv, options } = invocation(cliDir, args, env)
    const child = spawn(process.execPath, argv, { ...options, stdio: ["ignore", "pipe", "pipe"] })
    let stdout = ""
    let stderr = ""
    child.stdout.setEncoding("utf8").on("data", (d: string) => (stdout += d))
    child.stderr.setEncoding("utf8").on("data", (d: string) => (stderr += d))
    child.on("error", reject)
    child.on("close", (status) => resolve({ status, stdout, stderr, stateDir }))
  })
