/**
 * `bottle dash`: one terminal screen to start, watch, answer and stop every bottle (an Ink app,
 * src/dash/). It runs the same programs as the other commands, on the same services; while the
 * screen is up, the programs' error logs become the dashboard's alerts instead of lines drawn
 * over it. `--once --json` prints the list (with the live counters) for scripts.
 */
import { Effect, Logger } from "effect"
import { Command, Flag } from "effect/cli"
import type { DashServices } from "../dash/feed.ts"
import { CliFailure } from "./failure.ts"
import { jsonFlag } from "./flags.ts"
import { applyDashV8Flags } from "./nodeFlags.ts"

export const dash = Command.make(
  "dash",
  {
    once: Flag.Boolean("once").pipe(Flag.withDescription("Print the bottles list once and exit (with --json: for scripts)"), Flag.withDefault(false)),
    json: jsonFlag
  },
  Effect.fn(function*({ once, json }) {
    const logSink = { alert: (text: string) => void process.stderr.write(`${text}\n`) }
    const toAlerts = Logger.make(({ logLevel, message }) => {
      if (logLevel === "Error" || logLevel === "Fatal" || logLevel === "Warn") {
        logSink.alert((Array.isArray(message) ? message : [message]).map((m) => (typeof m === "string" ? m : String(m))).join(" "))
      }
    })
    const code = yield* Effect.gen(function*() {
      const context = yield* Effect.context<DashServices>()
      // React's production build (the development one is slower and larger); read when React loads.
      process.env["NODE_ENV"] ??= "production"
      // A long-lived, mostly idle process: a heap sized to what it uses (src/cli/nodeFlags.ts).
      applyDashV8Flags()
      const { runDash } = yield* Effect.promise(() => import("../dash/run.tsx"))
      return yield* Effect.tryPromise({
        // --json alone means once too: a script cannot read the live screen.
        try: () => runDash(context, { once: once || json, json, cwd: process.cwd(), env: process.env, bottleCommand: [process.execPath, process.argv[1] ?? "bottle"], logSink }),
        catch: (e) => new CliFailure({ message: `dash: ${e instanceof Error ? e.message : String(e)}` })
      })
    }).pipe(Effect.provide(Logger.layer([toAlerts])))
    if (code !== 0) process.exitCode = code
  })
).pipe(
  Command.withDescription("A live dashboard of every bottle: start, watch egress and pushes, answer approvals, stop (e.g. `bottle dash`, or `bottle dash --once --json`)"),
  Command.withShortDescription("A live dashboard of every bottle: start, watch egress and pushes, answer approvals, stop")
)
