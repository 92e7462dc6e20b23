/**
 * Bottles as they exist: state dirs joined with what the Docker engine has under our slug
 * label. `teardown` is `bottle stop`: it works from the label and the state dir alone, so it
 * can stop a bottle launched by another process (detach) or left by a crash.
 *
 * The engine is shared with other state roots (other users, other BOTTLE_STATE_DIRs): only
 * objects labelled with this root's id are this root's. `ls`, `stop` and `cleanup` never
 * look at, stop or remove another root's objects, whatever their slugs.
 */
import { Cause, Effect, Exit, Option, Redacted } from "effect"
import { BottleMeta, BottlePlan } from "../schema/BottlePlan.ts"
import { Docker, type LabelledResource } from "../services/Docker.ts"
import { GitHost } from "../services/GitHost.ts"
import { StateError, StateNotFound, StateStore } from "../services/StateStore.ts"
import { bottleNames, stateRootId } from "./bottleNames.ts"
import { LaunchError, RevocationFailed } from "./launch.ts"

/**
 * degraded: some containers are not running; unhealthy: the sidecar reports a crashed daemon;
 * unknown: the Docker engine could not be asked.
 */
export type BottleStatus = "running" | "stopped" | "degraded" | "unhealthy" | "unknown"

export interface BottleRow {
  readonly slug: string
  readonly agent: string
  readonly backend: string
  readonly status: BottleStatus
  readonly createdAt: string
  readonly containers: ReadonlyArray<string>
}

const statusOf = (root: string, slug: string, resources: ReadonlyArray<LabelledResource>): BottleStatus => {
  const mine = resources.filter((r) => r.slug === slug && r.kind === "container")
  if (mine.length === 0) return "stopped"
  const names = bottleNames(root, slug)
  const running = (name: string) => mine.some((r) => r.name === name && r.state === "running")
  if (!running(names.agent) || !running(names.bundle)) return "degraded"
  return mine.some((r) => r.name === names.bundle && r.health === "unhealthy") ? "unhealthy" : "running"
}

/** This root's objects. Unlabelled ones (made before roots were labelled) are no root's. */
const ofRoot = (root: string) => {
  const id = stateRootId(root)
  return (resources: ReadonlyArray<LabelledResource>) => resources.filter((r) => r.root === id)
}

export const listBottles = Effect.fn("listBottles")(function*() {
  const state = yield* StateStore
  const docker = yield* Docker
  const slugs = yield* state.list
  if (slugs.length === 0) return []
  // With the engine unreachable, the bottles are still listed: their status is unknown.
  const resources = yield* docker.listLabelled().pipe(Effect.map(ofRoot(state.root)), Effect.option)
  const rows: Array<BottleRow> = []
  for (const slug of slugs) {
    const plan = yield* state.readJson(slug, "plan.json", BottlePlan).pipe(Effect.option)
    const meta = yield* state.readJson(slug, "meta.json", BottleMeta).pipe(Effect.option)
    rows.push({
      slug,
      agent: Option.match(plan, { onNone: () => "?", onSome: (p) => p.agent }),
      backend: Option.match(plan, { onNone: () => "?", onSome: (p) => p.backend }),
      status: Option.match(resources, { onNone: () => "unknown" as const, onSome: (rs) => statusOf(state.root, slug, rs) }),
      createdAt: Option.match(meta, { onNone: () => "", onSome: (m) => m.createdAt }),
      containers: Option.match(resources, { onNone: () => [], onSome: (rs) => rs.filter((r) => r.slug === slug && r.kind === "container").map((r) => r.name) })
    })
  }
  return rows
})

export interface TeardownOptions {
  readonly purge: boolean
  readonly env: Record<string, string | undefined>
  /** Called as each recorded deploy key is revoked. */
  readonly onRevoked?: (key: { readonly repo: string; readonly id: number }) => void
}

/**
 * Revokes a bottle's recorded deploy keys: it needs the state dir and the git host only, never
 * the engine. No meta.json: nothing was recorded (the launch failed before any key). An
 * unreadable one is an error naming it: it may record keys we cannot see. Keys that could not
 * be revoked stay recorded, for the next `bottle stop`.
 */
const revokeRecordedKeys = Effect.fnUntraced(function*(slug: string, options: TeardownOptions) {
  const state = yield* StateStore
  const gitHost = yield* GitHost
  const recorded = yield* state.readJsonIfAny(slug, "meta.json", BottleMeta)
  if (Option.isNone(recorded)) return []
  const meta = recorded.value
  const failed: Array<{ repo: string; id: number; message: string }> = []
  const remaining: Array<BottleMeta["deployKeys"][number]> = []
  for (const k of meta.deployKeys) {
    const revoked = yield* gitHost.revokeDeployKey(k, Redacted.make(options.env[k.tokenEnv] ?? "")).pipe(
      Effect.as(true),
      Effect.catch((e) => Effect.sync(() => (failed.push({ repo: k.repo, id: k.id, message: e.message }), false)))
    )
    if (revoked) yield* Effect.sync(() => options.onRevoked?.(k))
    else remaining.push(k)
  }
  if (remaining.length !== meta.deployKeys.length) yield* state.writeJson(slug, "meta.json", { ...meta, deployKeys: remaining })
  return failed
})

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
  const docker = yield* Docker
  const exists = yield* state.exists(slug)

  const revocation = exists ? yield* Effect.exit(revokeRecordedKeys(slug, options)) : Exit.succeed([])
  const revocationCause: Cause.Cause<LaunchError | StateError> = Exit.isFailure(revocation)
    ? revocation.cause
    : revocation.value.length > 0
    ? Cause.fail(new LaunchError({ reason: new RevocationFailed({ keys: revocation.value }) }))
    : Cause.empty

  // No state and no engine to ask: there is no such bottle as far as we can know (labelled
  // leftovers of a crash are `bottle cleanup`'s business once the engine is back).
  const removal = yield* Effect.exit(Effect.gen(function*() {
    // This root's objects of the slug, and unlabelled ones a version before root labels left
    // (their names collided across roots then, so at most one root can have them).
    const rootId = stateRootId(state.root)
    const resources = yield* docker.listLabelled(slug).pipe(
      Effect.map((rs) => rs.filter((r) => r.root === rootId || r.root === undefined)),
      Effect.catch((e) => (!exists && e.reason._tag === "Unavailable" ? Effect.succeed([]) : Effect.fail(e)))
    )
    if (!exists && resources.length === 0) return yield* new StateError({ reason: new StateNotFound({ slug }) })
    const order = { container: 0, network: 1, volume: 2 } as const
    const problems: Array<string> = []
    let stuck = false
    for (const r of [...resources].sort((a, b) => order[a.kind] - order[b.kind])) {
      const remove = r.kind === "container" ? docker.removeContainer(r.name) : r.kind === "network" ? docker.removeNetwork(r.name) : docker.removeVolume(r.name)
      yield* remove.pipe(Effect.catch((e) =>
        Effect.sync(() => {
          problems.push(`${r.kind} ${r.name}: ${e.message}`)
          if (r.kind !== "volume") stuck = true
        })
      ))
    }
    // The subnet is free once the networks are gone (or were never there). A network (or a
    // container holding one) still there keeps it: the next bottle given that subnet could not
    // create its network over the old one.
    if (!stuck) yield* state.releaseLeases(slug)
    return problems
  }))

  const cause = Cause.combine(revocationCause, Exit.isFailure(removal) ? removal.cause : Cause.empty)
  if (cause.reasons.length > 0 || Exit.isFailure(removal)) return yield* Effect.failCause(cause)
  // Purged only when no key is left alive, the engine answered and nothing was left behind
  // (the state is what a later `bottle stop` works from).
  if (options.purge && removal.value.length === 0) yield* state.removeBottle(slug)
  return removal.value
})

/**
 * Everything labelled with this root whose bottle is gone (no state dir), and leases of gone
 * bottles. Another root's objects are never orphans here, whatever their slug.
 */
export const cleanup = Effect.fn("cleanup")(function*(options: { readonly dryRun: boolean }) {
  const state = yield* StateStore
  const docker = yield* Docker
  const slugs = new Set(yield* state.list)
  const orphans = ofRoot(state.root)(yield* docker.listLabelled()).filter((r) => !slugs.has(r.slug))
  const order = { container: 0, network: 1, volume: 2 } as const
  const removed: Array<string> = []
  for (const r of [...orphans].sort((a, b) => order[a.kind] - order[b.kind])) {
    if (!options.dryRun) {
      const remove = r.kind === "container" ? docker.removeContainer(r.name) : r.kind === "network" ? docker.removeNetwork(r.name) : docker.removeVolume(r.name)
      yield* remove
    }
    removed.push(`${r.kind} ${r.name}`)
  }
  const leases = (yield* state.allLeases).filter((l) => !slugs.has(l.slug))
  for (const slug of new Set(leases.map((l) => l.slug))) {
    if (!options.dryRun) yield* state.releaseLeases(slug)
  }
  for (const l of leases) removed.push(`lease ${l.pool}#${l.index} (${l.slug})`)
  return removed
})
