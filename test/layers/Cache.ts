/**
 * Fake Cache: an in-memory map (a cache is a map; a model is more faithful than stubs), with
 * `put`/`remove` and get hits/misses recorded in the Recorder so tests can assert that a
 * cached artifact skipped a pipeline. Paths are under a fake root and never touch the disk.
 * A test may replace any method; `failPut` makes `put` fail as a full disk would.
 */
import { Effect, Layer, Ref } from "effect"
import { Cache, CacheError } from "../../src/services/Cache.ts"
import { Recorder } from "./Recorder.ts"

export interface FakeCacheOptions extends Partial<Omit<Cache["Service"], "root" | "entries">> {
  /** Pre-existing entries, keyed "namespace/key". */
  readonly entries?: ReadonlyArray<string>
  readonly failPut?: boolean
}

export const FAKE_CACHE_ROOT = "/fake-cache"

export const layerTest = (options: FakeCacheOptions = {}) =>
  Layer.effect(Cache, Effect.gen(function*() {
    const rec = yield* Recorder
    const entries = yield* Ref.make<ReadonlySet<string>>(new Set(options.entries ?? []))
    const temps = yield* Ref.make(0)
    const pathOf = (id: string) => `${FAKE_CACHE_ROOT}/${id}`
    return Cache.of({
      root: FAKE_CACHE_ROOT,
      get: options.get ??
        ((ns, key) =>
          Ref.get(entries).pipe(
            Effect.map((es) => (es.has(`${ns}/${key}`) ? pathOf(`${ns}/${key}`) : undefined)),
            Effect.tap((p) => rec.record(`cache ${p ? "hit" : "miss"} ${ns}/${key}`))
          )),
      put: options.put ??
        ((ns, key, file) =>
          options.failPut
            ? Effect.fail(new CacheError({ path: pathOf(`${ns}/${key}`), message: "fake: no space left on device" }))
            : rec.record(`cache put ${ns}/${key} from ${file}`).pipe(
              Effect.andThen(Ref.update(entries, (es) => new Set([...es, `${ns}/${key}`]))),
              Effect.as(pathOf(`${ns}/${key}`))
            )),
      tempPath: options.tempPath ??
        ((ns) => Ref.getAndUpdate(temps, (n) => n + 1).pipe(Effect.map((n) => pathOf(`${ns}/.tmp/${n}`)))),
      lock: options.lock ?? ((ns, key) => Effect.acquireRelease(rec.record(`cache lock ${ns}/${key}`), () => rec.record(`cache unlock ${ns}/${key}`))),
      entries: Effect.succeed([]),
      clear: options.clear ?? (() => Effect.succeed([])),
      remove: options.remove ??
        ((ns, key) =>
          rec.record(`cache remove ${ns}/${key}`).pipe(
            Effect.andThen(Ref.update(entries, (es) => new Set([...es].filter((e) => e !== `${ns}/${key}`))))
          ))
    })
  }))
