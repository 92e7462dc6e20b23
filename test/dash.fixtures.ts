/**
 * The dashboard on fake layers, for its component tests and bench/dash.ts: the real StateStore
 * on a temp root, a fake backend (test/layers/Backend.ts) whose `inspect` reports the bottles
 * the test says run and whose `remove` stops them, the fake git host (revocation can fail), and
 * the real programs (listBottles, resolvePlan, launch, teardown, the approval queue) on top.
 * Bottles are made the way `launch` leaves them: plan.json and meta.json from a real `prepare`.
 */
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { Context, Effect, Exit, Layer, LayerMap, Scope } from "effect"
import { approvalQueue } from "../src/dash/approvals.ts"
import { type DashServices, makeDashApi } from "../src/dash/feed.ts"
import { DashStore } from "../src/dash/store.ts"
import { Backends } from "../src/layers/Backends.ts"
import * as ProcessRunnerLive from "../src/layers/ProcessRunner.ts"
import * as SmolmachinesBackend from "../src/layers/SmolmachinesBackend.ts"
import { make as makeState } from "../src/layers/StateStore.ts"
import { parseManifest } from "../src/programs/loadManifest.ts"
import { prepare } from "../src/programs/prepare.ts"
import type { AuditEntry } from "../src/schema/AuditLog.ts"
import type { ApprovalRequest } from "../src/schema/Approval.ts"
import { writeRequest } from "../src/schema/ApprovalQueue.ts"
import type { BottleState } from "../src/services/Backend.ts"
import { StateStore } from "../src/services/StateStore.ts"
import * as FakeBackend from "./layers/Backend.ts"
import * as FakeGitHost from "./layers/GitHost.ts"
import { Recorder } from "./layers/Recorder.ts"

export const MANIFEST = `
agents:
  coder:
    bottle: box
    label: Coder
    color: magenta
  scout:
    bottle: open
    label: Scout
    color: cyan
bottles:
  box:
    egress:
      routes:
        - host: api.anthropic.com
  open:
    egress:
      routes:
        - host: files.example.net
          auth: { token_env: DASH_TEST_TOKEN }
`

export interface Fixture {
  readonly root: string
  readonly cwd: string
  readonly context: Context.Context<DashServices>
  readonly store: DashStore
  readonly api: ReturnType<typeof makeDashApi>
  /** Slugs the fake backend reports running. */
  readonly running: Set<string>
  readonly addBottle: (slug: string, agent?: string, options?: { readonly deployKey?: boolean }) => Promise<void>
  readonly audit: (slug: string, entries: ReadonlyArray<Partial<AuditEntry>>) => void
  readonly ask: (slug: string, request: Partial<ApprovalRequest> & { readonly id: string }) => void
  readonly close: () => Promise<void>
}

export const makeFixture = async (
  options: {
    readonly failRevoke?: boolean
    readonly watch?: boolean
    readonly now?: () => number
    /** An existing state root and cwd (bench/dash.ts: the driver made them; the bottles in it are running). */
    readonly root?: string
    readonly cwd?: string
  } = {}
): Promise<Fixture> => {
  const root = options.root ?? fs.mkdtempSync(path.join(os.tmpdir(), "bb-dash-state-"))
  const cwd = options.cwd ?? fs.mkdtempSync(path.join(os.tmpdir(), "bb-dash-cwd-"))
  if (!options.cwd) fs.writeFileSync(path.join(cwd, "bottle.yaml"), MANIFEST)
  const running = new Set<string>(options.root && fs.existsSync(path.join(root, "bottles")) ? fs.readdirSync(path.join(root, "bottles")) : [])
  const fakeBackend = FakeBackend.layerTest({
    stub: {
      inspect: (slug?: string) =>
        Effect.sync((): ReadonlyArray<BottleState> =>
          [...running].filter((s) => slug === undefined || s === slug).map((s) => ({ slug: s, status: "running", parts: [`bottle-${s}-agent`, `bottle-${s}-bundle`], volumes: [] }))),
      // A launched bottle runs from its bundle on (detach mode keeps it).
      bundle: (plan) => Effect.sync(() => void running.add(plan.slug)),
      remove: (slug: string) => Effect.sync(() => {
        running.delete(slug)
        return { leftovers: [], holdsAddress: false }
      })
    }
  })
  const state = Layer.succeed(StateStore, makeState(root))
  const backends = Layer.effect(Backends, LayerMap.fromRecord({ docker: fakeBackend, smolmachines: SmolmachinesBackend.layer }))
  const layers = Layer.mergeAll(backends, FakeGitHost.layerTest({ failRevoke: options.failRevoke ?? false }), ProcessRunnerLive.layer).pipe(
    Layer.provideMerge(state),
    Layer.provideMerge(Recorder.layer)
  )
  const scope = Effect.runSync(Scope.make())
  const context = await Effect.runPromise(Layer.buildWithScope(layers, scope)) as Context.Context<DashServices>
  const env = { ...process.env, TMUX: undefined }
  const api = makeDashApi(context, { cwd, env, queue: approvalQueue, bottleCommand: ["bottle"] })
  const store = new DashStore(api, { watch: options.watch ?? false, ...(options.now ? { now: options.now } : {}) })
  const st = makeState(root)

  const addBottle = async (slug: string, agent = "coder", o: { readonly deployKey?: boolean } = {}) => {
    const plan = await Effect.runPromise(Effect.gen(function*() {
      const loaded = yield* parseManifest(MANIFEST, path.join(cwd, "bottle.yaml"), cwd)
      return yield* prepare({ loaded, agent, cwd, env: { DASH_TEST_TOKEN: "t" }, name: slug })
    }).pipe(Effect.provideService(StateStore, st)))
    fs.mkdirSync(path.join(st.bottleDir(slug), "egress"), { recursive: true })
    fs.writeFileSync(path.join(st.bottleDir(slug), "plan.json"), JSON.stringify(plan))
    fs.writeFileSync(path.join(st.bottleDir(slug), "meta.json"), JSON.stringify({
      slug,
      backend: "docker",
      createdAt: new Date(Date.now() - 90_000).toISOString(),
      deployKeys: o.deployKey ? [{ provider: "github", apiUrl: "https://api.github.com", repo: "acme/app", id: 7, title: `bottle ${slug}`, tokenEnv: "GH_ADMIN_TOKEN" }] : []
    }))
    running.add(slug)
  }

  const audit = (slug: string, entries: ReadonlyArray<Partial<AuditEntry>>) => {
    const lines = entries.map((e) => JSON.stringify({
      time: new Date().toISOString(), bottle: slug, method: "GET", host: "api.anthropic.com", path: "/v1/messages", status: 200,
      bytes_in: 10, bytes_out: 20, duration_ms: 5, decision: "allow", rule: "api.anthropic.com", ...e
    }))
    fs.appendFileSync(path.join(st.bottleDir(slug), "egress", "audit.log"), lines.map((l) => `${l}\n`).join(""))
  }

  const ask = (slug: string, r: Partial<ApprovalRequest> & { readonly id: string }) => {
    const now = Date.now()
    writeRequest(path.join(st.bottleDir(slug), "supervise"), {
      kind: "tool", title: "may I?", details: "", requester: "agent",
      createdAt: new Date(now).toISOString(), expiresAt: new Date(now + 30 * 60_000).toISOString(), ...r
    })
  }

  return {
    root, cwd, context, store, api, running, addBottle, audit, ask,
    close: async () => {
      store.stop()
      await Effect.runPromise(Scope.close(scope, Exit.void))
    }
  }
}

/** Waits until `check` passes (bounded by turns of the event loop, not by a clock). */
export const until = async (check: () => boolean, what: string, frames: () => string = () => ""): Promise<void> => {
  for (let i = 0; i < 2000; i++) {
    if (check()) return
    await new Promise((r) => setTimeout(r, 5))
  }
  throw new Error(`never saw ${what}; screen:\n${frames()}`)
}
