/**
 * Saved plans: a plan carries its backend-specific part as a union tagged by backend; a
 * plan.json written before that (version 1, docker names in `network`) still reads, as the
 * docker bottle it is; a plan whose parts disagree on the backend is refused, naming both.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Layer, Schema } from "effect"
import { parseManifest } from "../src/programs/loadManifest.ts"
import { prepare } from "../src/programs/prepare.ts"
import { SavedBottlePlan } from "../src/schema/BottlePlan.ts"
import { Recorder } from "./layers/Recorder.ts"
import * as RecordedState from "./layers/StateStore.ts"

const decode = Schema.decodeUnknownEffect(SavedBottlePlan)

const planFor = (backend: "docker" | "smolmachines") =>
  Effect.gen(function*() {
    const loaded = yield* parseManifest(`agents:\n  coder: { bottle: box }\nbottles:\n  box: { backend: ${backend} }\n`, "/m/bottle.yaml", "/m")
    return yield* prepare({ loaded, agent: "coder", cwd: "/m/project", env: {}, name: "coder-1" })
  }).pipe(Effect.provide(RecordedState.layerRecorded().pipe(Layer.provide(Recorder.layer))))

describe("saved plans", () => {
  it.effect("each backend's plan carries its own part, tagged by the backend", () =>
    Effect.gen(function*() {
      const docker = yield* planFor("docker")
      // Names carry the state root's id beside the slug (src/programs/bottleNames.ts).
      const id = docker.runtime.backend === "docker" ? docker.runtime.internalNetwork.match(/^bottle-coder-1-([0-9a-f]{8})-int$/)?.[1] : undefined
      assert.isDefined(id, JSON.stringify(docker.runtime))
      assert.deepStrictEqual(docker.runtime, { backend: "docker", internalNetwork: `bottle-coder-1-${id}-int`, egressNetwork: `bottle-coder-1-${id}-ext` })
      const smol = yield* planFor("smolmachines")
      assert.strictEqual(smol.runtime.backend, "smolmachines")
      // What every backend shares stays outside the union.
      assert.deepStrictEqual(Object.keys(docker.network).sort(), ["bundleIp", "subnet", "subnetIndex"])
      assert.deepStrictEqual(yield* decode(JSON.parse(JSON.stringify(docker))), docker, "a plan round-trips through plan.json")
    }))

  it.effect("a version-1 plan.json (docker names in network) reads as a docker plan with those names", () =>
    Effect.gen(function*() {
      const current = yield* planFor("docker")
      const { runtime: _, network, ...rest } = current
      const v1 = { ...rest, version: 1, network: { ...network, internal: "old-int", egress: "old-ext" } }
      const read = yield* decode(JSON.parse(JSON.stringify(v1)))
      assert.strictEqual(read.version, 2)
      assert.deepStrictEqual(read.runtime, { backend: "docker", internalNetwork: "old-int", egressNetwork: "old-ext" })
      assert.deepStrictEqual(read.network, network)
    }))

  it.effect("a plan whose runtime is another backend's is refused, naming both", () =>
    Effect.gen(function*() {
      const docker = yield* planFor("docker")
      const err = yield* Effect.flip(decode({ ...docker, runtime: { backend: "smolmachines", bundleNetwork: "n", machine: "m" } }))
      assert.include(err.message, "runtime.backend smolmachines disagrees with backend docker")
    }))
})
