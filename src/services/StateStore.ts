/**
 * Per-bottle state on the host: one directory per bottle (plan, daemon configs, CA, audit
 * log, metadata of what was acquired), and leases for per-bottle addresses. Leases are the
 * reason concurrent bottles never collide: allocation is an atomic create of a lease file,
 * not a hash of the name. A slug holds at most one index per pool, even when several
 * launches of it take their lease at once: they all get the same one.
 */
import { Context, Effect, type Option, Schema, Scope } from "effect"

export class StateIo extends Schema.TaggedClass<StateIo>()("Io", { path: Schema.String, message: Schema.String }) {}
export class StateNotFound extends Schema.TaggedClass<StateNotFound>()("NotFound", { slug: Schema.String }) {}
export class StateExists extends Schema.TaggedClass<StateExists>()("Exists", { slug: Schema.String }) {}
export class StateExhausted extends Schema.TaggedClass<StateExhausted>()("Exhausted", { pool: Schema.String }) {}
export class StateCorrupt extends Schema.TaggedClass<StateCorrupt>()("Corrupt", { path: Schema.String, message: Schema.String }) {}

export class StateError extends Schema.TaggedError<StateError>()("StateError", {
  reason: Schema.Union([StateIo, StateNotFound, StateExists, StateExhausted, StateCorrupt])
}) {
  override get message(): string {
    const r = this.reason
    switch (r._tag) {
      case "Io":
        return `state dir: ${r.path}: ${r.message}`
      case "NotFound":
        return `no bottle named "${r.slug}" (see \`bottle ls\`)`
      case "Exists":
        return `bottle ${r.slug} already exists: \`bottle resume ${r.slug}\`, or \`bottle stop ${r.slug} --purge\` first (or pick another --name)`
      case "Exhausted":
        return `no free ${r.pool} left: stop or clean up other bottles (\`bottle cleanup\`)${r.pool === "subnet" ? "; subnets other networks on the Docker engine use (anyone's: \`docker network ls\`) are not free either" : ""}`
      case "Corrupt":
        return `state file ${r.path} is unreadable: ${r.message}`
    }
  }
}

/** A leased value from a named pool (e.g. pool "subnet" value "10.243.7.0/24"). */
export interface Lease {
  readonly pool: string
  readonly index: number
  readonly slug: string
}

export interface LeaseOptions {
  /**
   * Indices not to hand out (e.g. subnets the engine already has). A slug holding one of them
   * gives it up and gets another.
   */
  readonly avoid?: ReadonlySet<number>
  /**
   * Asked when the scope of `lease` closes: true keeps a lease this call took (something kept
   * for the slug is bound to the address, e.g. a stopped microVM's allowlist); it is then freed
   * by `releaseLeases` (`bottle stop --purge`, `bottle cleanup`). Absent: released.
   */
  readonly keepIf?: Effect.Effect<boolean> | undefined
}

export class StateStore extends Context.Service<StateStore, {
  readonly root: string
  readonly bottleDir: (slug: string) => string
  /** Creates the bottle dir (0700); fails with Exists if it is there. Scoped: removed again if the scope fails. */
  readonly createBottleDir: (slug: string) => Effect.Effect<string, StateError, Scope.Scope>
  readonly writeFile: (slug: string, relPath: string, content: string, mode?: number) => Effect.Effect<string, StateError>
  readonly readFile: (slug: string, relPath: string) => Effect.Effect<string, StateError>
  readonly writeJson: (slug: string, relPath: string, value: unknown) => Effect.Effect<string, StateError>
  readonly readJson: <A>(slug: string, relPath: string, schema: Schema.Codec<A, unknown>) => Effect.Effect<A, StateError>
  /** `readJson`, with None when the file does not exist (a missing bottle dir included). */
  readonly readJsonIfAny: <A>(slug: string, relPath: string, schema: Schema.Codec<A, unknown>) => Effect.Effect<Option.Option<A>, StateError>
  /** A JSON file at the root, beside the bottles (e.g. grants.json): None when absent. */
  readonly readRootJson: <A>(name: string, schema: Schema.Codec<A, unknown>) => Effect.Effect<Option.Option<A>, StateError>
  /** Writes a JSON file at the root, atomically, 0600. */
  readonly writeRootJson: (name: string, value: unknown) => Effect.Effect<string, StateError>
  readonly exists: (slug: string) => Effect.Effect<boolean, StateError>
  readonly list: Effect.Effect<ReadonlyArray<string>, StateError>
  readonly removeBottle: (slug: string) => Effect.Effect<void, StateError>
  /** The index this slug holds in `pool`, or the lowest free one (read-only: for plans). */
  readonly peekLease: (pool: string, size: number, slug: string) => Effect.Effect<number, StateError>
  /** Takes (or re-takes, idempotently) an index in `pool` for `slug`. */
  readonly takeLease: (pool: string, size: number, slug: string, options?: LeaseOptions) => Effect.Effect<Lease, StateError>
  /**
   * Scoped: taken now, released when the scope closes, if this call took it. A lease the slug
   * already held (another launch of it is running, or a crashed one left it) is left alone.
   */
  readonly lease: (pool: string, size: number, slug: string, options?: LeaseOptions) => Effect.Effect<Lease, StateError, Scope.Scope>
  readonly releaseLeases: (slug: string) => Effect.Effect<void, StateError>
  readonly leasesOf: (slug: string) => Effect.Effect<ReadonlyArray<Lease>, StateError>
  readonly allLeases: Effect.Effect<ReadonlyArray<Lease>, StateError>
}>()("bot-bottle/StateStore") {}
