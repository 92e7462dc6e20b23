/**
 * How the egress daemon is told where to listen and which extra CAs to trust, shared by its
 * two entry points: `bottle daemon egress` (flags, on the host) and dist/egress-daemon.mjs
 * (the environment, in the bundle). Readiness: `notifyReady` (the bundle protocol).
 */
import { Effect } from "effect"
import { EgressError } from "./errors.ts"

/** `HOST:PORT`, `[v6]:PORT` or `:PORT` (all interfaces). */
export const parseListen = (text: string): Effect.Effect<{ host: string; port: number }, EgressError> => {
  const m = /^(?:\[([^\]]+)\]|([^:]*)):(\d{1,5})$/.exec(text.trim())
  const port = m ? Number(m[3]) : NaN
  if (!m || port > 65535) {
    return Effect.fail(new EgressError({ reason: { _tag: "BadArgument", message: `--listen expects HOST:PORT (e.g. 127.0.0.1:8080), got ${JSON.stringify(text)}` } }))
  }
  return Effect.succeed({ host: m[1] ?? (m[2] || "0.0.0.0"), port })
}

/** `$BOTTLE_EGRESS_EXTRA_CA`: a path, or paths joined by `:`. */
export const extraCaFromEnv = (env: Record<string, string | undefined>): ReadonlyArray<string> =>
  (env["BOTTLE_EGRESS_EXTRA_CA"] ?? "").split(":").filter((p) => p.length > 0)
