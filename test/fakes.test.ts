/**
 * The fakes themselves: a fake that records the wrong order, or quietly answers a call nobody
 * stubbed, would make every program test built on it lie.
 */
import { assert, describe, it } from "@effect/vitest"
import { Cause, Effect, Exit, Fiber, Layer, Ref } from "effect"
import { Backend } from "../src/services/Backend.ts"
import { Cache } from "../src/services/Cache.ts"
import { LoopbackAlias } from "../src/services/LoopbackAlias.ts"
import { Registry } from "../src/services/Registry.ts"
import { Smolvm, type MachineSpec } from "../src/services/Smolvm.ts"
import * as FakeBackend from "./layers/Backend.ts"
import * as FakeCache from "./layers/Cache.ts"
import * as FakeLoopbackAlias from "./layers/LoopbackAlias.ts"
import { Recorder } from "./layers/Recorder.ts"
import * as FakeRegistry from "./layers/Registry.ts"
import * as FakeSmolvm from "./layers/Smolvm.ts"

const withRecorder = <A, E, R>(layer: Layer.Layer<A, E, R>) => layer.pipe(Layer.provideMerge(Recorder.layer))
const events = Effect.flatMap(Recorder, (rec) => Ref.get(rec.events))

/** The effect died with a defect whose message contains `text`. */
const assertDies = <A, E>(exit: Exit.Exit<A, E>, text: string) => {
  assert.isTrue(Exit.isFailure(exit), "expected a failure")
  if (Exit.isFailure(exit)) {
    assert.isTrue(Cause.hasDies(exit.cause), `expected a defect, got ${Cause.pretty(exit.cause)}`)
    assert.include(String(Cause.squash(exit.cause)), text)
  }
}

const spec = (name: string): MachineSpec => ({ name, from: "/x.smolmachine", env: {}, labels: {}, allowCidrs: ["172.30.5.2/32"] })

describe("fake Smolvm", () => {
  it.effect("machines are released in reverse order when the scope closes", () =>
    Effect.gen(function*() {
      const smolvm = yield* Smolvm
      yield* Effect.scoped(Effect.gen(function*() {
        yield* smolvm.machine(spec("a"))
        yield* smolvm.machine(spec("b"))
        assert.deepStrictEqual(yield* events, ["acquire machine a", "acquire machine b"])
      }))
      assert.deepStrictEqual(yield* events, ["acquire machine a", "acquire machine b", "release machine b", "release machine a"])
    }).pipe(Effect.provide(withRecorder(FakeSmolvm.layerTest()))))

  it.effect("a failing release is logged, not raised, and later releases still run", () =>
    Effect.gen(function*() {
      const smolvm = yield* Smolvm
      const exit = yield* Effect.exit(Effect.scoped(Effect.all([smolvm.machine(spec("a")), smolvm.machine(spec("b"))])))
      assert.isTrue(Exit.isSuccess(exit))
      assert.deepStrictEqual((yield* events).filter((e) => e.startsWith("release")), ["release machine b", "release machine a"])
    }).pipe(Effect.provide(withRecorder(FakeSmolvm.layerTest({ failRelease: ["b"] })))))

  it.effect("unstubbed methods die loudly; stubbed ones answer and are recorded", () =>
    Effect.gen(function*() {
      const smolvm = yield* Smolvm
      assertDies(yield* Effect.exit(smolvm.version), "fake Smolvm: unexpected call to version")
      assertDies(yield* Effect.exit(smolvm.list), "unexpected call to list")
      assertDies(yield* Effect.exit(smolvm.packCreate("img", "/out")), "unexpected call to packCreate")
      assertDies(yield* Effect.exit(smolvm.remove("a")), "unexpected call to remove")
      const r = yield* smolvm.exec("a", ["true"], { env: {} })
      assert.deepStrictEqual(r, { stdout: "ok", stderr: "", exitCode: 0 })
      assert.deepStrictEqual(yield* events, ["exec a true"])
    }).pipe(Effect.provide(withRecorder(FakeSmolvm.layerTest({ exec: () => Effect.succeed({ stdout: "ok", stderr: "", exitCode: 0 }) })))))

  it.effect("an interrupt while a machine is starting releases the machines started before", () =>
    Effect.gen(function*() {
      const smolvm = yield* Smolvm
      const rec = yield* Recorder
      yield* Ref.set(rec.blockOn, "machine b")
      const fiber = yield* Effect.forkChild(Effect.scoped(Effect.all([smolvm.machine(spec("a")), smolvm.machine(spec("b"))])))
      yield* Effect.gen(function*() {
        while (!(yield* events).includes("blocked machine b")) yield* Effect.yieldNow
      }).pipe(Effect.timeout("5 seconds"))
      yield* Fiber.interrupt(fiber)
      assert.deepStrictEqual(yield* events, ["acquire machine a", "blocked machine b", "release machine a"])
    }).pipe(Effect.provide(withRecorder(FakeSmolvm.layerTest()))))
})

describe("fake Registry", () => {
  it.effect("registries are released in reverse order; pushArchive dies unless stubbed", () =>
    Effect.gen(function*() {
      const registry = yield* Registry
      const first = yield* Effect.scoped(Effect.gen(function*() {
        const r1 = yield* registry.ephemeral("s1")
        yield* registry.ephemeral("s2")
        assertDies(yield* Effect.exit(registry.pushArchive(r1, "/img.tar", "agent:1")), "fake Registry: unexpected call to pushArchive")
        return r1
      }))
      assert.strictEqual(first.hostAddress, "localhost:5000")
      assert.deepStrictEqual(yield* events, ["acquire registry s1", "acquire registry s2", "release registry s2", "release registry s1"])
    }).pipe(Effect.provide(withRecorder(FakeRegistry.layerTest()))))

  it.effect("a stubbed push is recorded; failStart acquires nothing", () =>
    Effect.gen(function*() {
      const registry = yield* Registry
      const reg = { hostAddress: "localhost:1", networkAddress: "r:5000", network: "r" }
      assert.strictEqual(yield* registry.pushArchive(reg, "/img.tar", "agent:1"), "localhost:1/agent:1")
      const err = yield* Effect.flip(Effect.scoped(registry.ephemeral("s1")))
      assert.strictEqual(err.step, "start")
      assert.deepStrictEqual(yield* events, ["push agent:1"])
    }).pipe(Effect.provide(withRecorder(FakeRegistry.layerTest({
      failStart: true,
      pushArchive: (r, _tar, repoTag) => Effect.succeed(`${r.hostAddress}/${repoTag}`)
    })))))
})

describe("fake LoopbackAlias", () => {
  it.effect("distinct aliases per bottle, removed in reverse order", () =>
    Effect.gen(function*() {
      const loopback = yield* LoopbackAlias
      const addresses = yield* Effect.scoped(Effect.all([loopback.alias("a"), loopback.alias("b")]))
      assert.deepStrictEqual(addresses, ["127.0.0.2", "127.0.0.3"])
      assert.deepStrictEqual(yield* events, ["acquire alias 127.0.0.2", "acquire alias 127.0.0.3", "release alias 127.0.0.3", "release alias 127.0.0.2"])
    }).pipe(Effect.provide(withRecorder(FakeLoopbackAlias.layerTest()))))

  it.effect("an exhausted pool fails with a typed error and records nothing", () =>
    Effect.gen(function*() {
      const loopback = yield* LoopbackAlias
      const err = yield* Effect.flip(Effect.scoped(loopback.alias("a")))
      assert.strictEqual(err._tag, "LoopbackAliasError")
      assert.deepStrictEqual(yield* events, [])
    }).pipe(Effect.provide(withRecorder(FakeLoopbackAlias.layerTest({ exhausted: true })))))
})

describe("fake Cache", () => {
  it.effect("miss, put, hit, remove, miss — each recorded", () =>
    Effect.gen(function*() {
      const cache = yield* Cache
      assert.isUndefined(yield* cache.get("smolmachine", "sha256:abc"))
      const tmp = yield* cache.tempPath("smolmachine")
      assert.notStrictEqual(tmp, yield* cache.tempPath("smolmachine"), "temp paths are fresh")
      const stored = yield* cache.put("smolmachine", "sha256:abc", tmp)
      assert.strictEqual(yield* cache.get("smolmachine", "sha256:abc"), stored)
      assert.strictEqual(yield* cache.get("smolmachine", "sha256:old"), `${FakeCache.FAKE_CACHE_ROOT}/smolmachine/sha256:old`, "preset entry")
      yield* cache.remove("smolmachine", "sha256:abc")
      assert.isUndefined(yield* cache.get("smolmachine", "sha256:abc"))
      assert.deepStrictEqual(yield* events, [
        "cache miss smolmachine/sha256:abc",
        `cache put smolmachine/sha256:abc from ${tmp}`,
        "cache hit smolmachine/sha256:abc",
        "cache hit smolmachine/sha256:old",
        "cache remove smolmachine/sha256:abc",
        "cache miss smolmachine/sha256:abc"
      ])
    }).pipe(Effect.provide(withRecorder(FakeCache.layerTest({ entries: ["smolmachine/sha256:old"] })))))

  it.effect("failPut fails with CacheError and stores nothing", () =>
    Effect.gen(function*() {
      const cache = yield* Cache
      const err = yield* Effect.flip(cache.put("ns", "k", "/tmp/x"))
      assert.strictEqual(err._tag, "CacheError")
      assert.isUndefined(yield* cache.get("ns", "k"))
    }).pipe(Effect.provide(withRecorder(FakeCache.layerTest({ failPut: true })))))
})

describe("fake Backend", () => {
  it.effect("what a test did not stub dies loudly; a stub answers", () =>
    Effect.gen(function*() {
      const backend = yield* Backend
      assertDies(yield* Effect.exit(backend.inspect()), "fake Backend: unexpected call to inspect")
      assertDies(yield* Effect.exit(backend.remove("x", { volumes: false })), "fake Backend: unexpected call to remove")
      assertDies(yield* Effect.exit(backend.logs("x", { follow: false })), "fake Backend: unexpected call to logs")
    }).pipe(Effect.provide(withRecorder(FakeBackend.layerTest()))))

  it.effect("scoped parts are released in reverse order; a release told to fail dies", () =>
    Effect.gen(function*() {
      const backend = yield* Backend
      const plan = { slug: "s" } as Parameters<typeof backend.network>[0]
      const exit = yield* Effect.exit(Effect.scoped(Effect.gen(function*() {
        const net = yield* backend.network(plan)
        yield* backend.bundle(plan, net, { image: "b", stateDir: "/s", secretEnv: {}, readyTimeoutMs: 1 })
      })))
      assertDies(exit, "release network s: boom")
      assert.deepStrictEqual(yield* events, ["acquire network s", "acquire bundle s", "release bundle s", "release network s"])
    }).pipe(Effect.provide(withRecorder(FakeBackend.layerTest({ failRelease: ["network"] })))))
})
