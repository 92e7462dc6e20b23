/**
 * Helpers for end-to-end tests on a real Docker engine: run the built CLI as a user would, and
 * look at what the engine has under a bottle's label.
 */
import { execFileSync, spawn, spawnSync, type ChildProcess } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"

export const ROOT = path.resolve(import.meta.dirname, "../..")
export const BIN = path.join(ROOT, "bin", "bottle.js")

export const ensureBuilt = () => {
  execFileSync("npm", ["run", "-s", "build"], { cwd: ROOT, stdio: "inherit" })
}

export interface CliResult {
  readonly code: number | null
  readonly stdout: string
  readonly stderr: string
}

export const cli = (args: ReadonlyArray<string>, opts: { cwd: string; env: NodeJS.ProcessEnv; input?: string }): CliResult => {
  const r = spawnSync(process.execPath, [BIN, ...args], { cwd: opts.cwd, env: opts.env, input: opts.input ?? "", encoding: "utf8", timeout: 900_000 })
  return { code: r.status, stdout: r.stdout, stderr: r.stderr }
}

/** Starts the CLI without waiting; the caller reads its stderr and may signal it. */
export const cliSpawn = (args: ReadonlyArray<string>, opts: { cwd: string; env: NodeJS.ProcessEnv }): ChildProcess & { output: () => string } => {
  const child = spawn(process.execPath, [BIN, ...args], { cwd: opts.cwd, env: opts.env, stdio: ["ignore", "pipe", "pipe"] })
  let out = ""
  child.stdout!.on("data", (c: Buffer) => (out += c.toString()))
  child.stderr!.on("data", (c: Buffer) => (out += c.toString()))
  return Object.assign(child, { output: () => out })
}

export const docker = (args: ReadonlyArray<string>, input?: string): { code: number | null; stdout: string; stderr: string } => {
  const r = spawnSync("docker", args, { encoding: "utf8", input: input ?? "", timeout: 300_000 })
  return { code: r.status, stdout: r.stdout, stderr: r.stderr }
}

/** Everything the engine has carrying the bottle's slug label. */
export const labelled = (slug: string): Array<string> => {
  const f = `label=bot-bottle.slug=${slug}`
  return [
    ...docker(["ps", "-a", "--filter", f, "--format", "container {{.Names}}"]).stdout.split("\n"),
    ...docker(["network", "ls", "--filter", f, "--format", "network {{.Name}}"]).stdout.split("\n"),
    ...docker(["volume", "ls", "--filter", f, "--format", "volume {{.Name}}"]).stdout.split("\n")
  ].filter((l) => l.trim() !== "")
}

/** What the engine runs for a bottle (containers, networks): `labelled` less the volumes `stop` keeps for `resume`. */
export const runningParts = (slug: string): Array<string> => labelled(slug).filter((l) => !l.startsWith("volume "))

/** Slugs holding a subnet lease in a state root (the index files; owner records sit in by-slug/). */
export const subnetLeaseHolders = (stateDir: string): Array<string> => {
  const dir = path.join(stateDir, "leases", "subnet")
  if (!fs.existsSync(dir)) return []
  return fs.readdirSync(dir).filter((f) => /^\d+$/.test(f)).map((f) => fs.readFileSync(path.join(dir, f), "utf8"))
}

export const tempDir = (prefix: string) => fs.mkdtempSync(path.join(os.tmpdir(), prefix))

/** Waits until `pred()` is true, polling; throws after `ms`. */
export const waitFor = async (pred: () => boolean, ms: number, what: string) => {
  const deadline = Date.now() + ms
  while (!pred()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 20))
  }
}

/** A clean env for the CLI: no host tokens leak in from the developer's shell. */
export const baseEnv = (extra: Record<string, string>): NodeJS.ProcessEnv => {
  const env: NodeJS.ProcessEnv = {}
  for (const k of ["PATH", "HOME", "BOTTLE_EXTRA_CA_CERTS", "DOCKER_HOST", "TMPDIR"]) if (process.env[k]) env[k] = process.env[k]
  return { ...env, ...extra }
}

/**
 * An HTTP service on the host answering `text` to every request, in a process of its own. The
 * tests' docker and CLI calls are synchronous and block this process's event loop: a listener
 * here would accept a probe's connection but never answer it, so a probe "not reaching" it
 * would prove nothing.
 */
export const hostService = async (text: string, host: string): Promise<{ readonly port: number; readonly close: () => void }> => {
  const script = `const s = require("http").createServer((q, r) => r.end(${JSON.stringify(text)})).listen(0, ${JSON.stringify(host)}, () => console.log(s.address().port))`
  const child = spawn(process.execPath, ["-e", script], { stdio: ["ignore", "pipe", "inherit"] })
  const port = await new Promise<number>((resolve, reject) => {
    let out = ""
    child.stdout!.on("data", (c: Buffer) => {
      out += c.toString()
      const m = /^(\d+)\n/.exec(out)
      if (m) resolve(Number(m[1]))
    })
    child.once("exit", (code) => reject(new Error(`the host service on ${host} exited (${code}) before listening`)))
  })
  return { port, close: () => void child.kill() }
}
