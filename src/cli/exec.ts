/** `bottle exec <bottle> -- CMD…`: run a command in the agent sandbox, as the agent's user. */
import { Effect } from "effect"
import { Argument, Command, Flag } from "effect/cli"
import { Backend } from "../services/Backend.ts"
import { bottleArg, onBackend, savedPlan } from "./bottleArg.ts"
import { CliFailure } from "./failure.ts"

export const exec = Command.make(
  "exec",
  {
    bottle: bottleArg,
    root: Flag.Boolean("root").pipe(Flag.withDescription("Run as root instead of the agent's user"), Flag.withDefault(false)),
    command: Argument.String("command").pipe(Argument.withDescription("Command and arguments, after --"), Argument.variadic({ min: 1 }))
  },
  Effect.fn(function*({ bottle, root, command }) {
    const plan = yield* savedPlan(bottle)
    const code = yield* Effect.gen(function*() {
      const backend = yield* Backend
      const [found] = yield* backend.inspect(bottle).pipe(Effect.orElseSucceed(() => []))
      if (found?.status !== "running" && found?.status !== "unhealthy" && found?.status !== "degraded") {
        return yield* new CliFailure({ message: `bottle ${bottle} is not running (\`bottle resume ${bottle} --detach\` brings it back)` })
      }
      return yield* backend.attach(plan, command, { user: root ? "root" : "agent" })
    }).pipe(onBackend(plan.backend))
    if (code !== 0) process.exitCode = code
  })
).pipe(Command.withDescription("Run a command inside a running bottle's agent sandbox"))
