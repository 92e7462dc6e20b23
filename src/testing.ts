/**
 * `bot-bottle/testing`: fake layers to test a script's composition without a container engine.
 * `BottleTest(options)` provides what `BottleLive` provides, with:
 * - a fake backend (every backend name) that keeps bottles in memory: networks, bundles and
 *   sandboxes are recorded as they are acquired and released, `exec`/`attach` answer through
 *   `options.exec` (default: exit 0, no output), `inspect` and `remove` see what is running;
 * - the real state store on a temp dir (or `options.stateDir`): plans, leases, audit logs are
 *   real files, so the programs' own checks run;
 * - a git host whose deploy keys are numbered and recorded, never sent anywhere.
 *
 * `FakeEngine` (provided by `BottleTest`) is what a test asserts on: the event log and the
 * bottles still running. `exec` may write egress audit lines (`audit`), as the egress daemon
 * would, to test egress summaries.
 */
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { Context, Effect, Layer, LayerMap, Ref } from "effect"
import { Backends, backendNames } from "./layers/Backends.ts"
import * as ProcessRunnerLive from "./layers/ProcessRunner.ts"
import * as StateStoreLive from "./layers/StateStore.ts"
import type { AuditEntry } from "./schema/AuditLog.ts"
import type { BottlePlan } from "./schema/BottlePlan.ts"
import { DAEMONS, hostDirOf } from "./schema/BundleProtocol.ts"
import type { Backend as BackendName } from "./schema/Manifest.ts"
import { Backend, BackendError, BackendFailed, BackendNotFound, type ExecResult, type SandboxUser } from "./services/Backend.ts"
import { type DeployKeyRef, type DeployKeySpec, GitHost } from "./services/GitHost.ts"
import { StateStore } from "./services/StateStore.ts"

export interface FakeExecCall {
  readonly plan: BottlePlan
  readonly argv: ReadonlyArray<string>
  /** The env the command runs with (the bottle's, and the call's own additions). */
  readonly env: Record<string, string>
  readonly user: SandboxUser
  readonly stdin?: string | undefined
  /** Appends an egress audit line for this bottle (time, bottle and missing fields filled in). */
  readonly audit: (entry: Pick<AuditEntry, "host" | "decision"> & Partial<AuditEntry>) => void
}

export interface BottleTestOptions {
  /** Answers every exec and attach (attach uses the exit code). Default: exit 0, no output. */
  readonly exec?: (call: FakeExecCall) => ExecResult
  /** The state root (default: a new temp dir). */
  readonly stateDir?: string
  /** `remove` fails with this message (the engine refusing a teardown), leaving the bottle running. */
  readonly removeFails?: string
}

/** The fake engine's record: what a test asserts on. */
export class FakeEngine extends Context.Service<FakeEngine, {
  /** Every acquisition, release and command, in order: "acquire network <slug>", "exec <slug> <argv…>", "release sandbox <slug>", … */
  readonly events: Effect.Effect<ReadonlyArray<string>>
  /** Slugs with anything still running. */
  readonly running: Effect.Effect<ReadonlyArray<string>>
  /** The state root the fake state store writes to. */
  readonly stateDir: string
}>()("bot-bottle/testing/FakeEngine") {}

const notFound = (what: string) => new BackendError({ backend: "fake", reason: new BackendNotFound({ what }) })

export const BottleTest = (options: BottleTestOptions = {}) => {
  const stateDir = options.stateDir ?? fs.mkdtempSync(path.join(os.tmpdir(), "bot-bottle-test-"))
  const engine = Effect.gen(function*() {
    const events = yield* Ref.make<ReadonlyArray<string>>([])
    const parts = yield* Ref.make<ReadonlyMap<string, ReadonlySet<string>>>(new Map())
    const record = (e: string) => Ref.update(events, (xs) => [...xs, e])
    const setPart = (slug: string, part: string, on: boolean) =>
      Ref.update(parts, (m) => {
        const next = new Map(m)
        const set = new Set(next.get(slug) ?? [])
        if (on) set.add(part)
        else set.delete(part)
        if (set.size === 0) next.delete(slug)
        else next.set(slug, set)
        return next
      })
    return {
      record,
      setPart,
      parts,
      service: FakeEngine.of({
        events: Ref.get(events),
        running: Effect.map(Ref.get(parts), (m) => [...m.keys()]),
        stateDir
      })
    }
  })

  const state = StateStoreLive.make(stateDir)
  return Layer.unwrap(Effect.gen(function*() {
    const fake = yield* engine
    const scoped = (part: string, slug: string) =>
      Effect.acquireRelease(
        fake.record(`acquire ${part} ${slug}`).pipe(Effect.andThen(fake.setPart(slug, part, true))),
        () => fake.record(`release ${part} ${slug}`).pipe(Effect.andThen(fake.setPart(slug, part, false)))
      )
    const answer = (plan: BottlePlan, argv: ReadonlyArray<string>, user: SandboxUser, stdin?: string) =>
      Effect.gen(function*() {
        const running = (yield* Ref.get(fake.parts)).get(plan.slug)?.has("sandbox") ?? false
        if (!running) return yield* notFound(`sandbox of ${plan.slug}`)
        yield* fake.record(`exec ${plan.slug} ${argv.join(" ")}`)
        const call: FakeExecCall = {
          plan,
          argv,
          env: plan.env,
          user,
          stdin,
          audit: (entry) => {
            const dir = hostDirOf(state.bottleDir(plan.slug), DAEMONS.egress)
            const line: AuditEntry = {
              time: new Date().toISOString(),
              bottle: plan.slug,
              method: "GET",
              path: "/",
              status: entry.decision === "allow" ? 200 : 403,
              bytes_in: 0,
              bytes_out: 0,
              duration_ms: 0,
              rule: entry.decision === "allow" ? entry.host : "no-route",
              ...entry
            }
            fs.appendFileSync(path.join(dir, "audit.log"), JSON.stringify(line) + "\n")
          }
        }
        return options.exec?.(call) ?? { stdout: "", stderr: "", exitCode: 0 }
      })
    const backend = Layer.succeed(Backend, Backend.of({
      name: "fake",
      preflight: Effect.void,
      images: () => Effect.succeed({ agent: "fake/agent", bundle: "fake/bundle" }),
      addressesInUse: Effect.succeed([]),
      network: (plan) => scoped("network", plan.slug).pipe(Effect.as({ complete: Effect.void })),
      bundle: (plan) => scoped("bundle", plan.slug),
      sandbox: (plan) => scoped("sandbox", plan.slug),
      // The fake's sandbox is isolated: its isolation probe passes.
      probe: () => Effect.succeed({ ok: true, results: [], problems: [] }),
      exec: (plan, argv, o) => answer(plan, argv, o.user, o.stdin),
      attach: (plan, argv, o) => Effect.map(answer(plan, argv, o.user), (r) => r.exitCode),
      session: (plan, argv) => Effect.map(answer(plan, argv, "agent"), (r) => ({ _tag: "Exited" as const, exitCode: r.exitCode })),
      copyOut: (plan, from, to) => fake.record(`copy ${plan.slug}:${from} ${to}`),
      copyIn: (plan, from, to) => fake.record(`copy ${from} ${plan.slug}:${to}`),
      inspect: (slug) =>
        Effect.map(Ref.get(fake.parts), (m) =>
          [...m].filter(([s]) => slug === undefined || s === slug).map(([s, p]) => ({ slug: s, status: "running" as const, parts: [...p].map((x) => `${x} ${s}`), volumes: [] }))),
      logs: (slug) => Effect.flatMap(Ref.get(fake.parts), (m) => (m.get(slug)?.has("bundle") ? fake.record(`logs ${slug}`) : Effect.fail(notFound(`bundle of ${slug}`)))),
      remove: (slug) =>
        Effect.gen(function*() {
          yield* fake.record(`remove ${slug}`)
          if (options.removeFails !== undefined) return yield* new BackendError({ backend: "fake", reason: new BackendFailed({ message: options.removeFails }) })
          yield* Ref.update(fake.parts, (m) => new Map([...m].filter(([s]) => s !== slug)))
          return { leftovers: [], holdsAddress: false }
        }),
      removeOrphans: () => Effect.succeed([])
    }))
    const backends = Layer.effect(Backends, LayerMap.fromRecord(Object.fromEntries(backendNames.map((n) => [n, backend])) as Record<BackendName, typeof backend>))
    const keys = yield* Ref.make(1)
    const createDeployKey = (spec: DeployKeySpec) =>
      Ref.getAndUpdate(keys, (n) => n + 1).pipe(
        Effect.map((id): DeployKeyRef => ({ provider: spec.provider, apiUrl: spec.apiUrl, repo: spec.repo, id, title: spec.title })),
        Effect.tap((k) => fake.record(`acquire deploy-key ${k.repo}#${k.id}`))
      )
    const revokeDeployKey = (ref: DeployKeyRef) => fake.record(`release deploy-key ${ref.repo}#${ref.id}`)
    const gitHost = Layer.succeed(GitHost, GitHost.of({
      createDeployKey,
      revokeDeployKey,
      listDeployKeys: () => Effect.succeed([]),
      deployKey: (spec) => Effect.acquireRelease(createDeployKey(spec), revokeDeployKey)
    }))
    return Layer.mergeAll(
      backends,
      gitHost,
      Layer.succeed(StateStore, state),
      ProcessRunnerLive.layer,
      Layer.succeed(FakeEngine, fake.service)
    )
  }))
}
