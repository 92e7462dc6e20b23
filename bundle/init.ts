/**
 * The sidecar bundle's init (PID 1 under tini). It starts the daemons named in $BOTTLE_DAEMONS,
 * each from its row of the bundle protocol's table (src/schema/BundleProtocol.ts), forwards
 * SIGTERM/SIGINT to them, and reports readiness in the status file once every daemon has said
 * it accepts connections (each writes `ready` to a pipe the init hands it as $BOTTLE_READY_FD).
 * A daemon that exits is never restarted silently: the crash is logged and the status turns
 * `unhealthy: …`, which `bottle ls`/launch report. A daemon that is unknown or not built makes
 * the bundle unhealthy at once, and then none is started. Each daemon gets none of the other
 * daemons' variables (envForDaemon). The status file is written before the line that reports
 * it, so whoever reads the line finds the status already there.
 */
import { spawn, type ChildProcess } from "node:child_process"
import * as fs from "node:fs"
import * as path from "node:path"
import {
  BUNDLE_LOG_PREFIX,
  DAEMON_TABLE,
  type DaemonRow,
  DEFAULT_STATUS_FILE,
  envForDaemon,
  isBuilt,
  parseDaemonList,
  READY_FD,
  READY_LINE,
  READY_WORD,
  UNHEALTHY_LINE
} from "../src/schema/BundleProtocol.ts"

/** How a built daemon runs beyond its row: V8 flags and process env (e.g. egress's heap caps). */
export interface DaemonTuning {
  readonly nodeFlags?: ReadonlyArray<string>
  readonly env?: Readonly<Record<string, string>>
}

export interface InitOptions {
  /** The daemon table (default: the protocol's). */
  readonly table?: ReadonlyArray<DaemonRow>
  /** The file a built daemon runs from (its `build.entry`, resolved next to the init). */
  readonly entryOf: (row: DaemonRow) => string
  /** Per-daemon tuning, by name; none by default. */
  readonly tuning?: Readonly<Record<string, DaemonTuning>>
  readonly env?: NodeJS.ProcessEnv
  /** Where the init's lines go (default: stdout). */
  readonly out?: (line: string) => void
}

interface DaemonSpec {
  readonly name: string
  readonly argv: ReadonlyArray<string>
  readonly env: Readonly<Record<string, string>>
}

/** The daemons to start, or why the bundle is unhealthy before starting any. */
export const daemonSpecs = (
  env: NodeJS.ProcessEnv,
  options: Pick<InitOptions, "table" | "entryOf" | "tuning">
): { readonly specs: ReadonlyArray<DaemonSpec>; readonly refused?: string } => {
  const table = options.table ?? DAEMON_TABLE
  const names = parseDaemonList(env["BOTTLE_DAEMONS"])
  if (names.length === 0) return { specs: [], refused: "BOTTLE_DAEMONS names no daemon" }
  const unknown = names.filter((n) => !table.some((r) => r.name === n))
  if (unknown.length > 0) return { specs: [], refused: `no daemon named ${unknown.join(", ")} (known: ${table.map((r) => r.name).join(", ")})` }
  const rows = names.map((n) => table.find((r) => r.name === n)!)
  const notBuilt = rows.filter((r) => !isBuilt(r)).map((r) => r.name)
  if (notBuilt.length > 0) {
    return { specs: [], refused: `daemon ${notBuilt.join(", ")} is not built (have: ${table.filter(isBuilt).map((r) => r.name).join(", ")})` }
  }
  return {
    specs: rows.map((row) => {
      const tuning = options.tuning?.[row.name] ?? {}
      return {
        name: row.name,
        argv: [process.execPath, ...(tuning.nodeFlags ?? []), options.entryOf(row)],
        env: { ...envForDaemon(env, row, table), ...tuning.env }
      }
    })
  }
}

/**
 * V8's compile cache (NODE_COMPILE_CACHE) keeps one directory per uid
 * (`v22.x-x64-<flags hash>-<uid>`). The image warms it as root; the bundle runs as the host
 * user, whose uid the image cannot know. So the init links the warmed directories under a
 * writable root, named for its own uid, and gives that root to its daemons. Without this the
 * daemons would compile everything at every start. Any failure leaves the setting as it is.
 */
export const compileCacheForUid = (warmed: string | undefined, uid: number | undefined, tmp = "/tmp"): string | undefined => {
  if (!warmed || uid === undefined || uid === 0) return warmed
  try {
    const root = fs.mkdtempSync(path.join(tmp, "bottle-v8-cache-"))
    for (const entry of fs.readdirSync(warmed)) {
      if (entry.endsWith("-0")) fs.symlinkSync(path.join(warmed, entry), path.join(root, `${entry.slice(0, -2)}-${uid}`))
    }
    return root
  } catch {
    return warmed
  }
}

export interface RunningInit {
  /** Resolves with the exit code for the process, once stopped. */
  readonly done: Promise<number>
  /** Forwards `sig` to the daemons and resolves `done` once they are gone (SIGKILL after 5 s). */
  readonly stop: (sig: NodeJS.Signals) => void
}

/**
 * Starts the daemons and runs until `stop`. Plain Node (no Effect): it is the bundle's PID 1
 * payload and its start-up is on every launch's critical path.
 */
export const startInit = (options: InitOptions): RunningInit => {
  const env = options.env ?? process.env
  const out = options.out ?? ((line: string) => process.stdout.write(line + "\n"))
  const statusFile = env["BOTTLE_STATUS_FILE"] ?? DEFAULT_STATUS_FILE
  const setStatus = (status: string) => fs.writeFileSync(statusFile, status + "\n")
  let resolveInit: (code: number) => void = () => {}
  const done = new Promise<number>((r) => (resolveInit = r))
  // Stay up after a crash (to report it) until told to stop: nothing else may hold the loop.
  const keepAlive = setInterval(() => {}, 1 << 30)
  const resolve = (code: number) => {
    clearInterval(keepAlive)
    resolveInit(code)
  }
  setStatus("starting")
  const { specs, refused } = daemonSpecs(env, options)
  let unhealthy = refused !== undefined
  if (refused !== undefined) {
    setStatus(`unhealthy: ${refused}`)
    out(`${UNHEALTHY_LINE}: ${refused}`)
  }
  const children = new Map<string, ChildProcess>()
  let stopping = false
  const ready = new Set<string>()
  const compileCache = compileCacheForUid(env["NODE_COMPILE_CACHE"], process.getuid?.())
  // A bundle missing one of its daemons is not a partial success: none of them was started.
  for (const d of specs) {
    const child = spawn(d.argv[0]!, d.argv.slice(1), {
      stdio: ["ignore", "inherit", "inherit", "pipe"],
      env: { ...d.env, BOTTLE_READY_FD: String(READY_FD), ...(compileCache ? { NODE_COMPILE_CACHE: compileCache } : {}) }
    })
    children.set(d.name, child)
    let said = ""
    const pipe = child.stdio[READY_FD] as NodeJS.ReadableStream | null | undefined
    pipe?.on("error", () => {})
    pipe?.on("data", (c: Buffer) => {
      said += c.toString()
      if (!said.split("\n").includes(READY_WORD) || ready.has(d.name) || stopping || unhealthy) return
      ready.add(d.name)
      if (ready.size === specs.length) {
        setStatus("ready")
        out(`${READY_LINE} (${specs.map((s) => s.name).join(", ")})`)
      }
    })
    child.on("error", (e) => {
      if (stopping) return
      unhealthy = true
      const why = `daemon ${d.name} could not start (${e.message})`
      setStatus(`unhealthy: ${why}`)
      out(`${UNHEALTHY_LINE}: ${why}`)
    })
    child.on("exit", (code, signal) => {
      children.delete(d.name)
      if (stopping) {
        if (children.size === 0) resolve(0)
        return
      }
      unhealthy = true
      const why = `daemon ${d.name} exited (${signal ? `signal ${signal}` : `code ${code}`}); not restarting`
      setStatus(`unhealthy: ${why}`)
      out(`${UNHEALTHY_LINE}: ${why}`)
    })
  }
  const stop = (sig: NodeJS.Signals) => {
    if (stopping) return
    stopping = true
    out(`${BUNDLE_LOG_PREFIX}${sig}: stopping ${[...children.keys()].join(", ") || "nothing"}`)
    if (children.size === 0) return resolve(0)
    for (const c of children.values()) c.kill(sig)
    setTimeout(() => {
      for (const c of children.values()) c.kill("SIGKILL")
      resolve(1)
    }, 5000).unref()
  }
  return { done, stop }
}

/** The init as PID 1: started, stopped by SIGTERM/SIGINT; resolves with the exit code. */
export const runInit = (options: InitOptions): Promise<number> => {
  // A closed log pipe must not take PID 1 down (and the bottle's status with it).
  process.stdout.on("error", () => {})
  const init = startInit(options)
  process.on("SIGTERM", () => init.stop("SIGTERM"))
  process.on("SIGINT", () => init.stop("SIGINT"))
  return init.done
}
