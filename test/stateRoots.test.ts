/**
 * Two state roots on one engine: names and labels carry the root's id, so the same slug in two
 * roots names different objects; and `ls`, `stop` and `cleanup` in one root never see, stop or
 * remove the other root's objects (the engine's listing holds both). The docker backend on a
 * fake engine, real state.
 */
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Layer, LayerMap, Ref } from "effect"
import { Backends } from "../src/layers/Backends.ts"
import * as DockerBackend from "../src/layers/DockerBackend.ts"
import * as ProcessRunnerLive from "../src/layers/ProcessRunner.ts"
import * as SmolmachinesBackend from "../src/layers/SmolmachinesBackend.ts"
import { bottleNames, stateRootId } from "../src/programs/bottleNames.ts"
import { cleanup, listBottles, teardown } from "../src/programs/bottles.ts"
import type { LabelledResource } from "../src/services/Docker.ts"
import { StateStore } from "../src/services/StateStore.ts"
import * as FakeDocker from "./layers/Docker.ts"
import * as FakeGitHost from "./layers/GitHost.ts"
import { Recorder } from "./layers/Recorder.ts"
import * as RecordedState from "./layers/StateStore.ts"

const tmp = (prefix: string) => fs.mkdtempSync(path.join(os.tmpdir(), prefix))
const rootA = tmp("bb-root-a-")
const rootB = tmp("bb-root-b-")

/** A bottle's four objects as the engine lists them, labelled for `root` (none: an old version's). */
const objects = (root: string | undefined, slug: string): ReadonlyArray<LabelledResource> => {
  const n = root ? bottleNames(root, slug) : { agent: `bottle-${slug}-agent`, bundle: `bottle-${slug}-bundle`, internalNetwork: `bottle-${slug}-int`, egressNetwork: `bottle-${slug}-ext` }
  const label = root ? { root: stateRootId(root) } : {}
  return [
    { kind: "container", id: n.agent, name: n.agent, slug, state: "running", ...label },
    { kind: "container", id: n.bundle, name: n.bundle, slug, state: "running", ...label },
    { kind: "network", id: n.internalNetwork, name: n.internalNetwork, slug, ...label },
    { kind: "network", id: n.egressNetwork, name: n.egressNetwork, slug, ...label }
  ]
}

// Root A has bottle "shared" (stopped here), B has "shared" and "theirs" running and a dead "ghost".
const engine = [
  ...objects(rootB, "shared"),
  ...objects(rootB, "theirs"),
  ...objects(rootB, "ghost"),
  ...objects(rootA, "orphan"),
  ...objects(undefined, "old")
]

// `ls` and `cleanup` ask each backend of the table, `stop` the bottle's own: here both are the
// docker backend on the fake engine and this root.
const backends = Layer.effect(Backends, LayerMap.fromRecord({ docker: DockerBackend.layerWith, smolmachines: SmolmachinesBackend.layer }))
const layers = (root: string) =>
  Layer.mergeAll(backends, DockerBackend.layerWith, FakeGitHost.layerTest(), ProcessRunnerLive.layer).pipe(
    Layer.provideMerge(Layer.mergeAll(FakeDocker.layerTest({ labelled: engine }), RecordedState.layerRecorded(root))),
    Layer.provideMerge(Recorder.layer)
  )

const released = Effect.gen(function*() {
  return (yield* Ref.get((yield* Recorder).events)).filter((e) => e.startsWith("release ")).map((e) => e.replace(/^release \w+ /, ""))
})

const withBottle = (slug: string) =>
  Effect.gen(function*() {
    const state = yield* StateStore
    fs.mkdirSync(state.bottleDir(slug), { recursive: true })
  })

describe("names across state roots", () => {
  it("the same slug in two roots names different objects; two spellings of one root agree", () => {
    const a = bottleNames(rootA, "coder")
    const b = bottleNames(rootB, "coder")
    for (const k of ["agent", "bundle", "internalNetwork", "egressNetwork"] as const) assert.notStrictEqual(a[k], b[k])
    assert.match(a.agent, /^bottle-coder-[0-9a-f]{8}-agent$/)
    assert.deepStrictEqual(a.labels("agent"), { "bot-bottle.slug": "coder", "bot-bottle.root": a.rootId, "bot-bottle.role": "agent" })
    const link = path.join(tmp("bb-root-link-"), "via")
    fs.symlinkSync(rootA, link)
    assert.strictEqual(stateRootId(link), stateRootId(rootA), "through a symlink")
    assert.strictEqual(stateRootId(`${rootA}/`), stateRootId(rootA))
    // A root not created yet, below a symlink: the same id before and after it exists.
    const before = stateRootId(path.join(link, "later"))
    fs.mkdirSync(path.join(rootA, "later"))
    assert.strictEqual(stateRootId(path.join(rootA, "later")), before)
  })
})

describe("ls, stop and cleanup in one root", () => {
  it.effect("cleanup removes this root's orphans only: never another root's bottles, live or dead, nor unlabelled objects", () =>
    Effect.gen(function*() {
      yield* withBottle("shared")
      const removed = yield* cleanup({ dryRun: false })
      const orphan = bottleNames(rootA, "orphan")
      assert.sameMembers(removed, [`container ${orphan.agent}`, `container ${orphan.bundle}`, `network ${orphan.internalNetwork}`, `network ${orphan.egressNetwork}`])
      assert.sameMembers(yield* released, [orphan.agent, orphan.bundle, orphan.internalNetwork, orphan.egressNetwork])
    }).pipe(Effect.provide(layers(rootA))))

  it.effect("ls shows this root's bottles with this root's objects: another root's running namesake does not make ours running", () =>
    Effect.gen(function*() {
      yield* withBottle("shared")
      const rows = yield* listBottles()
      assert.deepStrictEqual(rows.map((r) => [r.slug, r.status, r.containers.length]), [["shared", "stopped", 0]])
    }).pipe(Effect.provide(layers(rootA))))

  it.effect("ls in the other root sees its own bottle running", () =>
    Effect.gen(function*() {
      yield* withBottle("shared")
      const rows = yield* listBottles()
      assert.deepStrictEqual(rows.map((r) => [r.slug, r.status]), [["shared", "running"]])
    }).pipe(Effect.provide(layers(rootB))))

  it.effect("stop removes this root's objects of the slug (and an old version's unlabelled ones), never another root's", () =>
    Effect.gen(function*() {
      yield* withBottle("shared")
      yield* withBottle("old")
      yield* teardown("shared", { purge: false, env: {} })
      assert.deepStrictEqual(yield* released, [], "root B's `shared` is untouched")
      yield* teardown("old", { purge: false, env: {} })
      assert.sameMembers(yield* released, ["bottle-old-agent", "bottle-old-bundle", "bottle-old-int", "bottle-old-ext"])
    }).pipe(Effect.provide(layers(rootA))))
})
