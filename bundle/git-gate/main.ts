/**
 * Entry point of the git-gate daemon in the sidecar bundle (dist/git-gate-daemon.mjs, spawned
 * by the init), and of its pre-receive hook (`git-gate-daemon.mjs pre-receive <dir> <name>`).
 * Plain Node: its start-up is on the critical path of `bottle start`.
 *
 *   BOTTLE_GIT_GATE_DIR     gate.json, keys/<upstream> (0600), known_hosts/<upstream>, audit.log
 *   BOTTLE_GIT_GATE_LISTEN  HOST:PORT; the port is the first upstream's, the next ones follow
 *   BOTTLE_READY_FD         where to write `ready` once every port is bound (the init's pipe)
 *
 * Guarantees: the daemon says ready only when every upstream's port accepts connections; it
 * never exits because of a request (errors are answers and log lines); bad configuration is
 * one line and exit 1 before ready.
 */
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { Schema } from "effect"
import { notifyReady } from "../../src/schema/BundleProtocol.ts"
import { GATE_CONFIG_FILE, GateConfig } from "../../src/schema/GitGate.ts"
import { runHook } from "./hook.ts"
import { makeMirror, serveMirror } from "./server.ts"

const log = (line: string) => process.stderr.write(`git-gate: ${line}\n`)

const readConfig = (dir: string) =>
  Schema.decodeUnknownSync(GateConfig)(JSON.parse(fs.readFileSync(path.join(dir, GATE_CONFIG_FILE), "utf8")))

const main = async (): Promise<number> => {
  const [mode, hookDir, hookUpstream] = process.argv.slice(2)
  if (mode === "pre-receive") {
    const u = readConfig(hookDir!).upstreams.find((x) => x.name === hookUpstream)
    if (!u) {
      process.stderr.write(`git-gate: no upstream named ${hookUpstream}\n`)
      return 1
    }
    return runHook(hookDir!, u)
  }
  const env = process.env
  const dir = env["BOTTLE_GIT_GATE_DIR"] ?? "/run/bottle/git-gate"
  const listen = env["BOTTLE_GIT_GATE_LISTEN"] ?? "0.0.0.0:9418"
  const host = listen.slice(0, listen.lastIndexOf(":"))
  const config = readConfig(dir)
  // ssh wants a home; the bundle may run as a uid without one.
  const home = fs.mkdtempSync(path.join(os.tmpdir(), "git-gate-home-"))
  process.env["HOME"] = home
  // Where ssh keeps its shared connections (the hook finds it in its environment).
  process.env["BOTTLE_GIT_GATE_SSH_CONTROL"] = home
  const root = fs.mkdtempSync(path.join(os.tmpdir(), "git-gate-mirrors-"))
  const script = process.argv[1]!
  process.on("uncaughtException", (e) => log(`error (ignored): ${e.message}`))
  process.on("unhandledRejection", (e) => log(`error (ignored): ${(e as Error)?.message ?? String(e)}`))
  const servers = await Promise.all(config.upstreams.map(async (u) => {
    const mirror = await makeMirror(dir, root, u, [process.execPath, script, "pre-receive", dir, u.name])
    const s = await serveMirror(mirror, host, u.port, log)
    log(`serving ${u.name} on ${host}:${s.port} (upstream ${u.url})`)
    return s
  }))
  notifyReady(env)
  log(`listening (${servers.length} upstream${servers.length === 1 ? "" : "s"})`)
  const stop = () => {
    for (const s of servers) s.server.close()
    process.exit(0)
  }
  process.on("SIGTERM", stop)
  process.on("SIGINT", stop)
  return new Promise<number>(() => {})
}

main().then(
  (code) => {
    process.exitCode = code
  },
  (e: unknown) => {
    process.stderr.write(`git-gate: ${(e as Error).message}\n`)
    process.exitCode = 1
  }
)
