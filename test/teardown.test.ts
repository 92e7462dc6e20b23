/**
 * teardown (`bottle stop`) on fake layers and a real state dir: recorded deploy keys are
 * revoked first, whatever the engine does; an unreachable engine keeps the bottle (state,
 * leases) for a later stop; an unreadable meta.json is an error naming it, never a silent
 * skip; every failure is reported, revocation first.
 */
import * as fs from "node:fs"
import * as path from "node:path"
import { assert, describe, it } from "@effect/vitest"
import { Cause, Effect, Exit, Fiber, Layer, Ref } from "effect"
import * as DockerBackend from "../src/layers/DockerBackend.ts"
import * as ProcessRunnerLive from "../src/layers/ProcessRunner.ts"
import { teardown } from "../src/programs/bottles.ts"
import { launch } from "../src/programs/launch.ts"
import { parseManifest } from "../src/programs/loadManifest.ts"
import { prepare } from "../src/programs/prepare.ts"
import { SUBNET_POOL, SUBNET_POOL_SIZE } from "../src/schema/Bundle.ts"
import type { BottleMeta } from "../src/schema/BottlePlan.ts"
import type { LabelledResource } from "../src/services/Docker.ts"
import { StateStore } from "../src/services/StateStore.ts"
import * as FakeDocker from "./layers/Docker.ts"
import * as FakeGitHost from "./layers/GitHost.ts"
import { Recorder, untilBlocked } from "./layers/Recorder.ts"
import * as RecordedState from "./layers/StateStore.ts"

const SLUG = "coder-abc123"
const env = { GH_ADMIN_TOKEN: "admin-token", GITEA_ADMIN_TOKEN: "gitea-token" }

// The docker backend's own layer on a fake engine: what `stop` removes, and in which order.
const layers = (docker: FakeDocker.FakeDockerOptions, git: FakeGitHost.FakeGitHostOptions = {}) =>
  Layer.mergeAll(DockerBackend.layerWith.pipe(Layer.provide(FakeDocker.layerTest(docker))), FakeGitHost.layerTest(git), ProcessRunnerLive.layer).pipe(
    Layer.provideMerge(RecordedState.layerRecorded()),
    Layer.provideMerge(Recorder.layer)
  )

const resources = (slug: string): ReadonlyArray<LabelledResource> => [
  { kind: "network", id: "n1", name: `bottle-${slug}-int`, slug },
  { kind: "container", id: "c1", name: `bottle-${slug}-agent`, slug, state: "running" },
  { kind: "container", id: "c2", name: `bottle-${slug}-bundle`, slug, state: "running" },
  { kind: "network", id: "n2", name: `bottle-${slug}-ext`, slug }
]

const meta: BottleMeta = {
  slug: SLUG,
  backend: "docker",
  createdAt: "2025-01-01T00:00:00.000Z",
  deployKeys: [
    { provider: "github", apiUrl: "https://api.github.com", repo: "acme/app", id: 7, title: `bot-bottle ${SLUG}`, tokenEnv: "GH_ADMIN_TOKEN" },
    { provider: "gitea", apiUrl: "https://gitea.example.com/api/v1", repo: "acme/forge", id: 8, title: `bot-bottle ${SLUG}`, tokenEnv: "GITEA_ADMIN_TOKEN" }
  ]
}

/** A bottle as a detached launch leaves it: state dir, meta.json (or `metaText`), a subnet lease. */
const seed = (metaText: string | null = JSON.stringify(meta)) =>
  Effect.gen(function*() {
    const state = yield* StateStore
    fs.mkdirSync(state.bottleDir(SLUG), { recursive: true, mode: 0o700 })
    if (metaText !== null) yield* state.writeFile(SLUG, "meta.json", metaText)
    yield* state.takeLease(SUBNET_POOL, SUBNET_POOL_SIZE, SLUG)
  })

const events = Effect.flatMap(Recorder, (rec) => Ref.get(rec.events))
const recordedKeys = Effect.flatMap(StateStore, (state) => state.readFile(SLUG, "meta.json")).pipe(
  Effect.map((text) => (JSON.parse(text) as BottleMeta).deployKeys.map((k) => `${k.repo}#${k.id}`))
)
const errorsOf = <A, E>(exit: Exit.Exit<A, E>): ReadonlyArray<E> =>
  Exit.isFailure(exit) ? exit.cause.reasons.filter(Cause.isFailReason).map((r) => r.error) : []
const bottleKept = Effect.gen(function*() {
  const state = yield* StateStore
  return { exists: yield* state.exists(SLUG), leases: (yield* state.leasesOf(SLUG)).length }
})

describe("teardown", () => {
  it.effect("revokes the recorded keys before removing anything, then removes containers before networks, and frees the leases", () =>
    Effect.gen(function*() {
      yield* seed()
      const revoked: Array<string> = []
      const problems = yield* teardown(SLUG, { purge: false, env, onRevoked: (k) => revoked.push(`${k.repo}#${k.id}`) })
      assert.deepStrictEqual(problems, [])
      assert.deepStrictEqual(yield* events, [
        "release deploy-key acme/app#7",
        "release deploy-key acme/forge#8",
        `list ${SLUG}`,
        `release container bottle-${SLUG}-agent`,
        `release container bottle-${SLUG}-bundle`,
        `release network bottle-${SLUG}-int`,
        `release network bottle-${SLUG}-ext`
      ])
      assert.deepStrictEqual(revoked, ["acme/app#7", "acme/forge#8"])
      assert.deepStrictEqual(yield* recordedKeys, [], "revoked keys are no longer recorded (a second stop does not revoke them again)")
      assert.deepStrictEqual(yield* bottleKept, { exists: true, leases: 0 })
    }).pipe(Effect.provide(layers({ labelled: resources(SLUG) }))))

  it.effect("a pending key record (the process died before learning the key's id) is revoked by its public key, then dropped", () =>
    Effect.gen(function*() {
      yield* seed(JSON.stringify({ ...meta, deployKeys: [] }))
      const state = yield* StateStore
      yield* state.writeJson(SLUG, "deploy-keys/app.json", {
        status: "pending", upstream: "app", provider: "github", apiUrl: "https://api.github.com", repo: "acme/app",
        title: `bot-bottle ${SLUG} app h1`, publicKey: "ssh-ed25519 AAAAMINE bot-bottle", tokenEnv: "GH_ADMIN_TOKEN"
      })
      const revoked: Array<string> = []
      yield* teardown(SLUG, { purge: false, env, onRevoked: (k) => revoked.push(`${k.repo}#${k.id}`) })
      assert.deepStrictEqual(revoked, ["acme/app#42"])
      assert.deepStrictEqual((yield* events).slice(0, 2), ["list deploy-keys acme/app", "release deploy-key acme/app#42"])
      assert.isFalse(fs.existsSync(path.join(state.bottleDir(SLUG), "deploy-keys", "app.json")))
    }).pipe(Effect.provide(layers({ labelled: resources(SLUG) }, {
      listed: [{ id: 41, title: "someone else's", key: "ssh-ed25519 AAAAOTHER" }, { id: 42, title: "renamed", key: "ssh-ed25519 AAAAMINE" }]
    }))))

  it.effect("--purge deletes the state once everything is gone", () =>
    Effect.gen(function*() {
      yield* seed()
      yield* teardown(SLUG, { purge: true, env })
      assert.deepStrictEqual(yield* bottleKept, { exists: false, leases: 0 })
    }).pipe(Effect.provide(layers({ labelled: resources(SLUG) }))))

  it.effect("an unreachable engine: the keys are still revoked; the bottle (state, leases) is kept; the error names the engine", () =>
    Effect.gen(function*() {
      yield* seed()
      const exit = yield* Effect.exit(teardown(SLUG, { purge: true, env }))
      const errors = errorsOf(exit)
      assert.deepStrictEqual(errors.map((e) => e._tag === "BackendError" ? e.reason._tag : e._tag), ["Unavailable"])
      assert.deepStrictEqual(yield* events, ["release deploy-key acme/app#7", "release deploy-key acme/forge#8", `list ${SLUG}`])
      assert.deepStrictEqual(yield* recordedKeys, [])
      assert.deepStrictEqual(yield* bottleKept, { exists: true, leases: 1 }, "kept, even with --purge: a later stop removes its containers")
    }).pipe(Effect.provide(layers({ labelled: "unavailable" }))))

  it.effect("a revocation failure and an unreachable engine are both reported, revocation first; the key stays recorded", () =>
    Effect.gen(function*() {
      yield* seed()
      const errors = errorsOf(yield* Effect.exit(teardown(SLUG, { purge: true, env })))
      assert.deepStrictEqual(errors.map((e) => e._tag), ["LaunchError", "BackendError"])
      assert.include(errors[0]?.message, "DEPLOY KEY REVOCATION FAILED")
      assert.include(errors[0]?.message, "acme/app key 7")
      assert.include(errors[0]?.message, "acme/forge key 8")
      assert.include(errors[1]?.message, "the Docker engine is not reachable")
      assert.deepStrictEqual(yield* recordedKeys, ["acme/app#7", "acme/forge#8"], "for the next stop to retry")
      assert.deepStrictEqual(yield* bottleKept, { exists: true, leases: 1 })
    }).pipe(Effect.provide(layers({ labelled: "unavailable" }, { failRevoke: true }))))

  it.effect("a revocation failure with a reachable engine: everything else is removed, the error names the keys, the state is kept", () =>
    Effect.gen(function*() {
      yield* seed()
      const errors = errorsOf(yield* Effect.exit(teardown(SLUG, { purge: true, env })))
      assert.deepStrictEqual(errors.map((e) => e._tag), ["LaunchError"])
      assert.include((yield* events), `release container bottle-${SLUG}-agent`)
      assert.deepStrictEqual(yield* bottleKept, { exists: true, leases: 0 }, "not purged while a key may be alive")
    }).pipe(Effect.provide(layers({ labelled: resources(SLUG) }, { failRevoke: true }))))

  it.effect("a corrupt meta.json is an error naming the file, not a silent skip; the containers are still removed; the state is kept", () =>
    Effect.gen(function*() {
      yield* seed(`{"slug": "${SLUG}", "deployKeys": [{"repo": "acme/app", "id": 7`)
      const exit = yield* Effect.exit(teardown(SLUG, { purge: true, env }))
      const errors = errorsOf(exit)
      assert.lengthOf(errors, 1)
      const e = errors[0]!
      assert.isTrue(e._tag === "StateError" && e.reason._tag === "Corrupt", e.message)
      assert.include(e.message, path.join((yield* StateStore).bottleDir(SLUG), "meta.json"))
      assert.isFalse((yield* events).some((x) => x.startsWith("release deploy-key")))
      assert.include((yield* events), `release container bottle-${SLUG}-bundle`)
      assert.isTrue((yield* bottleKept).exists, "kept: it is the only record of keys that may be alive")
    }).pipe(Effect.provide(layers({ labelled: resources(SLUG) }))))

  it.effect("a meta.json that decodes to the wrong shape is corrupt too", () =>
    Effect.gen(function*() {
      yield* seed(JSON.stringify({ ...meta, deployKeys: [{ repo: "acme/app", id: "seven" }] }))
      const errors = errorsOf(yield* Effect.exit(teardown(SLUG, { purge: false, env })))
      assert.deepStrictEqual(errors.map((e) => e._tag === "StateError" ? e.reason._tag : e._tag), ["Corrupt"])
    }).pipe(Effect.provide(layers({ labelled: resources(SLUG) }))))

  it.effect("no meta.json: nothing was recorded, so nothing to revoke", () =>
    Effect.gen(function*() {
      yield* seed(null)
      assert.deepStrictEqual(yield* teardown(SLUG, { purge: false, env }), [])
      assert.isFalse((yield* events).some((x) => x.startsWith("release deploy-key")))
    }).pipe(Effect.provide(layers({ labelled: resources(SLUG) }))))

  it.effect("a removal that fails is a leftover to report; the keys were revoked regardless; lease and state stay (even with --purge)", () =>
    Effect.gen(function*() {
      yield* seed()
      const problems = yield* teardown(SLUG, { purge: true, env })
      assert.deepStrictEqual(problems.map((p) => p.split(":")[0]), [`container bottle-${SLUG}-agent`])
      assert.deepStrictEqual(yield* recordedKeys, [])
      // The container still holds its network's subnet: the lease and the state (what a later
      // `bottle stop` works from) are kept.
      assert.deepStrictEqual(yield* bottleKept, { exists: true, leases: 1 })
    }).pipe(Effect.provide(layers({ labelled: resources(SLUG), failRemove: ["-agent"] }))))

  it.effect("a network that cannot be removed keeps its subnet lease", () =>
    Effect.gen(function*() {
      yield* seed()
      const problems = yield* teardown(SLUG, { purge: false, env })
      assert.deepStrictEqual(problems.map((p) => p.split(":")[0]), [`network bottle-${SLUG}-int`])
      assert.deepStrictEqual(yield* bottleKept, { exists: true, leases: 1 })
    }).pipe(Effect.provide(layers({ labelled: resources(SLUG), failRemove: ["-int"] }))))

  it.effect("an unknown bottle is NotFound, whether or not the engine answers", () =>
    Effect.gen(function*() {
      const errors = errorsOf(yield* Effect.exit(teardown("nosuch", { purge: false, env })))
      assert.deepStrictEqual(errors.map((e) => e._tag === "StateError" ? e.reason._tag : e._tag), ["NotFound"])
    }).pipe(Effect.provide(layers({ labelled: "unavailable" }))))
})

describe("teardown after a launch that never finished", () => {
  const manifest = `
agents:
  coder: { bottle: box }
bottles:
  box:
    git:
      upstreams:
        - name: origin
          url: git@github.com:acme/app.git
          deploy_key: { provider: github, repo: acme/app, token_env: GH_ADMIN_TOKEN }
`
  it.effect("a key created just before the launch stalled is revoked by stop, from its record alone", () =>
    Effect.gen(function*() {
      const cwd = fs.mkdtempSync(path.join((yield* StateStore).root, "cwd-"))
      const loaded = yield* parseManifest(manifest, path.join(cwd, "bottle.yaml"), cwd)
      const plan = yield* prepare({ loaded, agent: "coder", cwd, env })
      const rec = yield* Recorder
      // The launch stalls right after its key (as a process killed there would leave it): at the network.
      yield* Ref.set(rec.blockOn, `network ${plan.runtime.backend === "docker" ? plan.runtime.internalNetwork : "?"}`)
      const fiber = yield* Effect.forkChild(launch(plan, { mode: "detach", fresh: true, env, images: { agent: { name: "agent", files: [] }, bundle: { name: "bundle", files: [] } } }))
      yield* untilBlocked
      const before = (yield* Ref.get(rec.events)).length
      yield* teardown(plan.slug, { purge: false, env })
      assert.deepStrictEqual((yield* Ref.get(rec.events)).slice(before), ["release deploy-key acme/app#100", `list ${plan.slug}`], "stop revoked the recorded key")
      yield* Fiber.interrupt(fiber)
    }).pipe(Effect.provide(layers({ labelled: [] }))))
})
