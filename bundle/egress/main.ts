/**
 * Entry point of the egress daemon in the sidecar bundle (dist/egress-daemon.mjs, spawned by the
 * init). It is configured by the environment the bundle container gets, and skips the CLI
 * framework: its start-up is on the critical path of every `bottle start`.
 *
 *   BOTTLE_EGRESS_DIR       routes.yaml, ca.pem, ca-key.pem, audit.log (default /run/bottle/egress)
 *   BOTTLE_EGRESS_LISTEN    HOST:PORT (default 0.0.0.0:3128)
 *   BOTTLE_SLUG             the bottle's name, for the audit log
 *   BOTTLE_EGRESS_EXTRA_CA  extra upstream CA files, joined by `:`
 *   BOTTLE_READY_FD         where to write `ready` once the port is bound (the init's pipe)
 *   BOTTLE_EGRESS_DNS       upstream DNS servers, HOST:PORT joined by `,` (default: the system's)
 *   BOTTLE_EGRESS_MAX_CONNECTIONS, BOTTLE_EGRESS_MAX_REQUESTS, BOTTLE_EGRESS_HEADERS_TIMEOUT_MS,
 *   BOTTLE_EGRESS_IDLE_TIMEOUT_MS   what the agent may hold (config.ts `limitsFromEnv`)
 *   tokens                  by the routes' `token_env` names
 *
 * `bottle daemon egress` runs the same program from flags. Failures print one line and exit 1.
 */
import { NodeRuntime } from "@effect/platform-node"
import { Effect } from "effect"
import { extraCaFromEnv, notifyReady, parseListen } from "./config.ts"
import { runEgress } from "./daemon.ts"
import { routesFileIn } from "./paths.ts"

const env = process.env
const dir = env["BOTTLE_EGRESS_DIR"] ?? "/run/bottle/egress"

const program = parseListen(env["BOTTLE_EGRESS_LISTEN"] ?? "0.0.0.0:3128").pipe(
  Effect.flatMap((listen) =>
    // Ready once the configuration is checked and the port bound; the proxy engine loads
    // behind it, connections waiting unread (see listener.ts).
    runEgress({ routesFile: routesFileIn(dir), stateDir: dir, listen, bottle: env["BOTTLE_SLUG"], extraCaFiles: extraCaFromEnv(env), onBound: () => notifyReady(env) })
  ),
  Effect.andThen(Effect.never),
  Effect.scoped,
  Effect.catch((e) =>
    Effect.sync(() => {
      process.stderr.write(`bottle: ${e.message}\n`)
      process.exitCode = 1
    })
  )
)

NodeRuntime.runMain(program)
