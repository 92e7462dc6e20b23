/**
 * Fake LoopbackAlias: hands out 127.0.0.2, 127.0.0.3, ... from a counter (no lease files, no
 * `ifconfig`), recording acquire/release in the Recorder. Told `exhausted`, it fails as a full
 * pool would. A test may replace `alias` altogether.
 */
import { Effect, Layer, Ref } from "effect"
import { LoopbackAlias, LoopbackAliasError } from "../../src/services/LoopbackAlias.ts"
import { Recorder } from "./Recorder.ts"

export interface FakeLoopbackAliasOptions extends Partial<LoopbackAlias["Service"]> {
  readonly exhausted?: boolean
}

export const layerTest = (options: FakeLoopbackAliasOptions = {}) =>
  Layer.effect(LoopbackAlias, Effect.gen(function*() {
    const rec = yield* Recorder
    const next = yield* Ref.make(2)
    const add = Effect.gen(function*() {
      if (options.exhausted) {
        return yield* new LoopbackAliasError({ address: "127.0.0.0/24", message: "fake: no free loopback alias" })
      }
      const address = `127.0.0.${yield* Ref.getAndUpdate(next, (n) => n + 1)}`
      yield* rec.record(`acquire alias ${address}`)
      return address
    })
    const alias = options.alias ??
        ((slug: string) =>
          rec.gate(`alias ${slug}`).pipe(
            Effect.andThen(Effect.acquireRelease(add, (address) => rec.record(`release alias ${address}`)))
          ))
    return LoopbackAlias.of({
      needsAlias: options.needsAlias ?? true,
      release: options.release ?? ((slug) => rec.record(`release alias of ${slug}`)),
      current: options.current ?? ((slug) => Effect.die(new Error(`fake LoopbackAlias: unexpected call to current ${slug}`))),
      endpoint: options.endpoint ?? ((slug) => alias(slug).pipe(Effect.map((a) => ({ allowCidr: `${a}/32`, address: a, publishOn: a })))),
      alias: options.alias ??
        ((slug) =>
          rec.gate(`alias ${slug}`).pipe(
            Effect.andThen(Effect.acquireRelease(add, (address) => rec.record(`release alias ${address}`)))
          ))
    })
  }))
