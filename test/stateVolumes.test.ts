/**
 * The bottle's kept state on the docker backend (fake engine): a first launch makes the home
 * and an overlay workspace over the cwd (no copy), a resume reuses them and makes nothing, a
 * failed first sandbox removes what it made (in reverse), a cwd the overlay's option string
 * cannot hold is copied once instead; `stop` keeps the volumes, `stop --purge` removes them.
 */
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Exit, Layer, Ref } from "effect"
import * as DockerBackend from "../src/layers/DockerBackend.ts"
import { teardown } from "../src/programs/bottles.ts"
import { namesIn, stateRootId } from "../src/programs/bottleNames.ts"
import { parseManifest } from "../src/programs/loadManifest.ts"
import { defaultSlug, prepare } from "../src/programs/prepare.ts"
import { Backend, type SandboxSpec } from "../src/services/Backend.ts"
import type { ContainerSpec, LabelledResource, VolumeSpec } from "../src/services/Docker.ts"
import { StateStore } from "../src/services/StateStore.ts"
import * as FakeDocker from "./layers/Docker.ts"
import * as FakeGitHost from "./layers/GitHost.ts"
import { Recorder } from "./layers/Recorder.ts"
import * as RecordedState from "./layers/StateStore.ts"

const manifestYaml = `
agents:
  dev: { bottle: box }
bottles:
  box:
    workspace: { copy_cwd: true, workdir: /workspace }
`

const layers = (docker: FakeDocker.FakeDockerOptions, root = fs.mkdtempSync(path.join(os.tmpdir(), "bb-state-"))) =>
  Layer.mergeAll(DockerBackend.layerWith.pipe(Layer.provide(FakeDocker.layerTest(docker))), FakeGitHost.layerTest()).pipe(
    Layer.provideMerge(RecordedState.layerRecorded(root)),
    Layer.provideMerge(Recorder.layer)
  )

/** A cwd, a state root, and the names the bottle of that cwd gets there. */
const setup = () => {
  const cwd = fs.mkdtempSync(path.join(os.tmpdir(), "bb-vol-"))
  const root = fs.mkdtempSync(path.join(os.tmpdir(), "bb-state-"))
  const slug = defaultSlug("dev", cwd)
  return { cwd, root, slug, names: namesIn(stateRootId(root), slug) }
}

const planIn = (cwd: string) =>
  Effect.gen(function*() {
    const loaded = yield* parseManifest(manifestYaml, path.join(cwd, "bottle.yaml"), cwd)
    return yield* prepare({ loaded, agent: "dev", cwd, env: {} })
  })

const spec = (seed: string | undefined): SandboxSpec => ({
  image: "agent:1",
  provisionDir: "/tmp/provision",
  provisionTarget: "/run/bottle/agent",
  mounts: [],
  workspace: { seed },
  provision: ["true"]
})

const namesOf = (slug: string) => Effect.map(StateStore, (s) => namesIn(stateRootId(s.root), slug))
const events = Effect.flatMap(Recorder, (rec) => Ref.get(rec.events))
const volumeEvents = Effect.map(events, (es) => es.filter((e) => e.includes(" volume ")))

describe("the bottle's kept state (docker backend)", () => {
  const started: Array<ContainerSpec> = []
  const volumeSpecs: Array<VolumeSpec> = []
  it.effect("first launch: home, and the workspace as an overlay of the cwd (upper and scratch are engine volumes); nothing is copied", () =>
    Effect.gen(function*() {
      const cwd = fs.mkdtempSync(path.join(os.tmpdir(), "bb-vol-"))
      const plan = yield* planIn(cwd)
      const n = yield* namesOf(plan.slug)
      yield* Effect.scoped(Effect.flatMap(Backend, (b) => b.sandbox(plan, { complete: Effect.void }, spec(cwd))))
      assert.sameMembers(volumeSpecs.map((v) => v.name), [n.volumes.home, n.volumes.upper, n.volumes.scratch, n.volumes.workspace])
      const overlay = volumeSpecs.find((v) => v.name === n.volumes.workspace)!
      assert.deepStrictEqual(overlay.options, {
        type: "overlay",
        device: "overlay",
        o: `lowerdir=${fs.realpathSync(cwd)},upperdir=/var/lib/docker/volumes/${n.volumes.upper}/_data,workdir=/var/lib/docker/volumes/${n.volumes.scratch}/_data,metacopy=on`
      })
      assert.strictEqual(overlay.labels["bot-bottle.role"], "workspace")
      const agent = started.find((c) => c.name === n.agent)!
      assert.deepInclude(agent.mounts ?? [], { source: n.volumes.home, target: "/home/node", readonly: false, volume: true })
      assert.deepInclude(agent.mounts ?? [], { source: n.volumes.workspace, target: "/workspace", readonly: false, volume: true, nocopy: true })
      assert.isFalse((yield* events).some((e) => e.startsWith("copy ")), "the cwd is not copied")
      assert.isFalse((yield* events).some((e) => e.startsWith("release volume")), "a successful sandbox keeps its volumes when its scope closes")
    }).pipe(Effect.provide(layers({ started, volumeSpecs }))))

  const resumed = setup()
  it.effect("resume: the volumes are found again; nothing is made, nothing copied", () =>
    Effect.gen(function*() {
      const plan = yield* planIn(resumed.cwd)
      yield* Effect.scoped(Effect.flatMap(Backend, (b) => b.sandbox(plan, { complete: Effect.void }, spec(resumed.cwd))))
      assert.deepStrictEqual(yield* volumeEvents, [])
      assert.isFalse((yield* events).some((e) => e.startsWith("copy ")))
    }).pipe(Effect.provide(layers({ volumes: Object.values(resumed.names.volumes) }, resumed.root))))

  it.effect("a first sandbox that fails (provisioning) removes the volumes it made, in reverse", () =>
    Effect.gen(function*() {
      const cwd = fs.mkdtempSync(path.join(os.tmpdir(), "bb-vol-"))
      const plan = yield* planIn(cwd)
      const exit = yield* Effect.exit(Effect.scoped(Effect.flatMap(Backend, (b) => b.sandbox(plan, { complete: Effect.void }, spec(cwd)))))
      assert.isTrue(Exit.isFailure(exit))
      const vs = yield* volumeEvents
      const made = vs.filter((e) => e.startsWith("acquire"))
      assert.strictEqual(made.length, 4)
      assert.deepStrictEqual(vs.filter((e) => e.startsWith("release")), [...made].reverse().map((e) => e.replace("acquire", "release")))
    }).pipe(Effect.provide(layers({ provisionExitCode: 1 }))))

  it.effect("a cwd whose path the overlay's option string cannot hold (a comma) is copied, once, into a plain volume", () =>
    Effect.gen(function*() {
      const cwd = fs.mkdtempSync(path.join(os.tmpdir(), "bb-vol,comma-"))
      const plan = yield* planIn(cwd)
      const n = yield* namesOf(plan.slug)
      yield* Effect.scoped(Effect.flatMap(Backend, (b) => b.sandbox(plan, { complete: Effect.void }, spec(cwd))))
      assert.deepStrictEqual((yield* volumeEvents).sort(), [`acquire volume ${n.volumes.home}`, `acquire volume ${n.volumes.workspace}`].sort())
      assert.include(yield* events, `copy ${n.agent}`)
    }).pipe(Effect.provide(layers({}))))
})

describe("stop and the kept state", () => {
  const SLUG = "dev-abc123"
  const resources = (rootId: string): ReadonlyArray<LabelledResource> => {
    const n = namesIn(rootId, SLUG)
    return [
      { kind: "container", id: "c1", name: n.agent, slug: SLUG, root: rootId, state: "running" },
      { kind: "network", id: "n1", name: n.internalNetwork, slug: SLUG, root: rootId },
      { kind: "volume", id: n.volumes.home, name: n.volumes.home, slug: SLUG, root: rootId },
      { kind: "volume", id: n.volumes.workspace, name: n.volumes.workspace, slug: SLUG, root: rootId }
    ]
  }
  const run = (purge: boolean) => {
    const root = fs.mkdtempSync(path.join(os.tmpdir(), "bb-state-"))
    return Effect.gen(function*() {
      const state = yield* StateStore
      fs.mkdirSync(state.bottleDir(SLUG), { recursive: true, mode: 0o700 })
      yield* teardown(SLUG, { purge, env: {} })
      return { removed: (yield* events).filter((e) => e.startsWith("release")), exists: yield* state.exists(SLUG) }
    }).pipe(Effect.provide(layers({ labelled: resources(stateRootId(root)) }, root)))
  }

  it.effect("plain stop removes containers and networks, keeps the volumes (and the state) for resume", () =>
    Effect.gen(function*() {
      const r = yield* run(false)
      assert.isFalse(r.removed.some((e) => e.startsWith("release volume")), r.removed.join(", "))
      assert.isTrue(r.removed.some((e) => e.startsWith("release container")))
      assert.isTrue(r.exists)
    }))

  it.effect("stop --purge removes the volumes too, after the containers and networks", () =>
    Effect.gen(function*() {
      const r = yield* run(true)
      const kinds = r.removed.map((e) => e.split(" ")[1])
      assert.deepStrictEqual(kinds, ["container", "network", "volume", "volume"])
      assert.isFalse(r.exists)
    }))
})
