/** The `<bottle>` argument, and reading a bottle's saved plan. */
import { Effect } from "effect"
import { Argument } from "effect/cli"
import { BottlePlan } from "../schema/BottlePlan.ts"
import { StateStore } from "../services/StateStore.ts"

export const bottleArg = Argument.String("bottle").pipe(Argument.withDescription("Bottle name (see `bottle ls`)"))

export const savedPlan = (slug: string) =>
  Effect.gen(function*() {
    const state = yield* StateStore
    return yield* state.readJson(slug, "plan.json", BottlePlan)
  })
