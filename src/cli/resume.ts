/** `bottle resume <bottle>`: reattach to a running bottle, or bring a stopped one back from its state. */
import { Console, Effect } from "effect"
import { Command, Flag } from "effect/cli"
import { listBottles } from "../programs/bottles.ts"
import { attach, launch } from "../programs/launch.ts"
import { Progress } from "../services/Progress.ts"
import { bottleArg, onBackend, savedPlan } from "./bottleArg.ts"
import { CliFailure } from "./failure.ts"
import { jsonFlag } from "./flags.ts"
import { progress } from "./progress.ts"

export const resume = Command.make(
  "resume",
  {
    bottle: bottleArg,
    detach: Flag.Boolean("detach").pipe(Flag.withAlias("d"), Flag.withDescription("Bring it back without attaching"), Flag.withDefault(false)),
    json: jsonFlag
  },
  Effect.fn(function*({ bottle, detach, json }) {
    const plan = yield* savedPlan(bottle)
    const row = (yield* listBottles()).find((r) => r.slug === bottle)
    if (row?.status === "running") {
      if (detach) {
        if (json) yield* Console.log(JSON.stringify({ bottle, status: "running", resumed: false }))
        return yield* Console.error(`bottle ${bottle} is already running`)
      }
      const code = yield* attach(plan).pipe(onBackend(plan.backend))
      if (code !== 0) process.exitCode = code
      return
    }
    if (row?.status === "unhealthy") {
      return yield* new CliFailure({ message: `bottle ${bottle}'s sidecar is unhealthy (a daemon crashed; see \`bottle logs ${bottle}\`): \`bottle stop ${bottle}\`, then resume` })
    }
    if (row?.status === "degraded") {
      return yield* new CliFailure({ message: `bottle ${bottle} is half running (${row.containers.join(", ")}); \`bottle stop ${bottle}\` first, then resume` })
    }
    const ui = progress()
    const result = yield* launch(plan, { mode: detach ? "detach" : "attach", fresh: false, env: process.env }).pipe(
      onBackend(plan.backend),
      Effect.provideService(Progress, ui),
      Effect.ensuring(Effect.sync(ui.done))
    )
    if (json) yield* Console.log(JSON.stringify(detach ? { bottle, status: "running", resumed: true } : { bottle, exitCode: result.exitCode ?? 0 }))
    if (result.exitCode) process.exitCode = result.exitCode
  })
).pipe(
  Command.withDescription("Reattach to a running bottle, or restart a stopped one from its saved plan"),
  Command.withExamples([
    { command: "bottle resume claude-1a2b3c", description: "Attach to the agent again" },
    { command: "bottle resume claude-1a2b3c --detach", description: "Bring a stopped bottle back in the background" }
  ])
)
