/** The `<bottle>` argument, reading a bottle's saved plan, and running on its backend. */
import { Effect } from "effect"
import { Argument } from "effect/cli"
import { Backends } from "../layers/Backends.ts"
import { backendOf } from "../programs/bottles.ts"
import { SavedBottlePlan } from "../schema/BottlePlan.ts"
import type { Backend as BackendName } from "../schema/Manifest.ts"
import type { Backend } from "../services/Backend.ts"
import { type StateError, StateStore } from "../services/StateStore.ts"

export const bottleArg = Argument.String("bottle").pipe(Argument.withDescription("Bottle name (see `bottle ls`)"))

export const savedPlan = (slug: string) =>
  Effect.gen(function*() {
    const state = yield* StateStore
    return yield* state.readJson(slug, "plan.json", SavedBottlePlan)
  })

/** Runs `effect` on the named backend (the table in src/layers/Backends.ts). */
export const onBackend = (name: BackendName) => <A, E, R>(effect: Effect.Effect<A, E, R>) => effect.pipe(Effect.provide(Backends.get(name)))

/** Runs `effect` on the backend bottle `slug` was launched on. */
export const onBackendOf = (slug: string) => <A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<A, E | StateError, Exclude<R, Backend> | Backends | StateStore> =>
  Effect.flatMap(backendOf(slug), (name) => onBackend(name)(effect))
