/**
 * The sidecar bundle's init (PID 1 under tini). It starts only the daemons named in
 * $BOTTLE_DAEMONS, forwards SIGTERM/SIGINT to them, and reports readiness in the status file
 * once every daemon has said it accepts connections (each writes `ready` to a pipe the init
 * hands it as $BOTTLE_READY_FD). A daemon that exits is never restarted silently: the crash is
 * logged and the status turns `unhealthy: …`, which `bottle ls`/launch report.
 */
import { spawn, type ChildProcess } from "node:child_process"
import * as fs from "node:fs"
import * as path from "node:path"
import { EGRESS_ENV, EGRESS_NODE_FLAGS } from "./egress/node-flags.ts"

/** Where the init records `starting`, `ready` or `unhealthy: …` (the image's health check reads it). */
export const STATUS_FILE = process.env["BOTTLE_STATUS_FILE"] ?? "/tmp/bottle-status"
/** The lines launch waits for in the bundle's log. */
export const READY_LINE = "bottle-bundle: ready"
export const UNHEALTHY_LINE = "bottle-bundle: unhealthy"
export const BUILT_DAEMONS = ["egress"] as const

interface DaemonSpec {
  readonly name: string
  readonly argv: ReadonlyArray<string>
  readonly env?: Readonly<Record<string, string>>
}

/** The descriptor (in the daemon) of the pipe on which it reports readiness. */
const READY_FD = 3

const log = (msg: string) => process.stdout.write(`bottle-bundle: ${msg}\n`)

/** Where the built daemons are: `dist` holds bundle-init.mjs and egress-daemon.mjs. */
export interface DaemonEntries {
  readonly egress: string
}

const daemonSpecs = (env: NodeJS.ProcessEnv, entries: DaemonEntries): { specs: Array<DaemonSpec>; unknown: Array<string> } => {
  const names = (env["BOTTLE_DAEMONS"] ?? "").split(",").map((s) => s.trim()).filter(Boolean)
  const specs: Array<DaemonSpec> = []
  const unknown: Array<string> = []
  for (const name of names) {
    if (name === "egress") {
      // Configured by the bundle's environment (BOTTLE_EGRESS_DIR, BOTTLE_EGRESS_LISTEN, ...).
      specs.push({ name, argv: [process.execPath, ...EGRESS_NODE_FLAGS, entries.egress], env: EGRESS_ENV })
    } else {
      unknown.push(name)
    }
  }
  return { specs, unknown }
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

const setStatus = (status: string) => fs.writeFileSync(STATUS_FILE, status + "\n")

/**
 * Runs until SIGTERM/SIGINT; resolves with the exit code for the process. Plain Node (no
 * Effect): it is the bundle's PID 1 payload and its start-up is on every launch's critical path.
 */
export const runInit = (entries: DaemonEntries): Promise<number> =>
    new Promise<number>((resolveInit) => {
      // Stay up after a crash (to report it) until told to stop: nothing else may hold the loop.
      const keepAlive = setInterval(() => {}, 1 << 30)
      const resolve = (code: number) => {
        clearInterval(keepAlive)
        resolveInit(code)
      }
      // A closed log pipe must not take PID 1 down (and the bottle's status with it).
      process.stdout.on("error", () => {})
      setStatus("starting")
      const { specs, unknown } = daemonSpecs(process.env, entries)
      if (unknown.length > 0 || specs.length === 0) {
        const why = specs.length === 0 && unknown.length === 0 ? "BOTTLE_DAEMONS names no daemon" : `daemon ${unknown.join(", ")} is not built (have: ${BUILT_DAEMONS.join(", ")})`
        process.stdout.write(`${UNHEALTHY_LINE}: ${why}\n`)
        setStatus(`unhealthy: ${why}`)
      }
      const children = new Map<string, ChildProcess>()
      let stopping = false
      let unhealthy = unknown.length > 0
      const ready = new Set<string>()
      const compileCache = compileCacheForUid(process.env["NODE_COMPILE_CACHE"], process.getuid?.())
      // A bundle missing one of its daemons is not a partial success: start none of them.
      for (const d of unknown.length > 0 ? [] : specs) {
        const child = spawn(d.argv[0]!, d.argv.slice(1), {
          stdio: ["ignore", "inherit", "inherit", "pipe"],
          env: { ...process.env, ...d.env, BOTTLE_READY_FD: String(READY_FD), ...(compileCache ? { NODE_COMPILE_CACHE: compileCache } : {}) }
        })
        children.set(d.name, child)
        let said = ""
        const pipe = child.stdio[READY_FD] as NodeJS.ReadableStream | null | undefined
        pipe?.on("error", () => {})
        pipe?.on("data", (c: Buffer) => {
          said += c.toString()
          if (!said.split("\n").includes("ready") || ready.has(d.name) || stopping || unhealthy) return
          ready.add(d.name)
          if (ready.size === specs.length) {
            setStatus("ready")
            process.stdout.write(`${READY_LINE} (${specs.map((s) => s.name).join(", ")})\n`)
          }
        })
        child.on("exit", (code, signal) => {
          children.delete(d.name)
          if (stopping) {
            if (children.size === 0) resolve(0)
            return
          }
          unhealthy = true
          const why = `daemon ${d.name} exited (${signal ? `signal ${signal}` : `code ${code}`}); not restarting`
          process.stdout.write(`${UNHEALTHY_LINE}: ${why}\n`)
          setStatus(`unhealthy: ${why}`)
        })
      }
      const stop = (sig: NodeJS.Signals) => {
        if (stopping) return
        stopping = true
        log(`${sig}: stopping ${[...children.keys()].join(", ") || "nothing"}`)
        if (children.size === 0) return resolve(0)
        for (const c of children.values()) c.kill(sig)
        setTimeout(() => {
          for (const c of children.values()) c.kill("SIGKILL")
          resolve(1)
        }, 5000).unref()
      }
      process.on("SIGTERM", () => stop("SIGTERM"))
      process.on("SIGINT", () => stop("SIGINT"))
    })
