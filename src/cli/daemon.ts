/** `bottle daemon …`: the bundle's processes (init, egress), also runnable on the host. */
import { Effect } from "effect"
import { Command } from "effect/cli"
import { fileURLToPath } from "node:url"
import { runInit } from "../../bundle/init.ts"
import { egressDaemon } from "./daemon-egress.ts"

const init = Command.make("init", {}, () =>
  Effect.promise(() => runInit(fileURLToPath(import.meta.url))).pipe(Effect.flatMap((code) => Effect.sync(() => { process.exitCode = code })))
).pipe(Command.withDescription("The sidecar bundle's init: start the daemons in $BOTTLE_DAEMONS and report readiness"))

export const daemon = Command.make("daemon").pipe(
  Command.withDescription("Run a sidecar daemon in the foreground (used inside the bundle; also for tests and benchmarks)"),
  Command.withSubcommands([init, egressDaemon])
)
