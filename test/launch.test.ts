/**
 * launch on fake layers: acquisition order, reverse-order release, release on interruption at
 * every acquisition step, revocation despite a failing release, and revocation failure as an
 * error.
 */
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Exit, Fiber, Layer, Ref } from "effect"
import { launch, type LaunchOptions } from "../src/programs/launch.ts"
import { parseManifest } from "../src/programs/loadManifest.ts"
import { prepare } from "../src/programs/prepare.ts"
import { StateStore } from "../src/services/StateStore.ts"
import * as FakeDocker from "./layers/Docker.ts"
import * as FakeGitHost from "./layers/GitHost.ts"
import { Recorder } from "./layers/Recorder.ts"
import * as RecordedState from "./layers/StateStore.ts"

const manifestYaml = `
agents:
  coder:
    bottle: box
    prompt: "Be careful."
bottles:
  box:
    egress:
      routes:
        - host: api.example.com
          auth: { token_env: EXAMPLE_TOKEN }
    git:
      upstreams:
        - name: origin
          url: git@github.com:acme/app.git
          deploy_key: { provider: github, repo: acme/app, token_env: GH_ADMIN_TOKEN }
`

const env = { EXAMPLE_TOKEN: "real-example-token", GH_ADMIN_TOKEN: "admin-token" }

const imageDir = fs.mkdtempSync(path.join(os.tmpdir(), "bb-img-"))
fs.writeFileSync(path.join(imageDir, "Dockerfile"), "FROM scratch\n")
const images = {
  agent: { name: "agent", files: [{ at: "Dockerfile", from: path.join(imageDir, "Dockerfile") }] },
  bundle: { name: "bundle", files: [{ at: "Dockerfile", from: path.join(imageDir, "Dockerfile") }] }
}

const layers = (docker: FakeDocker.FakeDockerOptions = {}, git: { failRevoke?: boolean } = {}) =>
  Layer.mergeAll(FakeDocker.layerTest(docker), FakeGitHost.layerTest(git), RecordedState.layerRecorded()).pipe(
    Layer.provideMerge(Recorder.layer)
  )

const makePlan = Effect.gen(function*() {
  const cwd = fs.mkdtempSync(path.join(os.tmpdir(), "bb-cwd-"))
  const loaded = yield* parseManifest(manifestYaml, path.join(cwd, "bottle.yaml"), cwd)
  return yield* prepare({ loaded, agent: "coder", cwd, env })
})

const opts = (mode: "attach" | "detach"): LaunchOptions => ({ mode, fresh: true, env, images })

const ACQUIRES = [
  "acquire state-dir",
  "acquire lease subnet#0",
  "acquire deploy-key acme/app#100",
  "acquire network bottle-SLUG-int",
  "acquire network bottle-SLUG-ext",
  "acquire container bottle-SLUG-bundle",
  "acquire container bottle-SLUG-agent"
]
const releaseOf = (a: string) => a.replace(/^acquire /, "release ")
const normalize = (slug: string, events: ReadonlyArray<string>) =>
  events.map((e) => e.replaceAll(slug, "SLUG").replace(/^((?:acquire|release|keep) state-dir) SLUG$/, "$1"))

describe("launch", () => {
  it.effect("attach: acquires in dependency order and releases everything in reverse", () =>
    Effect.gen(function*() {
      const plan = yield* makePlan
      const result = yield* launch(plan, opts("attach"))
      assert.strictEqual(result.exitCode, 0)
      const events = normalize(plan.slug, yield* Ref.get((yield* Recorder).events))
      const acquires = events.filter((e) => e.startsWith("acquire"))
      assert.deepStrictEqual(acquires.slice(0, 3), ACQUIRES.slice(0, 3), "state, lease, keys, in that order")
      assert.sameMembers(acquires.slice(3, 5), ACQUIRES.slice(3, 5), "then both networks (side by side)")
      assert.sameMembers(acquires.slice(5), ACQUIRES.slice(5), "then the bundle and the agent (side by side)")
      const releases = events.filter((e) => e.startsWith("release") || e.startsWith("keep"))
      // The state dir is kept after a session (logs, resume); everything else is released, in reverse.
      assert.deepStrictEqual(releases, [...acquires.slice(1).reverse().map(releaseOf), "keep state-dir"])
      const attachAt = events.indexOf("attach bottle-SLUG-agent")
      assert.isTrue(attachAt > events.indexOf("acquire container bottle-SLUG-agent"), "attaches after the agent is up")
      assert.isTrue(attachAt < events.indexOf("release container bottle-SLUG-agent"), "releases after the session")
    }).pipe(Effect.provide(layers())))

  it.effect("detach: success keeps everything running (teardown is `bottle stop`)", () =>
    Effect.gen(function*() {
      const plan = yield* makePlan
      yield* launch(plan, opts("detach"))
      const events = yield* Ref.get((yield* Recorder).events)
      assert.deepStrictEqual(events.filter((e) => e.startsWith("release")), [])
      const state = yield* StateStore
      assert.isTrue(yield* state.exists(plan.slug))
      assert.deepStrictEqual((yield* state.leasesOf(plan.slug)).map((l) => l.pool), ["subnet"])
    }).pipe(Effect.provide(layers())))

  // Interrupt while step N is in progress: steps 0..N-1 were acquired and must all be released.
  const steps = ["state-dir", "lease subnet", "deploy-key acme/app", "network bottle-SLUG-int", "network bottle-SLUG-ext", "container bottle-SLUG-bundle", "container bottle-SLUG-agent", "exec bottle-SLUG-agent", "attach bottle-SLUG-agent"]
  steps.forEach((blockAt, n) => {
    it.effect(`interrupted at step ${n} (${blockAt}): everything acquired before is released, in reverse`, () =>
      Effect.gen(function*() {
        const plan = yield* makePlan
        const rec = yield* Recorder
        yield* Ref.set(rec.blockOn, blockAt.replaceAll("SLUG", plan.slug))
        const fiber = yield* Effect.forkChild(launch(plan, opts("attach")))
        // Wait until launch is parked inside the blocked step.
        yield* Effect.gen(function*() {
          for (;;) {
            const ev = yield* Ref.get(rec.events)
            if (ev.some((e) => e.startsWith("blocked "))) return
            yield* Effect.yieldNow
          }
        }).pipe(Effect.timeout("5 seconds"))
        const exit = yield* Fiber.interrupt(fiber).pipe(Effect.andThen(Fiber.await(fiber)))
        assert.isTrue(Exit.isFailure(exit) && Exit.hasInterrupts(exit), "launch ended by interruption")
        const events = normalize(plan.slug, yield* Ref.get(rec.events))
        const acquired = events.filter((e) => e.startsWith("acquire"))
        // Steps before the networks are sequential; the bundle and the agent start side by
        // side, so blocking one may still see the other acquired.
        const sequential = Math.min(n, 3)
        assert.deepStrictEqual(acquired.slice(0, sequential), ACQUIRES.slice(0, sequential))
        assert.isTrue(acquired.every((a) => ACQUIRES.includes(a)), acquired.join(", "))
        if (n < 3) assert.strictEqual(acquired.length, n, "nothing beyond the blocked sequential step")
        const released = events.filter((e) => e.startsWith("release"))
        assert.deepStrictEqual(released, [...acquired].reverse().map(releaseOf))
        const state = yield* StateStore
        assert.isFalse(yield* state.exists(plan.slug), "no state dir left behind")
        assert.deepStrictEqual(yield* state.leasesOf(plan.slug), [], "no lease left behind")
      }).pipe(Effect.provide(layers())))
  })

  it.effect("revocation still runs when the container releases before it fail", () =>
    Effect.gen(function*() {
      const plan = yield* makePlan
      const rec = yield* Recorder
      const exit = yield* Effect.exit(launch(plan, opts("attach")))
      assert.isTrue(Exit.isSuccess(exit), "a failed container removal is logged, not fatal")
      const events = normalize(plan.slug, yield* Ref.get(rec.events))
      const i = events.indexOf("release deploy-key acme/app#100")
      assert.isTrue(i > events.indexOf("release container bottle-SLUG-agent") && i > events.indexOf("release container bottle-SLUG-bundle"))
      assert.isTrue(i > 0, "revoked")
    }).pipe(Effect.provide(layers({ failRemove: ["-agent", "-bundle"] }))))

  it.effect("a revocation failure surfaces as an error naming the key", () =>
    Effect.gen(function*() {
      const plan = yield* makePlan
      const err = yield* Effect.flip(launch(plan, opts("attach")))
      assert.strictEqual(err._tag, "LaunchError")
      assert.include(err.message, "DEPLOY KEY REVOCATION FAILED")
      assert.include(err.message, "acme/app key 100")
    }).pipe(Effect.provide(layers({}, { failRevoke: true }))))

  it.effect("an unhealthy bundle fails the launch, naming why, and everything is released", () =>
    Effect.gen(function*() {
      const plan = yield* makePlan
      const err = yield* Effect.flip(launch(plan, opts("detach")))
      assert.include(err.message, "daemon egress exited (code 1)")
      const events = yield* Ref.get((yield* Recorder).events)
      const acquired = events.filter((e) => e.startsWith("acquire"))
      assert.deepStrictEqual(events.filter((e) => e.startsWith("release")), [...acquired].reverse().map(releaseOf))
      assert.isFalse(yield* (yield* StateStore).exists(plan.slug))
    }).pipe(Effect.provide(layers({ bundleStatus: "bottle-bundle: unhealthy: daemon egress exited (code 1); not restarting\n" }))))

  it.effect("a missing token fails before anything is acquired", () =>
    Effect.gen(function*() {
      const plan = yield* makePlan
      const err = yield* Effect.flip(launch(plan, { ...opts("attach"), env: { GH_ADMIN_TOKEN: "x" } }))
      assert.include(err.message, "$EXAMPLE_TOKEN is not set")
      const events = yield* Ref.get((yield* Recorder).events)
      assert.deepStrictEqual(events, [])
    }).pipe(Effect.provide(layers())))
})
