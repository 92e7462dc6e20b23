/**
 * `bottle daemon egress --routes FILE --state-dir DIR --listen HOST:PORT [--extra-ca FILE]...
 * [--bottle NAME]`: the egress daemon as a plain process on the host, for tests and benchmarks.
 * (The bundle runs dist/egress-daemon.mjs: the same program, configured from its environment
 * and without the CLI around it.) Runs until SIGINT/SIGTERM; runMain turns those into
 * interruption, so the listener, watcher and audit log are released in order.
 *
 * Tokens come from this process's environment, by the routes' `token_env` names. Extra
 * upstream CAs may also come from `BOTTLE_EGRESS_EXTRA_CA` (a path, or paths joined by `:`).
 */
import { Effect, Option } from "effect"
import { Command, Flag } from "effect/cli"
import { extraCaFromEnv, parseListen } from "../../bundle/egress/config.ts"
import { notifyReady } from "../schema/BundleProtocol.ts"

export const egressDaemon = Command.make(
  "egress",
  {
    routes: Flag.String("routes").pipe(Flag.withDescription("routes.yaml to enforce (reloaded when replaced)")),
    stateDir: Flag.String("state-dir").pipe(Flag.withDescription("Directory for ca.pem, ca-key.pem (0600) and audit.log")),
    listen: Flag.String("listen").pipe(Flag.withDescription("Address to listen on, HOST:PORT (port 0: ephemeral)")),
    extraCa: Flag.String("extra-ca").pipe(Flag.atLeast(0), Flag.withDescription("Extra CA file trusted for upstream TLS (repeatable)")),
    bottle: Flag.String("bottle").pipe(Flag.optional, Flag.withDescription("Bottle name for the audit log"))
  },
  Effect.fn("daemon.egress")(function*({ routes, stateDir, listen, extraCa, bottle }) {
    const address = yield* parseListen(listen)
    // Loaded on demand: the proxy (mockttp) costs ~300 ms to import, which no other command pays.
    const { runEgress } = yield* Effect.promise(() => import("../../bundle/egress/daemon.ts"))
    yield* Effect.scoped(
      runEgress({
        routesFile: routes,
        stateDir,
        listen: address,
        bottle: Option.getOrUndefined(bottle),
        extraCaFiles: [...extraCa, ...extraCaFromEnv(process.env)],
        onBound: () => Effect.sync(() => notifyReady(process.env))
      }).pipe(Effect.andThen(Effect.never))
    )
  })
).pipe(
  Command.withDescription("Run the egress proxy (TLS interception, routes, credential injection, DLP, audit)"),
  Command.withExamples([{ command: "bottle daemon egress --routes routes.yaml --state-dir ./egress --listen 127.0.0.1:3128", description: "Enforce routes.yaml on port 3128" }])
)
