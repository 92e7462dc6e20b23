/**
 * The user cache dir: build-context hashes and artifacts (e.g. `.smolmachine` packs keyed by
 * image id). Writes are atomic (temp file + rename), so a crash never leaves a half artifact
 * that a later run would trust; each entry's size and digest are recorded at `put` and checked
 * at `get` (a corrupt entry is removed and reported missing, so it is rebuilt, never used);
 * the cache is bounded, evicting the least recently used entries first; `lock` serializes the
 * producers of one entry across processes.
 */
import { Context, type Effect, Schema, type Scope } from "effect"

export class CacheError extends Schema.TaggedError<CacheError>()("CacheError", {
  path: Schema.String,
  message: Schema.String
}) {}

export interface CacheEntry {
  readonly namespace: string
  readonly key: string
  readonly path: string
  readonly size: number
  readonly lastUsedMs: number
}

export class Cache extends Context.Service<Cache, {
  readonly root: string
  /** Path of a cached artifact, if present. */
  readonly get: (namespace: string, key: string) => Effect.Effect<string | undefined, CacheError>
  /** Moves `file` into the cache atomically; returns its cached path. */
  readonly put: (namespace: string, key: string, file: string) => Effect.Effect<string, CacheError>
  /** A fresh temp path inside the cache (same filesystem, so `put` is a rename). */
  readonly tempPath: (namespace: string) => Effect.Effect<string, CacheError>
  readonly remove: (namespace: string, key: string) => Effect.Effect<void, CacheError>
  /**
   * Scoped: an exclusive lock on one entry, across processes (a lock file made with O_EXCL; one
   * left by a process that died is taken over). Waits while another holder has it.
   */
  readonly lock: (namespace: string, key: string) => Effect.Effect<void, CacheError, Scope.Scope>
  /** Every entry (oldest use first). */
  readonly entries: Effect.Effect<ReadonlyArray<CacheEntry>, CacheError>
  /** Removes every entry of `namespace` not locked by a producer; returns them. */
  readonly clear: (namespace: string) => Effect.Effect<ReadonlyArray<CacheEntry>, CacheError>
}>()("bot-bottle/Cache") {}
