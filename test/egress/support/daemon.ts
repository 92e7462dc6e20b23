/**
 * The egress daemon as it ships: `dist/egress-daemon.mjs` (from a private copy of the build,
 * see test/support/cli.ts), spawned with the node flags and environment the bundle's init gives
 * it, configured by environment, against a real HTTPS upstream and DNS on loopback. For tests
 * that must see the process itself: that it is still alive after hostile traffic, what it
 * wrote to its audit log before dying, how much memory it holds.
 */
import { type ChildProcess, spawn } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { EGRESS_ENV, EGRESS_NODE_FLAGS } from "../../../bundle/egress/node-flags.ts"
import { prepareCli } from "../../support/cli.ts"
import { startFakeDns } from "./dns.ts"
import { API, HOSTS, OTHER, OTHER_TOKEN, REAL_TOKEN } from "./harness.ts"
import { issueServerCert, makeTestCa } from "./pki.ts"
import { startUpstream, type Upstream } from "./upstream.ts"

let built: string | undefined
/** The daemon entry of a private copy of the build (built first when stale); for `beforeAll`. */
export const builtDaemon = (): string => (built ??= path.join(prepareCli(), "dist", "egress-daemon.mjs"))

export interface DaemonProcess {
  readonly child: ChildProcess
  readonly proxyPort: number
  readonly upstreamPort: number
  readonly upstream: Upstream
  readonly bottleCa: string
  readonly stateDir: string
  /** Everything the daemon wrote to stdout and stderr so far. */
  readonly output: () => string
  readonly alive: () => boolean
  /** Audit lines as parsed JSON objects (every line; none skipped). */
  readonly audit: () => Array<Record<string, unknown>>
  /** The daemon's resident set size in bytes, from /proc (undefined where there is no /proc). */
  readonly rss: () => number | undefined
  readonly stop: () => Promise<void>
}

export interface DaemonOptions {
  /** routes.yaml text, given the upstream's port. */
  readonly routes: (port: number) => string
  /** Added to the daemon's environment (limits, timeouts). */
  readonly env?: Record<string, string>
  readonly nodeFlags?: ReadonlyArray<string>
}

export const startDaemon = async (options: DaemonOptions): Promise<DaemonProcess> => {
  const entry = builtDaemon()
  const root = await makeTestCa()
  const cert = await issueServerCert(root, HOSTS)
  const upstream = await startUpstream(cert)
  const dns = await startFakeDns(Object.fromEntries(HOSTS.map((h) => [h, "127.0.0.1"])))
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "egress-daemon-test-"))
  const stateDir = path.join(dir, "egress")
  fs.mkdirSync(stateDir)
  const rootFile = path.join(dir, "upstream-root.pem")
  fs.writeFileSync(rootFile, root.certPem)
  fs.writeFileSync(path.join(stateDir, "routes.yaml"), options.routes(upstream.port))
  const child = spawn(process.execPath, [...(options.nodeFlags ?? EGRESS_NODE_FLAGS), entry], {
    stdio: ["ignore", "pipe", "pipe"],
    env: {
      PATH: process.env["PATH"],
      ...EGRESS_ENV,
      BOTTLE_EGRESS_DIR: stateDir,
      BOTTLE_EGRESS_LISTEN: "127.0.0.1:0",
      BOTTLE_SLUG: "test",
      BOTTLE_EGRESS_EXTRA_CA: rootFile,
      BOTTLE_EGRESS_DNS: dns.server,
      API_TOKEN: REAL_TOKEN,
      OTHER_TOKEN,
      ...options.env
    }
  })
  let out = ""
  child.stdout!.on("data", (c: Buffer) => (out += c.toString()))
  child.stderr!.on("data", (c: Buffer) => (out += c.toString()))
  const cleanup = async () => {
    await upstream.close()
    await dns.close()
    fs.rmSync(dir, { recursive: true, force: true })
  }
  const proxyPort = await new Promise<number>((resolve, reject) => {
    const deadline = setTimeout(() => done(new Error(`egress daemon did not start; output:\n${out}`)), 20_000)
    const poll = setInterval(() => {
      const m = /listening on 127\.0\.0\.1:(\d+)/.exec(out)
      if (m) done(undefined, Number(m[1]))
    }, 20)
    const onExit = () => done(new Error(`egress daemon exited at start; output:\n${out}`))
    child.once("exit", onExit)
    function done(error: Error | undefined, port?: number) {
      clearTimeout(deadline)
      clearInterval(poll)
      child.off("exit", onExit)
      if (error) {
        child.kill("SIGKILL")
        void cleanup().then(() => reject(error))
      } else resolve(port!)
    }
  })
  const auditFile = path.join(stateDir, "audit.log")
  return {
    child,
    proxyPort,
    upstreamPort: upstream.port,
    upstream,
    bottleCa: fs.readFileSync(path.join(stateDir, "ca.pem"), "utf8"),
    stateDir,
    output: () => out,
    alive: () => child.exitCode === null && child.signalCode === null,
    audit: () =>
      fs.existsSync(auditFile)
        ? fs.readFileSync(auditFile, "utf8").split("\n").filter((l) => l.length > 0).map((l) => JSON.parse(l) as Record<string, unknown>)
        : [],
    rss: () => {
      try {
        const status = fs.readFileSync(`/proc/${child.pid}/status`, "utf8")
        const m = /^VmRSS:\s+(\d+) kB/m.exec(status)
        return m ? Number(m[1]) * 1024 : undefined
      } catch {
        return undefined
      }
    },
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) {
        await new Promise((r) => {
          child.once("exit", r)
          child.kill("SIGTERM")
          setTimeout(() => child.kill("SIGKILL"), 5000).unref()
        })
      }
      await cleanup()
    }
  }
}

/**
 * Routes the daemon tests run with: API (credential injected), OTHER (no credential) and any
 * name under fresh.example.test (not resolved before its first request), all on `port`.
 */
export const daemonRoutes = (port: number) => `routes:
  - host: ${API}
    ports: [${port}]
    allow_private_ips: true
    auth: { scheme: Bearer, token_env: API_TOKEN }
  - host: ${OTHER}
    ports: [${port}]
    allow_private_ips: true
  - host: "*.fresh.example.test"
    ports: [${port}]
    allow_private_ips: true
`
