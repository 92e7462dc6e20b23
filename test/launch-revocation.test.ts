/**
 * launch on fake layers, when everything goes wrong at once on the way out: a release that
 * breaks (a container removal that dies) AND a deploy key whose revocation fails. The broken
 * release must not end the launch before the revocation failures are read: the operator still
 * gets "DEPLOY KEY REVOCATION FAILED" naming the key, and a failed first launch still leaves
 * the key recorded for `bottle stop`. (Kept apart from launch.test.ts, which another change is
 * reshaping; it uses the same fake layers.)
 */
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { assert, describe, it } from "@effect/vitest"
import { Cause, Effect, Exit, Layer, Ref } from "effect"
import { launch, type LaunchOptions } from "../src/programs/launch.ts"
import { parseManifest } from "../src/programs/loadManifest.ts"
import { prepare } from "../src/programs/prepare.ts"
import { BottleMeta } from "../src/schema/BottlePlan.ts"
import { StateStore } from "../src/services/StateStore.ts"
import * as ProcessRunnerLive from "../src/layers/ProcessRunner.ts"
import * as FakeBackend from "./layers/Backend.ts"
import * as FakeGitHost from "./layers/GitHost.ts"
import { Recorder } from "./layers/Recorder.ts"
import * as RecordedState from "./layers/StateStore.ts"

const manifestYaml = `
agents:
  coder:
    bottle: box
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

const layers = (backend: FakeBackend.FakeBackendOptions, git: FakeGitHost.FakeGitHostOptions) =>
  Layer.mergeAll(FakeBackend.layerTest(backend), FakeGitHost.layerTest(git), RecordedState.layerRecorded(), ProcessRunnerLive.layer).pipe(
    Layer.provideMerge(Recorder.layer)
  )

const makePlan = Effect.gen(function*() {
  const cwd = fs.mkdtempSync(path.join(os.tmpdir(), "bb-cwd-"))
  const loaded = yield* parseManifest(manifestYaml, path.join(cwd, "bottle.yaml"), cwd)
  return yield* prepare({ loaded, agent: "coder", cwd, env })
})

const opts = (mode: "attach" | "detach"): LaunchOptions => ({ mode, fresh: true, env, images })

const UNHEALTHY_FAILURE = "the sidecar bundle is unhealthy: daemon egress exited (code 1); not restarting"

const recordedKeys = (slug: string) =>
  Effect.flatMap(StateStore, (state) => state.readJson(slug, "meta.json", BottleMeta)).pipe(Effect.map((m) => m.deployKeys.map((k) => `${k.repo}#${k.id}`)))

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
})
