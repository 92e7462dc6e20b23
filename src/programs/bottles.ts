/**
 * Bottles as they exist: state dirs joined with what each bottle's backend runs for it.
 * `teardown` is `bottle stop`: it works from the state dir and the backend alone, so it can stop
 * a bottle launched by another process (detach) or left by a crash.
 */
import { Cause, Effect, Exit, Option } from "effect"
import { Backends, backendNames } from "../layers/Backends.ts"
import { BottleMeta, SavedBottlePlan } from "../schema/BottlePlan.ts"
import type { Backend as BackendName } from "../schema/Manifest.ts"
import { Backend, type BottleState, type BottleStatus as BackendStatus } from "../services/Backend.ts"
import { StateError, StateNotFound, StateStore } from "../services/StateStore.ts"
import { revokeRecordedKeys } from "./deployKeys.ts"
import { LaunchError, RevocationFailed } from "./launch.ts"
import { releaseWorkspace } from "./workspace.ts"

/** unknown: the backend could not be asked. */
export type BottleStatus = BackendStatus | "unknown"

export interface BottleRow {
  readonly slug: string
  readonly agent: string
  readonly backend: string
  readonly status: BottleStatus
  readonly createdAt: string
  /** What its backend runs for it (containers, VMs, pods). */
  readonly containers: ReadonlyArray<string>
  /** What its backend keeps for it across stop/resume (workspace and home volumes). */
  readonly volumes: ReadonlyArray<string>
}

/** The backend a bottle was launched on: its plan's, else its record's, else docker (the only one before plans named it). */
export const backendOf = Effect.fn("backendOf")(function*(slug: string) {
  const state = yield* StateStore
  const plan = yield* state.readJsonIfAny(slug, "plan.json", SavedBottlePlan).pipe(Effect.orElseSucceed(() => Option.none()))
  if (Option.isSome(plan)) return plan.value.backend
  return backendFrom(plan, yield* state.readJsonIfAny(slug, "meta.json", BottleMeta).pipe(Effect.orElseSucceed(() => Option.none())))
})

const backendFrom = (plan: Option.Option<{ readonly backend: BackendName }>, meta: Option.Option<{ readonly backend: BackendName }>): BackendName =>
  Option.isSome(plan) ? plan.value.backend : Option.match(meta, { onNone: (): BackendName => "docker", onSome: (m) => m.backend })

export const listBottles = Effect.fn("listBottles")(function*() {
  const state = yield* StateStore
  const slugs = yield* state.list
  if (slugs.length === 0) return []
  const bottles = yield* Effect.forEach(slugs, (slug) =>
    Effect.all({
      plan: state.readJson(slug, "plan.json", SavedBottlePlan).pipe(Effect.option),
      meta: state.readJson(slug, "meta.json", BottleMeta).pipe(Effect.option)
    }).pipe(Effect.map(({ plan, meta }) => ({ slug, plan, meta, backend: backendFrom(plan, meta) }))))
  // One question per backend in use; with a backend unreachable, its bottles are still listed:
  // their status is unknown.
  const used = [...new Set(bottles.map((b) => b.backend))]
  const answers = new Map<string, Option.Option<ReadonlyArray<BottleState>>>()
  for (const name of used) {
    answers.set(name, yield* Backend.use((b) => b.inspect()).pipe(Effect.provide(Backends.get(name)), Effect.option))
  }
  return bottles.map(({ slug, plan, meta, backend }): BottleRow => {
    const found = Option.map(answers.get(backend) ?? Option.none(), (states) => states.find((s) => s.slug === slug))
    return {
      slug,
      agent: Option.match(plan, { onNone: () => "?", onSome: (p) => p.agent }),
      backend,
      status: Option.match(found, { onNone: () => "unknown" as const, onSome: (s) => s?.status ?? "stopped" }),
      createdAt: Option.match(meta, { onNone: () => "", onSome: (m) => m.createdAt }),
      containers: Option.match(found, { onNone: () => [], onSome: (s) => s?.parts ?? [] }),
      volumes: Option.match(found, { onNone: () => [], onSome: (s) => s?.volumes ?? [] })
    }
  })
})

export interface TeardownOptions {
  readonly purge: boolean
  readonly env: Record<string, string | undefined>
  /** Called as each recorded deploy key is revoked. */
  readonly onRevoked?: (key: { readonly repo: string; readonly id: number }) => void
}

/**
 * Removes a bottle's containers, networks and volumes, revokes its deploy keys, frees its leases.
 *
 * Deploy keys go first, whatever the engine does: a stranded key is the one leftover that is
 * a security problem, and revoking needs no engine. So with the engine unreachable the keys
 * are still revoked, and the bottle (state, leases) is kept for a `bottle stop` once the engine
 * is back. Every failure is reported, together (revocation first): the failure's cause holds
 * each; successful removals with leftovers are returned.
 */
export const teardown = Effect.fn("teardown")(function*(slug: string, options: TeardownOptions) {
  const state = yield* StateStore
  const backend = yield* Backend
  const exists = yield* state.exists(slug)

  const revocation = exists ? yield* Effect.exit(revokeRecordedKeys(slug, options)) : Exit.succeed([])
  const revocationCause: Cause.Cause<LaunchError | StateError> = Exit.isFailure(revocation)
    ? revocation.cause
    : revocation.value.length > 0
    ? Cause.fail(new LaunchError({ reason: new RevocationFailed({ keys: revocation.value }) }))
    : Cause.empty

  // No state and no backend to ask: there is no such bottle as far as we can know (leftovers
  // of a crash are `bottle cleanup`'s business once the backend is back).
  const removal = yield* Effect.exit(Effect.gen(function*() {
    if (!exists) {
      const found = yield* backend.inspect(slug).pipe(Effect.catch((e) => (e.reason._tag === "Unavailable" ? Effect.succeed([]) : Effect.fail(e))))
      if (found.length === 0) return yield* new StateError({ reason: new StateNotFound({ slug }) })
    }
    // Plain stop keeps the bottle's state (its workspace and home volumes) for `resume`; purge
    // removes it with the rest.
    const { leftovers, holdsAddress } = yield* backend.remove(slug, { volumes: options.purge })
    // The address block is free once nothing holds it: the next bottle given that subnet could
    // not create its network over the old one.
    if (!holdsAddress) yield* state.releaseLeases(slug)
    // mount_cwd placeholders go once nothing the backend runs can hold them mounted.
    if (!holdsAddress && exists) yield* releaseWorkspace(slug)
    return leftovers
  }))

  const cause = Cause.combine(revocationCause, Exit.isFailure(removal) ? removal.cause : Cause.empty)
  if (cause.reasons.length > 0 || Exit.isFailure(removal)) return yield* Effect.failCause(cause)
  // Purged only when no key is left alive, the backend answered and nothing was left behind
  // (the state is what a later `bottle stop` works from).
  if (options.purge && removal.value.length === 0) yield* state.removeBottle(slug)
  return removal.value
})

/** Everything a backend runs whose bottle is gone (no state dir), and leases of gone bottles. */
export const cleanup = Effect.fn("cleanup")(function*(options: { readonly dryRun: boolean }) {
  const state = yield* StateStore
  const slugs = new Set(yield* state.list)
  const removed: Array<string> = []
  for (const name of backendNames) {
    removed.push(...yield* Backend.use((b) => b.removeOrphans(slugs, options)).pipe(Effect.provide(Backends.get(name))))
  }
  const leases = (yield* state.allLeases).filter((l) => !slugs.has(l.slug))
  for (const slug of new Set(leases.map((l) => l.slug))) {
    if (!options.dryRun) yield* state.releaseLeases(slug)
  }
  for (const l of leases) removed.push(`lease ${l.pool}#${l.index} (${l.slug})`)
  return removed
})
