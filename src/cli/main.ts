/**
 * The `bottle` CLI. Wiring only: commands → layers → runMain. runMain turns Ctrl-C into
 * interruption, so every finalizer of a launch runs. Failures print one line and exit ≠ 0.
 */
import { NodeRuntime, NodeServices } from "@effect/platform-node"
import { Effect } from "effect"
import { CliError, Command } from "effect/cli"
import * as BottleLive from "../layers/BottleLive.ts"
import { packageVersion } from "../programs/assets.ts"
import { approvals, approve, deny } from "./approvals.ts"
import { cleanup } from "./cleanup.ts"
import { cp } from "./cp.ts"
import { daemon } from "./daemon.ts"
import { dash } from "./dash.ts"
import { doctor } from "./doctor.ts"
import { egress } from "./egress.ts"
import { exec } from "./exec.ts"
import { logs } from "./logs.ts"
import { ls } from "./ls.ts"
import { plan } from "./plan.ts"
import { pull } from "./pull.ts"
import { resume } from "./resume.ts"
import { run } from "./run.ts"
import { schema } from "./schema.ts"
import { start } from "./start.ts"
import { stop } from "./stop.ts"

const bottle = Command.make("bottle").pipe(
  Command.withDescription("Run an AI coding agent in a sandbox whose only way out is a sidecar you control"),
  Command.withSubcommands([start, run, plan, ls, dash, exec, stop, resume, logs, cleanup, schema, doctor, egress, daemon, cp, pull, approvals, approve, deny])
)

const program = Command.run(bottle, { version: packageVersion() }).pipe(
  Effect.provide(BottleLive.layer),
  Effect.catch((error: unknown) =>
    Effect.sync(() => {
      // Parse errors were already shown by the CLI module with usage help.
      if (CliError.isCliError(error)) {
        process.exitCode = 2
        return
      }
      const e = error as { message?: string; exitCode?: number }
      process.stderr.write(`bottle: ${e.message ?? String(error)}\n`)
      process.exitCode = e.exitCode ?? 1
    })
  ),
  Effect.provide(NodeServices.layer)
)

NodeRuntime.runMain(program)
