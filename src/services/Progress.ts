/**
 * Where launch progress goes: a reference (default: nowhere) that the CLI replaces with its
 * renderer. Reporting never fails and never blocks a launch.
 */
import { Context, Effect } from "effect"
import type { LaunchStep, ProgressEvent } from "../schema/LaunchProgress.ts"

export const Progress = Context.Reference<{ readonly report: (event: ProgressEvent) => Effect.Effect<void> }>("bot-bottle/Progress", {
  defaultValue: () => ({ report: () => Effect.void })
})

/** Reports that launch step `step` begins. */
export const reportStep = (step: LaunchStep): Effect.Effect<void> =>
  Effect.gen(function*() {
    yield* (yield* Progress).report({ _tag: "Step", step })
  })
