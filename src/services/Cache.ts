/**
 * The user cache dir: build-context hashes and artifacts (e.g. `.smolmachine` packs keyed by
 * image id). Writes are atomic (temp file + rename), so a crash never leaves a half artifact
 * that a later run would trust.
 */
import { Context, Effect, Schema } from "effect"

export class CacheError extends Schema.TaggedError<CacheError>()("CacheError", {
  path: Schema.String,
  message: Schema.String
}) {}

export class Cache extends Context.Service<Cache, {
  readonly root: string
  /** Path of a cached artifact, if present. */
  readonly get: (namespace: string, key: string) => Effect.Effect<string | undefined, CacheError>
  /** Moves `file` into the cache atomically; returns its cached path. */
  readonly put: (namespace: string, key: string, file: string) => Effect.Effect<string, CacheError>
  /** A fresh temp path inside the cache (same filesystem, so `put` is a rename). */
  readonly tempPath: (namespace: string) => Effect.Effect<string, CacheError>
  readonly remove: (namespace: string, key: string) => Effect.Effect<void, CacheError>
}>()("bot-bottle/Cache") {}
