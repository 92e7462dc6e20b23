/**
 * The sidecar bundle's init (PID 1 under tini). It starts only the daemons named in
 * $BOTTLE_DAEMONS, forwards SIGTERM/SIGINT to them, and reports readiness in the status file
 * once every daemon accepts connections. A daemon that exits is never restarted silently: the
 * crash is logged and the status turns `unhealthy: …`, which `bottle ls`/launch report.
 */
import { spawn, type ChildProcess } from "node:child_process"
import * as fs from "node:fs"
import * as net from "node:net"
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
  readonly port: number
}

const log = (msg: string) => process.stdout.write(`bottle-bundle: ${msg}\n`)

const parseListen = (listen: string) => {
  const i = listen.lastIndexOf(":")
  return { host: listen.slice(0, i), port: Number(listen.slice(i + 1)) }
}

const daemonSpecs = (env: NodeJS.ProcessEnv, self: string): { specs: Array<DaemonSpec>; unknown: Array<string> } => {
  const names = (env["BOTTLE_DAEMONS"] ?? "").split(",").map((s) => s.trim()).filter(Boolean)
  const specs: Array<DaemonSpec> = []
  const unknown: Array<string> = []
  for (const name of names) {
    if (name === "egress") {
      const dir = env["BOTTLE_EGRESS_DIR"] ?? "/run/bottle/egress"
      const listen = env["BOTTLE_EGRESS_LISTEN"] ?? "0.0.0.0:3128"
      specs.push({
        name,
        argv: [process.execPath, ...EGRESS_NODE_FLAGS, self, "daemon", "egress", "--routes", `${dir}/routes.yaml`, "--state-dir", dir, "--listen", listen, ...(env["BOTTLE_SLUG"] ? ["--bottle", env["BOTTLE_SLUG"]] : [])],
        env: EGRESS_ENV,
        port: parseListen(listen).port
      })
    } else {
      unknown.push(name)
    }
  }
  return { specs, unknown }
}

const canConnect = (port: number) =>
  new Promise<boolean>((resolve) => {
    const s = net.connect({ host: "127.0.0.1", port })
    s.once("connect", () => (s.destroy(), resolve(true)))
    s.once("error", () => resolve(false))
  })

const setStatus = (status: string) => fs.writeFileSync(STATUS_FILE, status + "\n")

/**
 * Runs until SIGTERM/SIGINT; resolves with the exit code for the process. Plain Node (no
 * Effect): it is the bundle's PID 1 payload and its start-up is on every launch's critical path.
 * `self` is the bottle CLI bundle the daemons are started from.
 */
export const runInit = (self: string): Promise<number> =>
    new Promise<number>((resolveInit) => {
      // Stay up after a crash (to report it) until told to stop: nothing else may hold the loop.
      const keepAlive = setInterval(() => {}, 1 << 30)
      const resolve = (code: number) => {
        clearInterval(keepAlive)
        resolveInit(code)
      }
      setStatus("starting")
      const { specs, unknown } = daemonSpecs(process.env, self)
      if (unknown.length > 0 || specs.length === 0) {
        const why = specs.length === 0 && unknown.length === 0 ? "BOTTLE_DAEMONS names no daemon" : `daemon ${unknown.join(", ")} is not built (have: ${BUILT_DAEMONS.join(", ")})`
        process.stdout.write(`${UNHEALTHY_LINE}: ${why}\n`)
        setStatus(`unhealthy: ${why}`)
      }
      const children = new Map<string, ChildProcess>()
      let stopping = false
      let unhealthy = unknown.length > 0
      // A bundle missing one of its daemons is not a partial success: start none of them.
      for (const d of unknown.length > 0 ? [] : specs) {
        const child = spawn(d.argv[0]!, d.argv.slice(1), { stdio: ["ignore", "inherit", "inherit"], env: { ...process.env, ...d.env } })
        children.set(d.name, child)
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
      // Readiness: every daemon accepts connections.
      const poll = async () => {
        for (;;) {
          if (stopping || unhealthy) return
          const ok = await Promise.all(specs.map((d) => canConnect(d.port)))
          if (ok.every(Boolean)) {
            if (unhealthy) return
            setStatus("ready")
            process.stdout.write(`${READY_LINE} (${specs.map((d) => d.name).join(", ")})\n`)
            return
          }
          await new Promise((r) => setTimeout(r, 25))
        }
      }
      void poll()
    })
