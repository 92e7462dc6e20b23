/**
 * launch on fake layers (a fake Backend: no backend's names here): acquisition order, reverse-order release, release on interruption at
 * every acquisition step, revocation despite a release that breaks, revocation failure as an
 * error that also names what failed before it, and deploy keys: a real key pair, recorded in
 * the state the moment they exist, forgotten once revoked.
 */
import { spawnSync } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { assert, describe, it } from "@effect/vitest"
import { Ajv2020 } from "ajv/dist/2020.js"
import { Cause, Effect, Exit, Fiber, Layer, Redacted, Ref } from "effect"
import { manifestJsonSchema } from "../src/cli/schema.ts"
import * as DockerBackend from "../src/layers/DockerBackend.ts"
import * as ProcessRunnerLive from "../src/layers/ProcessRunner.ts"
import { deployKeyFile, deployKeyPair } from "../src/programs/deployKeys.ts"
import { launch, type LaunchOptions } from "../src/programs/launch.ts"
import { parseManifest } from "../src/programs/loadManifest.ts"
import { prepare } from "../src/programs/prepare.ts"
import { BottleMeta } from "../src/schema/BottlePlan.ts"
import type { BundleSpec, SandboxSpec } from "../src/services/Backend.ts"
import type { ContainerSpec } from "../src/services/Docker.ts"
import type { DeployKeySpec } from "../src/services/GitHost.ts"
import type { ProgressEvent } from "../src/schema/LaunchProgress.ts"
import { Progress } from "../src/services/Progress.ts"
import { StateStore } from "../src/services/StateStore.ts"
import * as FakeBackend from "./layers/Backend.ts"
import * as FakeDocker from "./layers/Docker.ts"
import * as FakeGitHost from "./layers/GitHost.ts"
import { Recorder, untilBlocked } from "./layers/Recorder.ts"
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

// Deploy keys are made by the real ssh-keygen.
const layers = (backend: FakeBackend.FakeBackendOptions = {}, git: FakeGitHost.FakeGitHostOptions = {}) =>
  Layer.mergeAll(FakeBackend.layerTest(backend), FakeGitHost.layerTest(git), RecordedState.layerRecorded(), ProcessRunnerLive.layer).pipe(
    Layer.provideMerge(Recorder.layer)
  )

/** The docker backend's own layer, on a fake Docker engine: what the containers are given. */
const dockerLayers = (docker: FakeDocker.FakeDockerOptions = {}) =>
  Layer.mergeAll(DockerBackend.layerWith.pipe(Layer.provide(FakeDocker.layerTest(docker))), FakeGitHost.layerTest(), ProcessRunnerLive.layer).pipe(
    Layer.provideMerge(RecordedState.layerRecorded()),
    Layer.provideMerge(Recorder.layer)
  )

const makePlan = Effect.gen(function*() {
  const cwd = fs.mkdtempSync(path.join(os.tmpdir(), "bb-cwd-"))
  const loaded = yield* parseManifest(manifestYaml, path.join(cwd, "bottle.yaml"), cwd)
  return yield* prepare({ loaded, agent: "coder", cwd, env })
})

const opts = (mode: "attach" | "detach"): LaunchOptions => ({ mode, fresh: true, env, images })

const UNHEALTHY = "bottle-bundle: unhealthy: daemon egress exited (code 1); not restarting\n"
const UNHEALTHY_FAILURE = "the sidecar bundle is unhealthy: daemon egress exited (code 1); not restarting"

const recordedKeys = (slug: string) =>
  Effect.flatMap(StateStore, (state) => state.readJson(slug, "meta.json", BottleMeta)).pipe(Effect.map((m) => m.deployKeys.map((k) => `${k.repo}#${k.id}`)))

const ACQUIRES = [
  "acquire state-dir",
  "acquire lease subnet#0",
  "acquire deploy-key acme/app#100",
  "acquire network SLUG",
  "acquire bundle SLUG",
  "acquire sandbox SLUG"
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
      assert.deepStrictEqual(acquires.slice(0, 4), ACQUIRES.slice(0, 4), "state, lease, keys, network, in that order")
      assert.sameMembers(acquires.slice(4), ACQUIRES.slice(4), "then the bundle and the sandbox (side by side)")
      const releases = events.filter((e) => e.startsWith("release") || e.startsWith("keep"))
      // The state dir is kept after a session (logs, resume); everything else is released, in reverse.
      assert.deepStrictEqual(releases, [...acquires.slice(1).reverse().map(releaseOf), "keep state-dir"])
      const attachAt = events.indexOf("attach SLUG")
      assert.isTrue(attachAt > events.indexOf("provision SLUG"), "attaches after the sandbox is provisioned")
      assert.isTrue(attachAt < events.indexOf("release sandbox SLUG"), "releases after the session")
    }).pipe(Effect.provide(layers())))

  it.effect("the bundle gets the tokens its routes inject, never a deploy key's admin token; the sandbox gets none", () => {
    const bundles: Array<BundleSpec> = []
    const sandboxes: Array<SandboxSpec> = []
    return Effect.gen(function*() {
      const plan = yield* makePlan
      yield* launch(plan, opts("detach"))
      assert.lengthOf(bundles, 1)
      assert.deepStrictEqual(Object.keys(bundles[0]!.secretEnv), ["EXAMPLE_TOKEN"])
      assert.strictEqual(Redacted.value(bundles[0]!.secretEnv["EXAMPLE_TOKEN"]!), "real-example-token")
      const everything = JSON.stringify([{ ...bundles[0], secretEnv: Redacted.value(bundles[0]!.secretEnv["EXAMPLE_TOKEN"]!) }, ...sandboxes])
      assert.notInclude(everything, env.GH_ADMIN_TOKEN)
      assert.lengthOf(sandboxes, 1)
      assert.notInclude(JSON.stringify(sandboxes), env.EXAMPLE_TOKEN)
    }).pipe(Effect.provide(layers({ bundles, sandboxes })))
  })

  it.effect("docker backend: the bundle container gets the route tokens (never the admin token); the agent container none", () => {
    const started: Array<ContainerSpec> = []
    return Effect.gen(function*() {
      const plan = yield* makePlan
      yield* launch(plan, opts("detach"))
      const bundle = started.find((s) => s.name.endsWith("-bundle"))
      const agent = started.find((s) => s.name.endsWith("-agent"))
      assert.deepStrictEqual(Object.keys(bundle?.secretEnv ?? {}), ["EXAMPLE_TOKEN"])
      assert.strictEqual(Redacted.value(bundle!.secretEnv!["EXAMPLE_TOKEN"]!), "real-example-token")
      const everything = JSON.stringify(started.map((s) => ({ ...s, secretEnv: Object.fromEntries(Object.entries(s.secretEnv ?? {}).map(([k, v]) => [k, Redacted.value(v)])) })))
      assert.notInclude(everything, env.GH_ADMIN_TOKEN)
      assert.deepStrictEqual(Object.keys(agent?.secretEnv ?? {}), [])
      assert.notInclude(JSON.stringify(agent), env.EXAMPLE_TOKEN)
    }).pipe(Effect.provide(dockerLayers({ started })))
  })

  it.effect("docker backend: both containers are bounded whatever the manifest says (a fork bomb stops at the agent's process limit)", () => {
    const started: Array<ContainerSpec> = []
    return Effect.gen(function*() {
      const plan = yield* makePlan
      yield* launch(plan, opts("detach"))
      const argsOf = (suffix: string) => (started.find((s) => s.name.endsWith(suffix))?.extraArgs ?? []).join(" ")
      assert.include(argsOf("-agent"), "--pids-limit 4096")
      assert.include(argsOf("-bundle"), "--pids-limit 256 --memory 512m")
    }).pipe(Effect.provide(dockerLayers({ started })))
  })

  it.effect("reports its steps as data, in the design's order, each as it begins", () => {
    const reported: Array<ProgressEvent> = []
    return Effect.gen(function*() {
      const plan = yield* makePlan
      const rec = yield* Recorder
      const progress = { report: (e: ProgressEvent) => Effect.sync(() => reported.push(e)).pipe(Effect.andThen(rec.record(`step ${e._tag === "Step" ? e.step : "?"}`))) }
      yield* launch(plan, opts("attach")).pipe(Effect.provideService(Progress, progress))
      const steps = reported.flatMap((e) => (e._tag === "Step" ? [e.step] : []))
      assert.deepStrictEqual(steps.slice(0, 6), ["state", "lease", "ca", "deploy-keys", "network", "images"])
      assert.sameMembers(steps.slice(6, 8), ["bundle", "sandbox"])
      assert.deepStrictEqual(steps.slice(8), ["probe", "attach"])
      const events = normalize(plan.slug, yield* Ref.get(rec.events))
      assert.isTrue(events.indexOf("step deploy-keys") < events.indexOf("acquire deploy-key acme/app#100"), "a step is reported before it acquires")
      assert.isTrue(events.indexOf("step lease") > events.indexOf("acquire state-dir"), "... and after the step before it")
    }).pipe(Effect.provide(layers()))
  })

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
  const steps = ["state-dir", "lease subnet", "deploy-key acme/app", "network SLUG", "bundle SLUG", "sandbox SLUG", "provision SLUG", "attach SLUG"]
  steps.forEach((blockAt, n) => {
    it.effect(`interrupted at step ${n} (${blockAt}): everything acquired before is released, in reverse`, () =>
      Effect.gen(function*() {
        const plan = yield* makePlan
        const rec = yield* Recorder
        yield* Ref.set(rec.blockOn, blockAt.replaceAll("SLUG", plan.slug))
        const fiber = yield* Effect.forkChild(launch(plan, opts("attach")))
        // Wait until launch is parked inside the blocked step.
        yield* untilBlocked
        const exit = yield* Fiber.interrupt(fiber).pipe(Effect.andThen(Fiber.await(fiber)))
        assert.isTrue(Exit.isFailure(exit) && Exit.hasInterrupts(exit), "launch ended by interruption")
        const events = normalize(plan.slug, yield* Ref.get(rec.events))
        const acquired = events.filter((e) => e.startsWith("acquire"))
        // Steps up to the network are sequential; the bundle and the sandbox start side by
        // side, so blocking one may still see the other acquired.
        const sequential = Math.min(n, 4)
        assert.deepStrictEqual(acquired.slice(0, sequential), ACQUIRES.slice(0, sequential))
        assert.isTrue(acquired.every((a) => ACQUIRES.includes(a)), acquired.join(", "))
        if (n < 4) assert.strictEqual(acquired.length, n, "nothing beyond the blocked sequential step")
        const released = events.filter((e) => e.startsWith("release"))
        // Interrupted while attached, the bottle had run: its state dir is the agent's work
        // (resume brings it back), kept like after a normal exit. Before that: nothing is left.
        const ran = blockAt === "attach SLUG"
        assert.deepStrictEqual(released, [...acquired].reverse().map(releaseOf).filter((r) => !(ran && r === "release state-dir")))
        const state = yield* StateStore
        assert.strictEqual(yield* state.exists(plan.slug), ran, ran ? "the state of a bottle that ran is kept" : "no state dir left behind")
        assert.deepStrictEqual(yield* state.leasesOf(plan.slug), [], "no lease left behind")
      }).pipe(Effect.provide(layers())))
  })

  it.effect("a release that breaks skips nothing behind it: the key is revoked, and the launch fails with the breakage", () =>
    Effect.gen(function*() {
      const plan = yield* makePlan
      const rec = yield* Recorder
      // The fake's failing container removal really fails its release (it dies), unlike the
      // live layer's, which logs: the worst a release can do.
      const exit = yield* Effect.exit(launch(plan, opts("attach")))
      assert.isTrue(Exit.isFailure(exit), "a broken release is not hidden")
      if (Exit.isFailure(exit)) {
        const defects = exit.cause.reasons.filter(Cause.isDieReason).map((r) => String(r.defect))
        assert.lengthOf(defects, 2, Cause.pretty(exit.cause))
        for (const name of ["sandbox SLUG", "bundle SLUG"]) {
          assert.isTrue(defects.some((d) => d.includes(name.replace("SLUG", plan.slug)) && d.includes("boom")), `${name}: ${defects.join(" | ")}`)
        }
        assert.isFalse(Cause.hasFails(exit.cause), "no revocation failure")
      }
      const events = normalize(plan.slug, yield* Ref.get(rec.events))
      const acquired = events.filter((e) => e.startsWith("acquire"))
      assert.deepStrictEqual(events.filter((e) => e.startsWith("release")), [...acquired].slice(1).reverse().map(releaseOf), "every release ran, in reverse")
      const i = events.indexOf("release deploy-key acme/app#100")
      assert.isTrue(i > events.indexOf("release sandbox SLUG") && i > events.indexOf("release bundle SLUG"))
      assert.deepStrictEqual(yield* recordedKeys(plan.slug), [], "the revoked key is no longer recorded")
    }).pipe(Effect.provide(layers({ failRelease: ["sandbox", "bundle"] }))))

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
    }).pipe(Effect.provide(layers({ bundleFailure: UNHEALTHY_FAILURE }))))

  it.effect("docker backend: the bundle's unhealthy line fails the launch at the bundle step, naming the daemon", () =>
    Effect.gen(function*() {
      const plan = yield* makePlan
      const err = yield* Effect.flip(launch(plan, opts("detach")))
      assert.include(err.message, `launch failed at bundle: ${UNHEALTHY_FAILURE}`)
      const events = yield* Ref.get((yield* Recorder).events)
      const acquired = events.filter((e) => e.startsWith("acquire"))
      assert.deepStrictEqual(events.filter((e) => e.startsWith("release")), [...acquired].reverse().map(releaseOf))
    }).pipe(Effect.provide(dockerLayers({ bundleStatus: UNHEALTHY }))))

  it.effect("a failed launch whose revocation also fails reports both; the key stays recorded for `bottle stop`", () =>
    Effect.gen(function*() {
      const plan = yield* makePlan
      const exit = yield* Effect.exit(launch(plan, opts("detach")))
      assert.isTrue(Exit.isFailure(exit))
      if (Exit.isFailure(exit)) {
        const errors = exit.cause.reasons.filter(Cause.isFailReason).map((r) => r.error)
        // The CLI prints the first error: that one line names the key and the launch's failure.
        const first = errors[0]
        assert.include(first?.message, "DEPLOY KEY REVOCATION FAILED")
        assert.include(first?.message, "acme/app key 100 (DELETE https://api.github.com/keys/100 answered 502")
        assert.include(first?.message, "launch failed at bundle: the sidecar bundle is unhealthy: daemon egress exited (code 1)")
        // ... and the launch's own failure is still in the cause, as itself.
        assert.isTrue(errors.some((e) => e._tag === "LaunchError" && e.reason._tag === "LaunchFailed" && e.reason.step === "bundle"), errors.map((e) => e.message).join(" | "))
      }
      const events = yield* Ref.get((yield* Recorder).events)
      assert.include(events, `release deploy-key acme/app#100`)
      // The failed first launch removed its state dir, but not the record of a key still alive.
      assert.deepStrictEqual(yield* recordedKeys(plan.slug), ["acme/app#100"])
    }).pipe(Effect.provide(layers({ bundleFailure: UNHEALTHY_FAILURE }, { failRevoke: true }))))

  it.effect("an interrupted launch whose revocation fails reports the revocation, and that it was interrupted", () =>
    Effect.gen(function*() {
      const plan = yield* makePlan
      yield* Ref.set((yield* Recorder).blockOn, `network ${plan.slug}`)
      const fiber = yield* Effect.forkChild(launch(plan, opts("attach")))
      yield* untilBlocked
      const exit = yield* Fiber.interrupt(fiber).pipe(Effect.andThen(Fiber.await(fiber)))
      assert.isTrue(Exit.isFailure(exit) && Exit.hasInterrupts(exit))
      if (Exit.isFailure(exit)) {
        const first = exit.cause.reasons.find(Cause.isFailReason)?.error
        assert.include(first?.message, "acme/app key 100")
        assert.include(first?.message, "and before that: interrupted")
      }
    }).pipe(Effect.provide(layers({}, { failRevoke: true }))))

  it.effect("a missing token fails before anything is acquired", () =>
    Effect.gen(function*() {
      const plan = yield* makePlan
      const err = yield* Effect.flip(launch(plan, { ...opts("attach"), env: { GH_ADMIN_TOKEN: "x" } }))
      assert.include(err.message, "$EXAMPLE_TOKEN is not set")
      const events = yield* Ref.get((yield* Recorder).events)
      assert.deepStrictEqual(events, [])
    }).pipe(Effect.provide(layers())))
})

describe("deploy keys", () => {
  it.effect("each key is recorded in the bottle's state as soon as it exists, before the networks and images", () =>
    Effect.gen(function*() {
      const plan = yield* makePlan
      yield* Ref.set((yield* Recorder).blockOn, `network ${plan.slug}`)
      const fiber = yield* Effect.forkChild(launch(plan, opts("attach")))
      yield* untilBlocked
      // Were the process killed here (no finalizer runs), `bottle stop` would find this record.
      assert.deepStrictEqual(yield* recordedKeys(plan.slug), ["acme/app#100"])
      yield* Fiber.interrupt(fiber)
    }).pipe(Effect.provide(layers())))

  it.effect("a key revoked at the end of a session is no longer recorded", () =>
    Effect.gen(function*() {
      const plan = yield* makePlan
      yield* launch(plan, opts("attach"))
      assert.deepStrictEqual(yield* recordedKeys(plan.slug), [])
    }).pipe(Effect.provide(layers())))

  it.effect("a key that could not be revoked at the end of a session stays recorded", () =>
    Effect.gen(function*() {
      const plan = yield* makePlan
      yield* Effect.exit(launch(plan, opts("attach")))
      assert.deepStrictEqual(yield* recordedKeys(plan.slug), ["acme/app#100"])
    }).pipe(Effect.provide(layers({}, { failRevoke: true }))))

  const specs: Array<DeployKeySpec> = []
  it.effect("the git host gets a fresh ed25519 public key; its private half is kept 0600 in the bottle's state", () =>
    Effect.gen(function*() {
      const plan = yield* makePlan
      yield* launch(plan, opts("detach"))
      assert.lengthOf(specs, 1)
      const spec = specs[0]!
      assert.match(spec.publicKey, /^ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI[A-Za-z0-9+/]{43} bot-bottle /)
      assert.strictEqual(spec.apiUrl, "https://api.github.com")
      assert.isFalse(spec.readOnly, "the git gate pushes with it")
      const file = path.join((yield* StateStore).bottleDir(plan.slug), deployKeyFile("origin"))
      assert.strictEqual(fs.statSync(file).mode & 0o777, 0o600)
      assert.match(fs.readFileSync(file, "utf8"), /^-----BEGIN OPENSSH PRIVATE KEY-----\n/)
    }).pipe(Effect.provide(layers({}, { onCreate: (s) => specs.push(s) }))))

  it.effect("the private key is one OpenSSH reads, and it is the public key's other half", () =>
    Effect.gen(function*() {
    const pair = yield* deployKeyPair("bot-bottle test origin")
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "bb-key-"))
    const file = path.join(dir, "key")
    fs.writeFileSync(file, pair.privateKey, { mode: 0o600 })
    const derived = spawnSync("ssh-keygen", ["-y", "-f", file], { encoding: "utf8" })
    assert.strictEqual(derived.status, 0, derived.stderr)
    assert.strictEqual(derived.stdout.trim(), pair.publicKey)
    // A signature made with the private key verifies: the seed is right, not just the stored public half.
    fs.writeFileSync(path.join(dir, "data"), "hello\n")
    const sign = spawnSync("ssh-keygen", ["-Y", "sign", "-f", file, "-n", "file", path.join(dir, "data")], { encoding: "utf8" })
    assert.strictEqual(sign.status, 0, sign.stderr)
    fs.writeFileSync(path.join(dir, "signers"), `bottle ${pair.publicKey}\n`)
    const verify = spawnSync("ssh-keygen", ["-Y", "verify", "-f", path.join(dir, "signers"), "-I", "bottle", "-n", "file", "-s", path.join(dir, "data.sig")], {
      input: "hello\n",
      encoding: "utf8"
    })
    assert.strictEqual(verify.status, 0, verify.stderr)
    assert.notStrictEqual((yield* deployKeyPair("x")).publicKey, (yield* deployKeyPair("x")).publicKey, "never reused")
    }).pipe(Effect.provide(ProcessRunnerLive.layer)))

  const giteaManifest = (apiUrl: string) => `
agents:
  coder: { bottle: box }
bottles:
  box:
    git:
      upstreams:
        - name: forge
          url: https://gitea.example.com/acme/app.git
          deploy_key: { provider: gitea, repo: acme/app, token_env: GITEA_TOKEN${apiUrl} }
`
  it.effect("a gitea deploy key needs api_url (there is no default to fall back to): the loader and the JSON Schema agree", () =>
    Effect.gen(function*() {
      const err = yield* Effect.flip(parseManifest(giteaManifest(""), "/m/bottle.yaml", "/m"))
      assert.strictEqual(err.message, "/m/bottle.yaml:10:11: bottles.box.git.upstreams[0].deploy_key.api_url: required for a gitea deploy key (the server's API base, e.g. https://gitea.example.com/api/v1)")
      const ok = yield* parseManifest(giteaManifest(`, api_url: "https://gitea.example.com/api/v1"`), "/m/bottle.yaml", "/m")
      assert.strictEqual(ok.manifest.bottles["box"]?.git?.upstreams[0]?.deploy_key?.api_url, "https://gitea.example.com/api/v1")
      const validate = new Ajv2020({ strict: true, strictTuples: false }).compile(manifestJsonSchema())
      const doc = (dk: Record<string, string>) => ({ agents: { coder: { bottle: "box" } }, bottles: { box: { git: { upstreams: [{ name: "forge", url: "https://gitea.example.com/acme/app.git", deploy_key: dk }] } } } })
      assert.isFalse(validate(doc({ provider: "gitea", repo: "acme/app", token_env: "GITEA_TOKEN" })), "gitea without api_url")
      assert.isTrue(validate(doc({ provider: "gitea", api_url: "https://gitea.example.com/api/v1", repo: "acme/app", token_env: "GITEA_TOKEN" })))
      assert.isTrue(validate(doc({ provider: "github", repo: "acme/app", token_env: "GH_TOKEN" })), "github defaults its API")
    }))
})

// A release that breaks AND a revocation that fails: the broken release must not end the launch
// before the revocation failures are read ("DEPLOY KEY REVOCATION FAILED" still names the key, and
// a failed first launch still leaves it recorded for `bottle stop`).
describe("launch: a broken release and a failed revocation together", () => {
  it.effect("attach: the revocation failure is still reported first, and the broken releases stay in the cause", () =>
    Effect.gen(function*() {
      const plan = yield* makePlan
      const exit = yield* Effect.exit(launch(plan, opts("attach")))
      assert.isTrue(Exit.isFailure(exit))
      if (Exit.isFailure(exit)) {
        const first = exit.cause.reasons.find(Cause.isFailReason)?.error
        assert.include(first?.message, "DEPLOY KEY REVOCATION FAILED", Cause.pretty(exit.cause))
        assert.include(first?.message, "acme/app key 100")
        const defects = exit.cause.reasons.filter(Cause.isDieReason).map((r) => String(r.defect))
        assert.isTrue(defects.some((d) => d.includes(`sandbox ${plan.slug}`)), defects.join(" | "))
      }
      const events = yield* Ref.get((yield* Recorder).events)
      assert.include(events, "release deploy-key acme/app#100")
      // After an attached session the state dir stays; the key that is still alive stays recorded.
      assert.deepStrictEqual(yield* recordedKeys(plan.slug), ["acme/app#100"])
    }).pipe(Effect.provide(layers({ failRelease: ["sandbox", "bundle"] }, { failRevoke: true }))))

  it.effect("a failed first launch: the revocation failure names the launch's failure, and the key is re-recorded", () =>
    Effect.gen(function*() {
      const plan = yield* makePlan
      const exit = yield* Effect.exit(launch(plan, opts("detach")))
      assert.isTrue(Exit.isFailure(exit))
      if (Exit.isFailure(exit)) {
        const first = exit.cause.reasons.find(Cause.isFailReason)?.error
        assert.include(first?.message, "DEPLOY KEY REVOCATION FAILED", Cause.pretty(exit.cause))
        assert.include(first?.message, "acme/app key 100")
        assert.include(first?.message, "the sidecar bundle is unhealthy")
      }
      // The failed first launch removed its state dir; the key still alive is recorded again.
      assert.deepStrictEqual(yield* recordedKeys(plan.slug), ["acme/app#100"])
    }).pipe(Effect.provide(layers({ bundleFailure: UNHEALTHY_FAILURE, failRelease: ["sandbox", "bundle"] }, { failRevoke: true }))))

  it.effect("the isolation probe runs once both are up, before attach; a failing one tears everything down, naming what was reachable", () =>
    Effect.gen(function*() {
      const plan = yield* makePlan
      const exit = yield* Effect.exit(launch(plan, opts("attach")))
      assert.isTrue(Exit.isFailure(exit))
      const message = Exit.isFailure(exit) ? String(Cause.squash(exit.cause)) : ""
      assert.include(message, "launch failed at probe: isolation probe failed, so the bottle was torn down: the host gateway (10.0.0.1:443) is reachable (refused) — install the fixed release")
      const events = normalize(plan.slug, yield* Ref.get((yield* Recorder).events))
      const probeAt = events.indexOf("probe SLUG")
      assert.isTrue(probeAt > events.indexOf("acquire bundle SLUG") && probeAt > events.indexOf("provision SLUG"), "after the bundle and the sandbox")
      assert.notInclude(events, "attach SLUG", "never attached")
      const acquired = events.filter((e) => e.startsWith("acquire"))
      assert.deepStrictEqual(events.filter((e) => e.startsWith("release")), [...acquired].reverse().map(releaseOf))
      assert.isFalse(yield* (yield* StateStore).exists(plan.slug), "no state dir left behind")
    }).pipe(Effect.provide(layers({
      probe: () =>
        Effect.succeed({
          ok: false,
          results: [],
          problems: ["the host gateway (10.0.0.1:443) is reachable (refused)"],
          advice: "install the fixed release"
        })
    }))))

  it.effect("interrupted while the probe runs: everything is released", () =>
    Effect.gen(function*() {
      const plan = yield* makePlan
      const rec = yield* Recorder
      yield* Ref.set(rec.blockOn, `probe ${plan.slug}`)
      const fiber = yield* Effect.forkChild(launch(plan, opts("detach")))
      yield* untilBlocked
      const exit = yield* Fiber.interrupt(fiber).pipe(Effect.andThen(Fiber.await(fiber)))
      assert.isTrue(Exit.isFailure(exit) && Exit.hasInterrupts(exit))
      const events = normalize(plan.slug, yield* Ref.get(rec.events))
      const acquired = events.filter((e) => e.startsWith("acquire"))
      assert.sameMembers(acquired, ACQUIRES)
      assert.deepStrictEqual(events.filter((e) => e.startsWith("release")), [...acquired].reverse().map(releaseOf))
    }).pipe(Effect.provide(layers({ probe: () => Effect.succeed({ ok: true, results: [], problems: [] }) }))))
})
