/**
 * `bottle resume <bottle>`: reattach to a running bottle, or bring a stopped one back from its
 * state (its workspace and home as they were). A half-running (degraded) or unhealthy bottle is
 * stopped first (its state kept) and brought back the same way, so the hint `exec` and `ls`
 * give for it works as printed.
 */
import { Console, Effect } from "effect"
import { Command, Flag } from "effect/cli"
import { listBottles, teardown } from "../programs/bottles.ts"
import { attach, launch } from "../programs/launch.ts"
import { Progress } from "../services/Progress.ts"
import { bottleArg, onBackend, savedPlan } from "./bottleArg.ts"
import { CliFailure } from "./failure.ts"
import { progress } from "./progress.ts"
import { sessionEnded } from "./sessionEnd.ts"

export const resume = Command.make(
  "resume",
  {
    bottle: bottleArg,
    detach: Flag.Boolean("detach").pipe(Flag.withAlias("d"), Flag.withDescription("Bring it back without attaching"), Flag.withDefault(false))
  },
  Effect.fn(function*({ bottle, detach }) {
    const plan = yield* savedPlan(bottle)
    const row = (yield* listBottles()).find((r) => r.slug === bottle)
    if (row?.status === "running") {
      if (detach) return yield* Console.error(`bottle ${bottle} is already running`)
      const end = yield* attach(plan).pipe(onBackend(plan.backend), Effect.map((e) => (e._tag === "Detached" ? { slug: bottle, detached: true } : { slug: bottle, exitCode: e.exitCode })))
      yield* Console.error(sessionEnded(bottle, end, true))
      if (end.exitCode) process.exitCode = end.exitCode
      return
    }
    if (row?.status === "unhealthy" || row?.status === "degraded") {
      yield* Console.error(`bottle ${bottle} is ${row.status === "unhealthy" ? "unhealthy (a sidecar daemon crashed; `bottle logs " + bottle + "` says why)" : `half running (${row.containers.join(", ") || "parts missing"})`}: restarting it, its workspace and home kept`)
      const left = yield* teardown(bottle, { purge: false, env: process.env }).pipe(onBackend(plan.backend))
      if (left.length > 0) return yield* new CliFailure({ message: `bottle ${bottle} could not be stopped cleanly to restart it (\`bottle stop ${bottle}\`, then resume): ${left.join("; ")}` })
    }
    const ui = progress()
    const result = yield* launch(plan, { mode: detach ? "detach" : "attach", fresh: false, env: process.env }).pipe(
      onBackend(plan.backend),
      Effect.provideService(Progress, ui),
      Effect.ensuring(Effect.sync(ui.done))
    )
    if (detach) return yield* Console.error(`bottle ${bottle} is running, its workspace and home as they were. Attach: bottle resume ${bottle} · shell: bottle exec ${bottle} bash · stop: bottle stop ${bottle}`)
    yield* Console.error(sessionEnded(bottle, result, false))
    if (result.exitCode) process.exitCode = result.exitCode
  })
).pipe(Command.withDescription("Reattach to a running bottle, or bring a stopped (or half-running) one back from its state, workspace and home included (example: bottle resume claude-1a2b3c)"))
