/**
 * `bottle daemon …`: the sidecar bundle's processes, also runnable on the host. `init` runs
 * the built init (dist/bundle-init.mjs), which starts the daemons of $BOTTLE_DAEMONS from the
 * bundle protocol's table, exactly as in the bundle; `egress` runs the egress daemon from flags.
 */
import { Effect } from "effect"
import { Command } from "effect/cli"
import * as fs from "node:fs"
import * as path from "node:path"
import { fileURLToPath, pathToFileURL } from "node:url"
import { builtDaemons } from "../schema/BundleProtocol.ts"
import { egressDaemon } from "./daemon-egress.ts"

/** A file of the build next to the CLI (this code may sit in dist/ or dist/chunks/). */
const builtEntry = (name: string): string => {
  let dir = path.dirname(fileURLToPath(import.meta.url))
  for (let i = 0; i < 2 && !fs.existsSync(path.join(dir, name)); i++) dir = path.dirname(dir)
  return path.join(dir, name)
}

// The built init, not its source: it sets the process's exit code when its daemons are gone.
// Uninterruptible: on SIGTERM/SIGINT the init stops its daemons itself (its own handlers), and
// the CLI must wait for that instead of exiting and leaving them orphaned.
const init = Command.make("init", {}, () => Effect.uninterruptible(Effect.promise(() => import(pathToFileURL(builtEntry("bundle-init.mjs")).href)))).pipe(
  Command.withDescription(`The sidecar bundle's init: start the daemons in $BOTTLE_DAEMONS (built: ${builtDaemons().map((r) => r.name).join(", ")}) and report readiness`)
)

export const daemon = Command.make("daemon").pipe(
  Command.withDescription("Run a sidecar daemon in the foreground (used inside the bundle; also for tests and benchmarks)"),
  Command.withExamples([{ command: "bottle daemon egress --routes routes.yaml --state-dir ./egress --listen 127.0.0.1:0", description: "The egress proxy on its own" }]),
  Command.withSubcommands([init, egressDaemon])
)
