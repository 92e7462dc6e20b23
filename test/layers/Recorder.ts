/**
 * A shared event log for fake layers: every acquisition and release is recorded in order, so
 * tests can assert acquisition order and reverse-order release. A fake can be told to block
 * (never return) on a given call, to interrupt launch at exactly that step.
 */
import { Context, Effect, Layer, Ref } from "effect"

export class Recorder extends Context.Service<Recorder, {
  readonly events: Ref.Ref<ReadonlyArray<string>>
  readonly record: (event: string) => Effect.Effect<void>
  /** Blocks forever if `event` is the one the test chose; otherwise records it. */
  readonly gate: (event: string) => Effect.Effect<void>
  readonly blockOn: Ref.Ref<string | undefined>
}>()("test/Recorder") {
  static readonly layer = Layer.effect(Recorder, Effect.gen(function*() {
    const events = yield* Ref.make<ReadonlyArray<string>>([])
    const blockOn = yield* Ref.make<string | undefined>(undefined)
    const record = (event: string) => Ref.update(events, (xs) => [...xs, event])
    return Recorder.of({
      events,
      record,
      blockOn,
      gate: (event) =>
        Ref.get(blockOn).pipe(Effect.flatMap((b) => (b === event ? record(`blocked ${event}`).pipe(Effect.andThen(Effect.never)) : Effect.void)))
    })
  }))
}

/**
 * Waits until a forked program is parked in the step the Recorder blocks. Bounded by a number
 * of yields, not a timeout: `it.effect` runs on a test clock that never advances.
 */
export const untilBlocked = Effect.gen(function*() {
  const rec = yield* Recorder
  for (let i = 0; i < 100_000; i++) {
    if ((yield* Ref.get(rec.events)).some((e) => e.startsWith("blocked "))) return
    yield* Effect.yieldNow
  }
  return yield* Effect.die(new Error(`never reached the blocked step; events: ${(yield* Ref.get(rec.events)).join(", ")}`))
})
