/**
 * Subnet leases against the engine, on the fake Docker (whose engine has the networks a test
 * gives it, and refuses an overlapping subnet the way the live layer reports it) and the real
 * StateStore: subnets the engine uses are skipped, a subnet taken between the look and the
 * create is given back for the next one, a full engine is Exhausted with nothing left behind,
 * and launch writes the subnet it really got into the plan and the agent's proxy address.
 */
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Exit, Layer, Ref } from "effect"
import { launch } from "../src/programs/launch.ts"
import { parseManifest } from "../src/programs/loadManifest.ts"
import { prepare } from "../src/programs/prepare.ts"
import { leaseSubnetAndNetwork, poolIndicesUsed } from "../src/programs/subnetLease.ts"
import { BottlePlan } from "../src/schema/BottlePlan.ts"
import { StateStore } from "../src/services/StateStore.ts"
import * as FakeDocker from "./layers/Docker.ts"
import * as FakeGitHost from "./layers/GitHost.ts"
import { Recorder } from "./layers/Recorder.ts"
import * as RecordedState from "./layers/StateStore.ts"

const layers = (docker: FakeDocker.FakeDockerOptions = {}) =>
  Layer.mergeAll(FakeDocker.layerTest(docker), FakeGitHost.layerTest(), RecordedState.layerRecorded()).pipe(Layer.provideMerge(Recorder.layer))

const lease = (slug = "alpha") =>
  leaseSubnetAndNetwork(slug, (s) => ({ name: `net-${slug}`, internal: true, subnet: s.subnet, ipRange: s.ipRange, labels: {} }))

const networkEvents = Effect.gen(function*() {
  return (yield* Ref.get((yield* Recorder).events)).filter((e) => / network | lease /.test(e))
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

describe("leaseSubnetAndNetwork", () => {
  it.effect("skips every subnet a network on the engine already uses (anyone's), without trying it", () =>
    Effect.gen(function*() {
      const { lease: l, network } = yield* lease()
      assert.strictEqual(l.index, 2)
      assert.strictEqual(network.name, "net-alpha")
      assert.deepStrictEqual(yield* networkEvents, ["acquire lease subnet#2", "acquire network net-alpha"], "no refused attempt")
      const state = yield* StateStore
      assert.deepStrictEqual((yield* state.leasesOf("alpha")).map((x) => x.index), [2])
    }).pipe(
      Effect.scoped,
      Effect.provide(layers({ engineNetworks: [{ name: "someone-elses", subnets: ["10.213.0.0/24"] }, { name: "other-root", subnets: ["10.213.1.0/24"] }] }))
    ))

  it.effect("a subnet taken between the look and the create is given back, and the next one is used", () =>
    Effect.gen(function*() {
      const state = yield* StateStore
      const held = yield* Effect.scoped(Effect.gen(function*() {
        const { lease: l } = yield* lease()
        assert.strictEqual(l.index, 2)
        assert.deepStrictEqual(yield* networkEvents, [
          "acquire lease subnet#0",
          "refused network net-alpha 10.213.0.0/24",
          "acquire lease subnet#1",
          "refused network net-alpha 10.213.1.0/24",
          "acquire lease subnet#2",
          "acquire network net-alpha"
        ])
        return yield* state.allLeases
      }))
      assert.deepStrictEqual(held.map((x) => `${x.index}=${x.slug}`), ["2=alpha"], "only the subnet it got is held")
      assert.deepStrictEqual(yield* state.allLeases, [], "and it is released with the scope")
      assert.include(yield* networkEvents, "release network net-alpha")
    }).pipe(Effect.provide(layers({ takenMeanwhile: ["10.213.0.0/24", "10.213.1.0/24"] }))))

  it.effect("an engine whose networks cover the whole pool: Exhausted, and no lease or network left", () =>
    Effect.gen(function*() {
      const exit = yield* Effect.exit(Effect.scoped(lease()))
      assert.isTrue(Exit.isFailure(exit))
      const err = yield* Effect.flip(Effect.scoped(lease()))
      assert.strictEqual(err._tag, "StateError")
      assert.include(err.message, "no free subnet")
      assert.deepStrictEqual(yield* (yield* StateStore).allLeases, [])
      assert.isFalse((yield* networkEvents).some((e) => e.startsWith("acquire network")))
    }).pipe(Effect.provide(layers({ engineNetworks: [{ name: "wide", subnets: ["10.213.0.0/16"] }] }))))

  it.effect("two bottles on one crowded engine get distinct free subnets", () =>
    Effect.gen(function*() {
      const a = yield* lease("alpha")
      const b = yield* lease("beta")
      assert.deepStrictEqual([a.lease.index, b.lease.index], [1, 3])
    }).pipe(Effect.scoped, Effect.provide(layers({ engineNetworks: [{ name: "x", subnets: ["10.213.0.0/24", "10.213.2.0/24"] }] }))))
})

describe("launch on a crowded engine", () => {
  it.effect("the plan, the bundle's address and the agent's proxy follow the subnet really leased", () =>
    Effect.gen(function*() {
      const cwd = fs.mkdtempSync(path.join(os.tmpdir(), "bb-cwd-"))
      const loaded = yield* parseManifest("agents:\n  coder:\n    bottle: box\nbottles:\n  box: {}\n", path.join(cwd, "bottle.yaml"), cwd)
      const plan = yield* prepare({ loaded, agent: "coder", cwd, env: {} })
      assert.strictEqual(plan.network.subnet, "10.213.0.0/24", "the plan only peeked at the lease table")
      const imageDir = fs.mkdtempSync(path.join(os.tmpdir(), "bb-img-"))
      fs.writeFileSync(path.join(imageDir, "Dockerfile"), "FROM scratch\n")
      const source = (name: string) => ({ name, files: [{ at: "Dockerfile", from: path.join(imageDir, "Dockerfile") }] })
      yield* launch(plan, { mode: "detach", fresh: true, env: {}, images: { agent: source("agent"), bundle: source("bundle") } })
      const saved = yield* (yield* StateStore).readJson(plan.slug, "plan.json", BottlePlan)
      assert.deepStrictEqual(saved.network, { ...plan.network, subnetIndex: 1, subnet: "10.213.1.0/24", bundleIp: "10.213.1.2" })
      assert.strictEqual(saved.env["HTTPS_PROXY"], "http://10.213.1.2:3128")
    }).pipe(Effect.provide(layers({ engineNetworks: [{ name: "someone-elses", subnets: ["10.213.0.0/24"] }] }))))
})
