/**
 * A bottle as a scoped resource with a handle, for scripts (the public module, src/index.ts)
 * and `bottle run`: `openBottle(plan)` launches a fresh bottle and yields a `BottleHandle`
 * (exec with captured output, attach, logs, the egress audit, stop).
 *
 * Guarantees:
 * - it launches only what `bottle start --yes` would: a credential grant nobody approved, a
 *   daemon not built, a token missing on the host or a name already taken is refused
 *   (`BottleRefused`) before anything is acquired;
 * - the bottle is torn down when the scope closes (success, failure or interruption, Ctrl-C
 *   included) exactly as `bottle stop` does it: deploy keys revoked first, whatever the engine
 *   does; `purge` (the default) also deletes its state. Interrupted mid-launch, the launch
 *   releases what it acquired itself (src/programs/launch.ts);
 * - `handle.stop` is the same teardown with its failures as typed errors; after it the scope's
 *   teardown does nothing. A teardown failing in the scope's release cannot be returned as an
 *   error (releases never fail): it is logged and raised as a defect, never swallowed;
 * - `keep: true` leaves the bottle running when the scope closes (`bottle stop <slug>` later).
 */
import { Cause, Context, Effect, Layer, Ref, Schedule, Schema, type Scope, Stream } from "effect"
import { visible } from "../cli/render.ts"
import { Backends } from "../layers/Backends.ts"
import { type AuditEntry, type AuditUnreadable, readAudit } from "../schema/AuditLog.ts"
import { type BottlePlan, SavedBottlePlan } from "../schema/BottlePlan.ts"
import { DAEMONS, hostDirOf, notBuiltDaemons } from "../schema/BundleProtocol.ts"
import { Backend, type BackendError, type ExecResult, type ImageSource, type SandboxUser } from "../services/Backend.ts"
import type { GitHost } from "../services/GitHost.ts"
import type { ProcessRunner } from "../services/ProcessRunner.ts"
import { type StateError, StateStore } from "../services/StateStore.ts"
import { backendOf, teardown } from "./bottles.ts"
import { describeGrant, pendingGrants } from "./grants.ts"
import { launch, type LaunchError } from "./launch.ts"

/** Why a bottle was not launched: nothing was acquired. */
export class BottleRefused extends Schema.TaggedError<BottleRefused>()("BottleRefused", { slug: Schema.String, message: Schema.String }) {}

export interface OpenOptions {
  /** The host environment the bundle's route tokens come from (default: process.env). */
  readonly env?: Record<string, string | undefined>
  /** Leave the bottle running when the scope closes (default false). */
  readonly keep?: boolean
  /** Delete its state when torn down (default true; false keeps plan, CA and audit log for `bottle logs`). */
  readonly purge?: boolean
  /** Image build contexts (default: the package's agent-image/ and bundle/). */
  readonly images?: { readonly agent: ImageSource; readonly bundle: ImageSource }
}

export interface ExecOptions {
  /** Default "agent". */
  readonly user?: SandboxUser
  /** Written to the command's stdin, then closed. */
  readonly stdin?: string
  /** Added to the bottle's env for this command only. */
  readonly env?: Record<string, string>
}

/** The services the programs run on: what `BottleLive` (src/layers/BottleLive.ts) provides. */
export type BottleServices = Backends | StateStore | GitHost | ProcessRunner

export type StopError = LaunchError | StateError | BackendError

/** What the egress daemon let through and refused, from the audit log (requests, per host). */
export interface EgressSummary {
  readonly requests: number
  /** Allowed by policy (an upstream that then failed included). */
  readonly allowed: { readonly count: number; readonly hosts: ReadonlyArray<{ readonly host: string; readonly count: number }> }
  /** Refused: no route, or a DLP block. */
  readonly denied: { readonly count: number; readonly hosts: ReadonlyArray<{ readonly host: string; readonly count: number }> }
}

export interface BottleHandle {
  readonly slug: string
  /** The plan it runs, with the addresses actually leased. */
  readonly plan: BottlePlan
  /** Runs argv in the agent sandbox and collects stdout, stderr and the exit code (whatever it is). */
  readonly exec: (argv: ReadonlyArray<string>, options?: ExecOptions) => Effect.Effect<ExecResult, BackendError>
  /** Runs argv (default: the agent's command) with this process's stdin, stdout and stderr; returns its exit code. */
  readonly attach: (argv?: ReadonlyArray<string>, options?: Omit<ExecOptions, "stdin">) => Effect.Effect<number, BackendError>
  /** Prints the sidecar bundle's daemon log on this process's stdout (`follow`: until interrupted). */
  readonly logs: (options?: { readonly follow?: boolean }) => Effect.Effect<void, BackendError>
  /** The egress audit log so far, oldest first. */
  readonly audit: Effect.Effect<ReadonlyArray<AuditEntry>, AuditUnreadable>
  /** The audit log as a stream: the entries so far, then new ones as they are written (polled). */
  readonly auditStream: Stream.Stream<AuditEntry, AuditUnreadable>
  /** The audit log summed up: allowed and denied hosts, with counts. */
  readonly egress: Effect.Effect<EgressSummary, AuditUnreadable>
  /** Tears the bottle down now (`bottle stop`); returns what could not be removed. Once: later calls return []. */
  readonly stop: Effect.Effect<ReadonlyArray<string>, StopError>
}

const byHost = (entries: ReadonlyArray<AuditEntry>) => {
  const counts = new Map<string, number>()
  for (const e of entries) counts.set(e.host, (counts.get(e.host) ?? 0) + (e.count ?? 1))
  const hosts = [...counts].map(([host, count]) => ({ host, count })).sort((a, b) => b.count - a.count || a.host.localeCompare(b.host))
  return { count: hosts.reduce((n, h) => n + h.count, 0), hosts }
}

/** Sums an audit log up: `allow` and `error` (allowed, the upstream failed) count as allowed; `deny` and `dlp-block` as denied. */
export const summarizeEgress = (entries: ReadonlyArray<AuditEntry>): EgressSummary => {
  const allowed = byHost(entries.filter((e) => e.decision === "allow" || e.decision === "error"))
  const denied = byHost(entries.filter((e) => e.decision === "deny" || e.decision === "dlp-block"))
  return { requests: allowed.count + denied.count, allowed, denied }
}

/** Refuses what `bottle start --yes` would refuse; acquires nothing. */
export const checkLaunchable = Effect.fn("checkLaunchable")(function*(plan: BottlePlan, env: Record<string, string | undefined>) {
  const state = yield* StateStore
  const refuse = (message: string) => new BottleRefused({ slug: plan.slug, message })
  const missingDaemons = notBuiltDaemons(plan.daemons)
  if (missingDaemons.length > 0) return yield* refuse(`bottle ${plan.slug} needs the ${missingDaemons.join(" and ")} daemon${missingDaemons.length > 1 ? "s" : ""}, not built yet in this version of bot-bottle`)
  const missing = plan.egress.tokens.filter((t) => !env[t.env])
  if (missing.length > 0) return yield* refuse(`${missing.map((t) => `$${t.env}`).join(", ")} not set on this host; bottle ${plan.slug}'s routes inject ${missing.length > 1 ? "them" : "it"}`)
  // A token sent where it is not known to belong is approved by a person, in a terminal, once.
  const grants = yield* pendingGrants(plan)
  if (grants.length > 0) {
    return yield* refuse(`credential grant${grants.length > 1 ? "s" : ""} not approved: ${grants.map(describeGrant).join(", ")}; run \`bottle start\` once in a terminal to review and approve`)
  }
  if (yield* state.exists(plan.slug)) return yield* refuse(`bottle ${plan.slug} already exists: pick another name, or \`bottle stop ${plan.slug} --purge\` first`)
})

/** Polls the audit log; emits each entry once (counted from the first: rotation past the last kept file may skip some). */
const auditStreamOf = (read: Effect.Effect<ReadonlyArray<AuditEntry>, AuditUnreadable>): Stream.Stream<AuditEntry, AuditUnreadable> =>
  Stream.unwrap(Effect.gen(function*() {
    const seen = yield* Ref.make(0)
    const poll = Effect.gen(function*() {
      const all = yield* read
      const from = yield* Ref.getAndSet(seen, all.length)
      return all.slice(Math.min(from, all.length))
    })
    return Stream.fromEffectSchedule(poll, Schedule.spaced("250 millis")).pipe(Stream.flatMap((entries) => Stream.fromIterable(entries)))
  }))

/**
 * Scoped: a fresh bottle from `plan`, launched (detached) on the backend the plan names, torn
 * down when the scope closes unless `keep`. See the module header for the guarantees.
 */
export const openBottle = Effect.fn("openBottle")(function*(plan: BottlePlan, options: OpenOptions = {}): Effect.fn.Return<
  BottleHandle,
  BottleRefused | LaunchError | StateError | BackendError,
  BottleServices | Scope.Scope
> {
  const env = options.env ?? process.env
  // The plan's backend, held for the bottle's whole life (its scope), not just this call.
  const backend = Context.get(yield* Layer.build(Backends.get(plan.backend)), Backend)
  const state = yield* StateStore
  yield* backend.preflight
  yield* checkLaunchable(plan, env)

  const stopped = yield* Ref.make(false)
  const purge = options.purge ?? true
  const stop: Effect.Effect<ReadonlyArray<string>, StopError, BottleServices> = Ref.getAndSet(stopped, true).pipe(
    Effect.flatMap((already) => (already ? Effect.succeed([]) : teardown(plan.slug, { purge, env }).pipe(Effect.provideService(Backend, backend)))),
    Effect.uninterruptible
  )

  // Launch (interruptible: an interrupted launch releases what it acquired), then register the
  // teardown, with no gap between them for an interruption to fall into.
  const launched = yield* Effect.uninterruptibleMask((restore) =>
    restore(launch(plan, { mode: "detach", fresh: true, env, ...(options.images ? { images: options.images } : {}) }).pipe(Effect.provideService(Backend, backend))).pipe(
      Effect.tap(() =>
        Effect.addFinalizer(() =>
          options.keep ? Effect.void : stop.pipe(
            Effect.flatMap((leftovers) => (leftovers.length > 0 ? Effect.logError(`bottle ${plan.slug} stopped, but these remain: ${leftovers.join("; ")}`) : Effect.void)),
            Effect.catchCause((cause) =>
              Effect.logError(`bottle ${plan.slug}: teardown failed`, cause).pipe(Effect.andThen(Effect.die(Cause.squash(cause))))
            )
          )
        )
      )
    )
  )
  // The saved plan: the addresses actually leased.
  const saved = yield* state.readJson(launched.slug, "plan.json", SavedBottlePlan).pipe(Effect.orElseSucceed(() => plan))
  const egressDir = hostDirOf(state.bottleDir(plan.slug), DAEMONS.egress)
  const audit = readAudit(egressDir)
  const withEnv = (extra: Record<string, string> | undefined) => (extra ? { ...saved, env: { ...saved.env, ...extra } } : saved)
  const context = yield* Effect.context<BottleServices>()
  return {
    slug: plan.slug,
    plan: saved,
    exec: (argv, o = {}) => backend.exec(withEnv(o.env), argv, { user: o.user ?? "agent", ...(o.stdin !== undefined ? { stdin: o.stdin } : {}) }),
    attach: (argv, o = {}) => backend.attach(withEnv(o.env), argv ?? saved.command, { user: o.user ?? "agent" }),
    // The agent's text in it (a refused request's path) is escaped, as `bottle logs` does.
    logs: (o = {}) => backend.logs(plan.slug, { follow: o.follow ?? false, onLine: (line) => process.stdout.write(visible(line) + "\n") }),
    audit,
    auditStream: auditStreamOf(audit),
    egress: Effect.map(audit, summarizeEgress),
    stop: stop.pipe(Effect.provideContext(context))
  } satisfies BottleHandle
})

/**
 * `bottle stop <slug>` as a program: on the backend the bottle was launched on, deploy keys
 * revoked first; returns what could not be removed. `purge` also deletes its state.
 */
export const stopBottle = Effect.fn("stopBottle")(function*(slug: string, options: { readonly purge?: boolean; readonly env?: Record<string, string | undefined> } = {}) {
  const name = yield* backendOf(slug)
  return yield* teardown(slug, { purge: options.purge ?? false, env: options.env ?? process.env }).pipe(Effect.provide(Backends.get(name)))
})
