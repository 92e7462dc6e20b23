/**
 * The smolmachines backend's image pipeline on fake layers (engine, registry, cache, smolvm):
 * a cached artifact skips save, registry and pack entirely; a miss runs them in order, under
 * the image's cache lock, and the registry is released before the artifact is handed on.
 */
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Layer, Ref } from "effect"
import * as ProcessRunnerLive from "../src/layers/ProcessRunner.ts"
import * as SmolmachinesBackend from "../src/layers/SmolmachinesBackend.ts"
import { Backend } from "../src/services/Backend.ts"
import { Docker } from "../src/services/Docker.ts"
import * as FakeCache from "./layers/Cache.ts"
import * as FakeDocker from "./layers/Docker.ts"
import * as FakeLoopbackAlias from "./layers/LoopbackAlias.ts"
import { Recorder } from "./layers/Recorder.ts"
import * as FakeRegistry from "./layers/Registry.ts"
import * as FakeSmolvm from "./layers/Smolvm.ts"
import * as RecordedState from "./layers/StateStore.ts"

const imageDir = fs.mkdtempSync(path.join(os.tmpdir(), "bb-smol-img-"))
fs.writeFileSync(path.join(imageDir, "Dockerfile"), "FROM scratch\n")
const sources = {
  agent: { name: "agent", files: [{ at: "Dockerfile", from: path.join(imageDir, "Dockerfile") }] },
  bundle: { name: "bundle", files: [{ at: "Dockerfile", from: path.join(imageDir, "Dockerfile") }] }
}

/** The fake engine, with `docker save` recorded (the fake itself refuses calls nobody stubbed). */
const engine = Layer.effect(Docker, Effect.gen(function*() {
  const rec = yield* Recorder
  const docker = yield* Docker
  return Docker.of({ ...docker, saveImage: (ref) => rec.record(`save ${ref}`) })
})).pipe(Layer.provide(FakeDocker.layerTest()))

const layers = (cache: FakeCache.FakeCacheOptions) =>
  SmolmachinesBackend.layerWith.pipe(
    Layer.provide(Layer.mergeAll(
      engine,
      FakeRegistry.layerTest({ pushArchive: (reg, _tar, repoTag) => Effect.succeed(`${reg.hostAddress}/${repoTag}`) }),
      FakeCache.layerTest(cache),
      FakeSmolvm.layerTest({ packCreate: (_image, out) => Effect.succeed(`${out}.smolmachine`) }),
      FakeLoopbackAlias.layerTest(),
      ProcessRunnerLive.layer
    )),
    Layer.provideMerge(RecordedState.layerRecorded()),
    Layer.provideMerge(Recorder.layer)
  )

const pipelineEvents = (events: ReadonlyArray<string>) =>
  events.filter((e) => /^(save|acquire registry|release registry|push|pack|cache )/.test(e)).map((e) => e.replace(/ \d+-[a-z0-9]+/g, " SESSION").replace(/\/fake-cache\/smolmachine\/\.tmp\/\d+/, "TMP"))

describe("smolmachines image pipeline", () => {
  it.effect("a cached artifact of the image id: no save, no registry, no pack", () =>
    Effect.gen(function*() {
      const images = yield* (yield* Backend).images({ env: {}, sources })
      assert.strictEqual(images.agent, "/fake-cache/smolmachine/sha256:fake")
      assert.deepStrictEqual(pipelineEvents(yield* Ref.get((yield* Recorder).events)), ["cache hit smolmachine/sha256:fake"])
    }).pipe(Effect.provide(layers({ entries: ["smolmachine/sha256:fake"] }))))

  it.effect("a miss: under the image's lock, save → registry → push → pack → publish; the registry is gone before the artifact is used", () =>
    Effect.gen(function*() {
      const images = yield* (yield* Backend).images({ env: {}, sources })
      assert.strictEqual(images.agent, "/fake-cache/smolmachine/sha256:fake")
      const events = pipelineEvents(yield* Ref.get((yield* Recorder).events))
      assert.deepStrictEqual(events.map((e) => e.replace(/^save bot-bottle\/agent:[0-9a-f]+$/, "save AGENT")), [
        "cache miss smolmachine/sha256:fake",
        "cache lock smolmachine/sha256:fake",
        "cache miss smolmachine/sha256:fake",
        "save AGENT",
        "acquire registry SESSION",
        "push bot-bottle/agent:fake",
        "pack localhost:5000/bot-bottle/agent:fake",
        "cache put smolmachine/sha256:fake from TMP/agent.smolmachine",
        "release registry SESSION",
        "cache unlock smolmachine/sha256:fake"
      ])
    }).pipe(Effect.provide(layers({}))))
})
