/**
 * `bottle start <agent>`: plan, confirm (y/N), launch, attach. Ctrl-C at any point tears down
 * everything acquired so far; exiting the agent tears everything down (state is kept for
 * `bottle logs` and `bottle resume`).
 */
import * as readline from "node:readline"
import { Console, Effect } from "effect"
import { Command, Flag } from "effect/cli"
import { backendNotBuilt, launch } from "../programs/launch.ts"
import { resolvePlan } from "../programs/resolvePlan.ts"
import { StateStore } from "../services/StateStore.ts"
import { CliFailure } from "./failure.ts"
import { backendFlag, manifestFlag, nameFlag } from "./flags.ts"
import { agentArg } from "./plan.ts"
import { renderPlan } from "./render.ts"
import { progress } from "./progress.ts"

const NOT_BUILT_DAEMONS = new Set(["git-gate", "supervise"])

const confirm = (question: string) =>
  Effect.callback<boolean>((resume) => {
    const rl = readline.createInterface({ input: process.stdin, output: process.stderr })
    rl.question(question, (answer) => {
      rl.close()
      resume(Effect.succeed(/^y(es)?$/i.test(answer.trim())))
    })
    rl.on("close", () => resume(Effect.succeed(false)))
    return Effect.sync(() => rl.close())
  })

export const start = Command.make(
  "start",
  {
    agent: agentArg,
    manifest: manifestFlag,
    backend: backendFlag,
    name: nameFlag,
    yes: Flag.Boolean("yes").pipe(Flag.withAlias("y"), Flag.withDescription("Do not ask for confirmation"), Flag.withDefault(false)),
    detach: Flag.Boolean("detach").pipe(Flag.withAlias("d"), Flag.withDescription("Leave the bottle running in the background"), Flag.withDefault(false))
  },
  Effect.fn(function*(input) {
    const { loaded, plan } = yield* resolvePlan(input)
    // Before the plan and the prompt: a backend that cannot run is one line, not a question.
    const notBuilt = backendNotBuilt(plan.backend)
    if (notBuilt) return yield* notBuilt
    yield* Console.error(renderPlan(plan, loaded.file))
    const missingDaemons = plan.daemons.filter((d) => NOT_BUILT_DAEMONS.has(d))
    if (missingDaemons.length > 0) {
      return yield* new CliFailure({ message: `this bottle needs the ${missingDaemons.join(" and ")} daemon${missingDaemons.length > 1 ? "s" : ""}, which ${missingDaemons.length > 1 ? "are" : "is"} not built yet in this version of bot-bottle` })
    }
    const missing = plan.egress.tokens.filter((t) => !t.present)
    if (missing.length > 0) {
      return yield* new CliFailure({ message: `${missing.map((t) => `$${t.env}`).join(", ")} ${missing.length > 1 ? "are" : "is"} not set on this host; the bottle's routes inject ${missing.length > 1 ? "them" : "it"}` })
    }
    const state = yield* StateStore
    if (yield* state.exists(plan.slug)) {
      return yield* new CliFailure({ message: `bottle ${plan.slug} already exists: \`bottle resume ${plan.slug}\` to attach, or \`bottle stop ${plan.slug} --purge\` first (or pick another --name)` })
    }
    if (!input.yes) {
      if (!process.stdin.isTTY) return yield* new CliFailure({ message: "not confirmed: stdin is not a terminal; pass --yes to start without asking" })
      if (!(yield* confirm(`Start bottle ${plan.slug}? [y/N] `))) return yield* new CliFailure({ message: "not started", exitCode: 1 })
    }
    const ui = progress()
    const result = yield* launch(plan, {
      mode: input.detach ? "detach" : "attach",
      fresh: true,
      env: process.env,
      onStep: ui.step,
      onBuildProgress: ui.detail
    }).pipe(Effect.ensuring(Effect.sync(ui.done)))
    if (input.detach) {
      yield* Console.log(plan.slug)
      yield* Console.error(`bottle ${plan.slug} is running. Attach: bottle resume ${plan.slug} · shell: bottle exec ${plan.slug} -- bash · stop: bottle stop ${plan.slug}`)
    } else if (result.exitCode !== undefined && result.exitCode !== 0) {
      process.exitCode = result.exitCode
    }
  })
).pipe(Command.withDescription("Show the plan, confirm, launch the bottle and attach the agent's terminal"))
