/**
 * `bottle plan <agent>`: resolve and print the plan; starts and writes nothing. A plan for a
 * backend or a daemon this version cannot run still prints, with a warning (on stderr, so
 * `--json` stays JSON) that `start` will refuse it, and the plan marks what is not built.
 */
import { Console, Effect } from "effect"
import { Argument, Command } from "effect/cli"
import { pendingGrants } from "../programs/grants.ts"
import { resolvePlan } from "../programs/resolvePlan.ts"
import { notBuiltDaemons } from "../schema/BundleProtocol.ts"
import { Backend } from "../services/Backend.ts"
import { onBackend } from "./bottleArg.ts"
import { backendFlag, jsonFlag, manifestFlag, nameFlag } from "./flags.ts"
import { renderPlan } from "./render.ts"

export const agentArg = Argument.String("agent").pipe(Argument.withDescription("Agent name (a key of `agents` in bottle.yaml; `claude` in the default)"))

export const plan = Command.make(
  "plan",
  { agent: agentArg, manifest: manifestFlag, backend: backendFlag, name: nameFlag, json: jsonFlag },
  Effect.fn(function*(input) {
    const { loaded, plan } = yield* resolvePlan(input)
    const grants = yield* pendingGrants(plan)
    yield* Console.log(input.json ? JSON.stringify(plan, null, 2) : renderPlan(plan, loaded.file, grants))
    const unbuilt = notBuiltDaemons(plan.daemons)
    if (unbuilt.length > 0) {
      yield* Console.error(`warning: this plan needs ${unbuilt.map((d) => `the ${d} daemon`).join(" and ")}, not built yet in this version of bot-bottle: \`bottle start\` will refuse it`)
    }
    const refusal = yield* Backend.use((b) => b.preflight).pipe(onBackend(plan.backend), Effect.flip, Effect.option)
    if (refusal._tag === "Some" && refusal.value.reason._tag === "BackendNotBuilt") {
      yield* Console.error(`note: the ${plan.backend} backend is not built yet in this version of bot-bottle: \`bottle start\` will refuse this plan (use --backend docker)`)
    }
  })
).pipe(
  Command.withDescription("Show what `bottle start <agent>` would do, without doing it"),
  Command.withExamples([
    { command: "bottle plan claude", description: "The plan for the built-in Claude bottle (or ./bottle.yaml's)" },
    { command: "bottle plan claude --json", description: "For scripts" }
  ])
)
