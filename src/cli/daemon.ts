/** `bottle daemon …`: the bundle's processes (init, egress), also runnable on the host. */
import { Effect } from "effect"
import { Command } from "effect/cli"
import * as fs from "node:fs"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import { runInit } from "../../bundle/init.ts"
import { egressDaemon } from "./daemon-egress.ts"

/** dist/egress-daemon.mjs, next to the built CLI (this code may sit in dist/ or dist/chunks/). */
const builtEntry = (name: string): string => {
  let dir = path.dirname(fileURLToPath(import.meta.url))
  for (let i = 0; i < 2 && !fs.existsSync(path.join(dir, name)); i++) dir = path.dirname(dir)
  return path.join(dir, name)
}

const init = Command.make("init", {}, () =>
  Effect.promise(() => runInit({ egress: builtEntry("egress-daemon.mjs") })).pipe(Effect.flatMap((code) => Effect.sync(() => { process.exitCode = code })))
).pipe(Command.withDescription("The sidecar bundle's init: start the daemons in $BOTTLE_DAEMONS and report readiness"))

export const daemon = Command.make("daemon").pipe(
  Command.withDescription("Run a sidecar daemon in the foreground (used inside the bundle; also for tests and benchmarks)"),
  Command.withSubcommands([init, egressDaemon])
)
