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
