/**
 * The `bottle` CLI. Wiring only: commands → layers → runMain. runMain turns Ctrl-C into
 * interruption, so every finalizer of a launch runs. Failures print one line and exit ≠ 0.
 */
import { NodeRuntime, NodeServices } from "@effect/platform-node"
import { Console, Effect, Option } from "effect"
import { CliError, CliOutput, Command, type HelpDoc } from "effect/cli"
import * as BottleLive from "../layers/BottleLive.ts"
import { packageVersion } from "../programs/assets.ts"
import { approvals, approve, deny } from "./approvals.ts"
import { cleanup } from "./cleanup.ts"
import { cp } from "./cp.ts"
import { daemon } from "./daemon.ts"
import { dash } from "./dash.ts"
import { doctor } from "./doctor.ts"
import { egress } from "./egress.ts"
import { complete, completion } from "./completions.ts"
import { exec, execArgv } from "./exec.ts"
import { logs } from "./logs.ts"
import { ls } from "./ls.ts"
import { plan } from "./plan.ts"
import { visible } from "./render.ts"
import { pull } from "./pull.ts"
import { resume } from "./resume.ts"
import { run } from "./run.ts"
import { schema } from "./schema.ts"
import { start } from "./start.ts"
import { stop } from "./stop.ts"

/** The whole tree, for `bottle completion` (which is part of it). */
let tree: Command.Command.Any | undefined
const bottle = Command.make("bottle").pipe(
  Command.withDescription("Run an AI coding agent in a sandbox whose only way out is a sidecar you control"),
  Command.withSubcommands([start, run, plan, ls, dash, exec, stop, resume, logs, cleanup, schema, doctor, egress, daemon, cp, pull, approvals, approve, deny, completion(() => tree!), Command.unlisted(complete)])
)
tree = bottle

/** The built-in global flags as the top help page lists them: short lines; `bottle completion` replaces --completions. */
const shortGlobal = (f: HelpDoc.FlagDoc): ReadonlyArray<HelpDoc.FlagDoc> => {
  switch (f.name) {
    case "completions":
    case "wizard":
      return []
    case "log-level":
      return [{ ...f, type: "<level>", description: Option.some("Minimum log level: trace, debug, info, warn, error or none") }]
    default:
      return [f]
  }
}

/**
 * Help on `--help` (and for a command group named alone), with the global flags on the top
 * page only; a usage error is one line and a hint, never the help page.
 */
const presenter: CliOutput.Presenter = {
  present: (event) =>
    Effect.suspend(() => {
      const formatter = CliOutput.defaultFormatter({ colors: process.stdout.isTTY === true && !process.env["NO_COLOR"] })
      const page = (doc: HelpDoc.HelpDoc, path: ReadonlyArray<string>) =>
        formatter.formatHelpDoc({ ...doc, globalFlags: path.length > 1 ? [] : (doc.globalFlags ?? []).flatMap(shortGlobal) })
      switch (event._tag) {
        case "Help":
          return Console.log(page(event.helpDoc, event.commandPath))
        case "InvalidInvocation": {
          const first = event.errors[0]
          const line = (first?.message ?? "invalid arguments").split("\n")[0]!
          const suggestions = (first as { readonly suggestions?: ReadonlyArray<string> } | undefined)?.suggestions ?? []
          const hint = suggestions.length > 0 && !line.includes("Did you mean") ? ` (did you mean ${suggestions.join(" or ")}?)` : ""
          return Console.error(`bottle: ${line}${hint}\nrun \`${event.commandPath.join(" ")} --help\` for usage`)
        }
        case "Version":
          return Console.log(formatter.formatVersion(event.name, event.version))
      }
    })
}

const program = Command.runWith(bottle, { version: packageVersion() })(execArgv(process.argv.slice(2))).pipe(
  Effect.provide(BottleLive.layer),
  Effect.provide(CliOutput.layerPresenter(presenter)),
  Effect.catch((error: unknown) =>
    Effect.sync(() => {
      // Usage errors were already shown (one line and a hint, see presenter).
      if (CliError.isCliError(error)) {
        process.exitCode = 2
        return
      }
      const e = error as { message?: string; exitCode?: number }
      // Messages quote what they refused, often the agent's (its git's stderr in `bottle pull`).
      process.stderr.write(`bottle: ${(e.message ?? String(error)).split("\n").map(visible).join("\n")}\n`)
      process.exitCode = e.exitCode ?? 1
    })
  ),
  Effect.provide(NodeServices.layer)
)

NodeRuntime.runMain(program)
