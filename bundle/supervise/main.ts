/**
 * Entry point of the supervise daemon in the sidecar bundle (dist/supervise-daemon.mjs, spawned
 * by the init when the plan runs supervise). Configured by the environment:
 *
 *   BOTTLE_SUPERVISE_DIR             the queue's dir (default /run/bottle/supervise)
 *   BOTTLE_SUPERVISE_LISTEN          HOST:PORT (default 0.0.0.0:8765); the MCP endpoint is /mcp
 *   BOTTLE_SUPERVISE_EXPIRY_SECONDS  how long a request waits for an answer (default: config.json's
 *                                    `expirySeconds` in the dir, written by the launcher from the
 *                                    manifest's `supervise.expire_minutes`; else 1800)
 *   BOTTLE_READY_FD                  where to write `ready` once the port is bound (the init's pipe)
 *
 * Failures to start print one line and exit 1; once serving, nothing a client sends stops it.
 */
import { NodeRuntime } from "@effect/platform-node"
import { Effect, Layer } from "effect"
import * as path from "node:path"
import { DEFAULT_EXPIRY_SECONDS } from "../../src/schema/Approval.ts"
import { readSmallFile } from "../../src/schema/ApprovalQueue.ts"
import { notifyReady } from "../../src/schema/BundleProtocol.ts"
import { serveLayer } from "./server.ts"

const env = process.env

/** `HOST:PORT`, `[v6]:PORT` or `:PORT`; undefined when malformed. */
export const parseListen = (text: string): { host: string; port: number } | undefined => {
  const m = /^(?:\[([^\]]+)\]|([^:]*)):(\d{1,5})$/.exec(text.trim())
  const port = m ? Number(m[3]) : NaN
  return m && port <= 65535 ? { host: m[1] ?? (m[2] || "0.0.0.0"), port } : undefined
}

const dir = env["BOTTLE_SUPERVISE_DIR"] ?? "/run/bottle/supervise"
const listenText = env["BOTTLE_SUPERVISE_LISTEN"] ?? "0.0.0.0:8765"
const listen = parseListen(listenText)
/** config.json's `expirySeconds`, as text (undefined when there is none). */
const configured = (): string | undefined => {
  const text = readSmallFile(path.join(dir, "config.json"))
  if (text === undefined) return undefined
  try {
    const v = (JSON.parse(text) as { expirySeconds?: unknown }).expirySeconds
    return v === undefined ? undefined : String(v)
  } catch {
    return "unreadable config.json"
  }
}
const expiryText = env["BOTTLE_SUPERVISE_EXPIRY_SECONDS"] ?? configured()
const expirySeconds = expiryText === undefined ? DEFAULT_EXPIRY_SECONDS : Number(expiryText)

if (listen === undefined) {
  process.stderr.write(`bottle: BOTTLE_SUPERVISE_LISTEN expects HOST:PORT, got ${JSON.stringify(listenText)}\n`)
  process.exitCode = 1
} else if (!Number.isInteger(expirySeconds) || expirySeconds < 1) {
  process.stderr.write(`bottle: the supervise expiry (BOTTLE_SUPERVISE_EXPIRY_SECONDS or config.json's expirySeconds) expects a whole number of seconds, got ${JSON.stringify(expiryText)}\n`)
  process.exitCode = 1
} else {
  const program = Effect.gen(function*() {
    yield* Layer.build(serveLayer({ dir, expirySeconds }, listen))
    process.stdout.write(`supervise: listening on ${listen.host}:${listen.port}\n`)
    notifyReady(env)
    return yield* Effect.never
  }).pipe(
    Effect.scoped,
    Effect.catchCause((cause) =>
      Effect.sync(() => {
        process.stderr.write(`bottle: supervise: ${String(cause).split("\n")[0]}\n`)
        process.exitCode = 1
      })
    )
  )
  NodeRuntime.runMain(program)
}
