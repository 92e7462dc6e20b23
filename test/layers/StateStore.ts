/**
 * The real StateStore on a temp dir, with its scoped acquisitions (bottle dir, leases)
 * recorded in the Recorder so program tests see them in the same event log as Docker's.
 */
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { Effect, Layer } from "effect"
import { make } from "../../src/layers/StateStore.ts"
import { StateStore } from "../../src/services/StateStore.ts"
import { Recorder } from "./Recorder.ts"

export const layerRecorded = (root = fs.mkdtempSync(path.join(os.tmpdir(), "bb-state-"))) =>
  Layer.effect(StateStore, Effect.gen(function*() {
    const rec = yield* Recorder
    const real = make(root)
    return StateStore.of({
      ...real,
      createBottleDir: (slug) =>
        rec.gate("state-dir").pipe(
          Effect.andThen(real.createBottleDir(slug)),
          Effect.tap(() => rec.record(`acquire state-dir ${slug}`)),
          Effect.tap(() => Effect.addFinalizer((exit) => rec.record(exit._tag === "Success" ? `keep state-dir ${slug}` : `release state-dir ${slug}`)))
        ),
      lease: (pool, size, slug, options) =>
        rec.gate(`lease ${pool}`).pipe(
          Effect.andThen(real.lease(pool, size, slug, options)),
          Effect.tap((l) => rec.record(`acquire lease ${pool}#${l.index}`)),
          Effect.tap((l) => Effect.addFinalizer(() => rec.record(`release lease ${pool}#${l.index}`)))
        )
    })
  }))
