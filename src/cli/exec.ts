/** `bottle exec <bottle> -- CMD…`: run a command in the agent sandbox, as the agent's user. */
import { Effect } from "effect"
import { Argument, Command, Flag } from "effect/cli"
import { bottleNames } from "../programs/bottleNames.ts"
import { AGENT_HOME } from "../providers/claude.ts"
import { Docker } from "../services/Docker.ts"
import { StateStore } from "../services/StateStore.ts"
import { bottleArg, savedPlan } from "./bottleArg.ts"
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
    const docker = yield* Docker
    const agent = bottleNames((yield* StateStore).root, bottle).agent
    const st = yield* docker.containerState(agent).pipe(Effect.option)
    if (st._tag === "None" || !st.value.running) {
      return yield* new CliFailure({ message: `bottle ${bottle} is not running (\`bottle resume ${bottle} --detach\` brings it back)` })
    }
    const code = yield* docker.execInteractive(agent, command, {
      tty: process.stdin.isTTY === true && process.stdout.isTTY === true,
      user: root ? "root" : "node",
      workdir: plan.workdir,
      env: { ...plan.env, HOME: AGENT_HOME }
    })
    if (code !== 0) process.exitCode = code
  })
).pipe(Command.withDescription("Run a command inside a running bottle's agent sandbox"))
