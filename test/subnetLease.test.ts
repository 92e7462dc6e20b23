/**
 * Subnet leases against the substrate. On the fake Backend (its substrate has the subnets a
 * test gives it, and refuses a network on a subnet taken since the look) with the real
 * StateStore: subnets in use are skipped without a try, a subnet taken between the look and
 * the network is given back for the next one, a full substrate is Exhausted with nothing left
 * behind, and the plan, the bundle's address and the agent's proxy follow the subnet really
 * obtained. On the docker backend over a fake engine: the engine's networks (anyone's) are what
 * is in use, and the engine's overlap refusal is what makes launch move on.
 */
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Exit, Layer, Ref } from "effect"
import * as DockerBackend from "../src/layers/DockerBackend.ts"
import * as ProcessRunnerLive from "../src/layers/ProcessRunner.ts"
import { launch, type LaunchOptions } from "../src/programs/launch.ts"
import { parseManifest } from "../src/programs/loadManifest.ts"
import { prepare } from "../src/programs/prepare.ts"
import { poolIndicesUsed } from "../src/programs/subnetLease.ts"
import { BottlePlan } from "../src/schema/BottlePlan.ts"
import { StateStore } from "../src/services/StateStore.ts"
import * as FakeBackend from "./layers/Backend.ts"
import * as FakeDocker from "./layers/Docker.ts"
import * as FakeGitHost from "./layers/GitHost.ts"
import { Recorder } from "./layers/Recorder.ts"
import * as RecordedState from "./layers/StateStore.ts"

const fakeLayers = (backend: FakeBackend.FakeBackendOptions) =>
  Layer.mergeAll(FakeBackend.layerTest(backend), FakeGitHost.layerTest(), RecordedState.layerRecorded(), ProcessRunnerLive.layer).pipe(
    Layer.provideMerge(Recorder.layer)
  )

const dockerLayers = (docker: FakeDocker.FakeDockerOptions) =>
  Layer.mergeAll(DockerBackend.layerWith.pipe(Layer.provide(FakeDocker.layerTest(docker))), FakeGitHost.layerTest(), ProcessRunnerLive.layer).pipe(
    Layer.provideMerge(RecordedState.layerRecorded()),
    Layer.provideMerge(Recorder.layer)
  )

const imageDir = fs.mkdtempSync(path.join(os.tmpdir(), "bb-img-"))
fs.writeFileSync(path.join(imageDir, "Dockerfile"), "FROM scratch\n")
const source = (name: string) => ({ name, files: [{ at: "Dockerfile", from: path.join(imageDir, "Dockerfile") }] })
const opts = (mode: "attach" | "detach"): LaunchOptions => ({ mode, fresh: true, env: {}, images: { agent: source("agent"), bundle: source("bundle") } })

const makePlan = (agent = "coder") =>
  Effect.gen(function*() {
    const cwd = fs.mkdtempSync(path.join(os.tmpdir(), "bb-cwd-"))
    const loaded = yield* parseManifest(
      "agents:\n  coder:\n    bottle: box\n  reviewer:\n    bottle: box\nbottles:\n  box: {}\n",
      path.join(cwd, "bottle.yaml"),
      cwd
    )
    return yield* prepare({ loaded, agent, cwd, env: {} })
  })

const networkEvents = Effect.gen(function*() {
  return (yield* Ref.get((yield* Recorder).events)).filter((e) => / network | lease /.test(e))
})

const saved = (slug: string) =>
  Effect.gen(function*() {
    return yield* (yield* StateStore).readJson(slug, "plan.json", BottlePlan)
  })

describe("poolIndicesUsed", () => {
  it("maps the engine's subnets onto the pool's /24s", () => {
    assert.deepStrictEqual([...poolIndicesUsed(["10.213.0.0/24", "10.213.7.128/25", "172.17.0.0/16", "fd00::/64", "junk"])], [0, 7])
    assert.strictEqual(poolIndicesUsed(["10.213.0.0/16"]).size, 256, "a /16 over the pool takes all of it")
    assert.strictEqual(poolIndicesUsed(["10.0.0.0/8"]).size, 256)
    assert.deepStrictEqual([...poolIndicesUsed(["10.213.2.0/23"])], [2, 3])
    // An address with host bits set still names its whole network.
    assert.deepStrictEqual([...poolIndicesUsed(["10.213.9.77/24"])], [9])
    assert.deepStrictEqual([...poolIndicesUsed(["10.214.0.0/24", "10.212.255.0/24"])], [])
  })
})

describe("launch leases a subnet the substrate does not use", () => {
  it.effect("skips every subnet a network on the substrate already uses (anyone's), without trying it", () =>
    Effect.gen(function*() {
      const plan = yield* makePlan()
      yield* launch(plan, opts("detach"))
      assert.deepStrictEqual(yield* networkEvents, ["acquire lease subnet#2", `acquire network ${plan.slug}`], "no refused attempt")
      assert.deepStrictEqual((yield* (yield* StateStore).leasesOf(plan.slug)).map((x) => x.index), [2])
      assert.strictEqual((yield* saved(plan.slug)).network.subnet, "10.213.2.0/24")
    }).pipe(Effect.provide(fakeLayers({ addressesInUse: ["10.213.0.0/24", "10.213.1.0/24"] }))))

  it.effect("a subnet taken between the look and the network is given back, and the next one is used; the plan follows", () =>
    Effect.gen(function*() {
      const plan = yield* makePlan()
      yield* launch(plan, opts("detach"))
      assert.deepStrictEqual(yield* networkEvents, [
        "acquire lease subnet#0",
        `refused network ${plan.slug} 10.213.0.0/24`,
        "acquire lease subnet#1",
        `refused network ${plan.slug} 10.213.1.0/24`,
        "acquire lease subnet#2",
        `acquire network ${plan.slug}`
      ])
      const state = yield* StateStore
      assert.deepStrictEqual((yield* state.allLeases).map((x) => `${x.index}=${x.slug}`), [`2=${plan.slug}`], "only the subnet it got is held")
      const p = yield* saved(plan.slug)
      assert.deepStrictEqual(p.network, { subnetIndex: 2, subnet: "10.213.2.0/24", bundleIp: "10.213.2.2" })
      assert.strictEqual(p.env["HTTPS_PROXY"], "http://10.213.2.2:3128")
    }).pipe(Effect.provide(fakeLayers({ takenMeanwhile: ["10.213.0.0/24", "10.213.1.0/24"] }))))

  it.effect("after a move, the subnet it got is released with the rest when the session ends", () =>
    Effect.gen(function*() {
      const plan = yield* makePlan()
      yield* launch(plan, opts("attach"))
      assert.deepStrictEqual(yield* (yield* StateStore).allLeases, [])
      assert.include(yield* networkEvents, `release network ${plan.slug}`)
    }).pipe(Effect.provide(fakeLayers({ takenMeanwhile: ["10.213.0.0/24"] }))))

  it.effect("a backend whose kept state is bound to the address (a stopped microVM): the lease outlives the session; a resume gets it back, or is refused naming the subnet, never moved", () => {
    const taken: Array<string> = []
    return Effect.gen(function*() {
      const plan = yield* makePlan()
      const state = yield* StateStore
      const held = Effect.map(state.allLeases, (ls) => ls.map((x) => `${x.pool}#${x.index}=${x.slug}`))
      yield* launch(plan, opts("attach"))
      assert.deepStrictEqual(yield* held, [`subnet#0=${plan.slug}`], "kept when the session ended")
      // Something outside this state root takes that subnet while the bottle is stopped.
      taken.push("10.213.0.0/24")
      const err = yield* Effect.flip(launch(plan, { ...opts("detach"), fresh: false }))
      assert.include(err.message, "subnet 10.213.0.0/24 is taken")
      assert.include(err.message, `bottle stop --purge ${plan.slug}`)
      assert.deepStrictEqual(yield* held, [`subnet#0=${plan.slug}`], "the lease did not move off the machine's address")
      // Freed again: the resume is on the same subnet.
      taken.length = 0
      yield* launch(plan, { ...opts("detach"), fresh: false })
      assert.strictEqual((yield* saved(plan.slug)).network.subnet, "10.213.0.0/24")
    }).pipe(Effect.provide(fakeLayers({ takenMeanwhile: taken, stub: { keepsAddress: () => Effect.succeed(true) } })))
  })

  it.effect("a substrate whose networks cover the whole pool: Exhausted, and no lease or network left", () =>
    Effect.gen(function*() {
      const plan = yield* makePlan()
      const exit = yield* Effect.exit(launch(plan, opts("detach")))
      assert.isTrue(Exit.isFailure(exit))
      const err = yield* Effect.flip(launch(plan, opts("detach")))
      assert.include(err.message, "no free subnet")
      assert.deepStrictEqual(yield* (yield* StateStore).allLeases, [])
      assert.isFalse((yield* networkEvents).some((e) => e.startsWith("acquire network")))
    }).pipe(Effect.provide(fakeLayers({ addressesInUse: ["10.213.0.0/16"] }))))

  it.effect("two bottles on one crowded substrate get distinct free subnets", () =>
    Effect.gen(function*() {
      const a = yield* makePlan("coder")
      const b = yield* makePlan("reviewer")
      yield* launch(a, opts("detach"))
      yield* launch(b, opts("detach"))
      assert.deepStrictEqual([(yield* saved(a.slug)).network.subnetIndex, (yield* saved(b.slug)).network.subnetIndex], [1, 3])
    }).pipe(Effect.provide(fakeLayers({ addressesInUse: ["10.213.0.0/24", "10.213.2.0/24"] }))))
})

describe("the docker backend on a crowded engine", () => {
  it.effect("the engine's networks (anyone's) are skipped; the plan, the bundle's address and the agent's proxy follow the subnet really leased", () =>
    Effect.gen(function*() {
      const plan = yield* makePlan()
      assert.strictEqual(plan.network.subnet, "10.213.0.0/24", "the plan only peeked at the lease table")
      yield* launch(plan, opts("detach"))
      const p = yield* saved(plan.slug)
      assert.deepStrictEqual(p.network, { ...plan.network, subnetIndex: 1, subnet: "10.213.1.0/24", bundleIp: "10.213.1.2" })
      assert.strictEqual(p.env["HTTPS_PROXY"], "http://10.213.1.2:3128")
    }).pipe(Effect.provide(dockerLayers({ engineNetworks: [{ name: "someone-elses", subnets: ["10.213.0.0/24"] }] }))))

  it.effect("an overlap the engine reports on create moves the bottle to the next free subnet", () =>
    Effect.gen(function*() {
      const plan = yield* makePlan()
      const rt = plan.runtime.backend === "docker" ? plan.runtime : undefined
      assert.isDefined(rt)
      yield* launch(plan, opts("detach"))
      assert.deepStrictEqual((yield* networkEvents).slice(0, 3), [
        "acquire lease subnet#0",
        `refused network ${rt!.internalNetwork} 10.213.0.0/24`,
        "acquire lease subnet#1"
      ])
      assert.include(yield* networkEvents, `acquire network ${rt!.internalNetwork}`)
      assert.strictEqual((yield* saved(plan.slug)).network.bundleIp, "10.213.1.2")
    }).pipe(Effect.provide(dockerLayers({ takenMeanwhile: ["10.213.0.0/24"] }))))
})
