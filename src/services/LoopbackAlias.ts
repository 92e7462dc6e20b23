/**
 * Per-bottle loopback aliases (127.0.0.x) on macOS, where the bundle's ports are published on
 * an address of the bottle's own, so a VM allowed to reach it cannot reach another bottle's
 * ports or host services on 127.0.0.1. The pool is leased through the StateStore.
 */
import { Context, Effect, Schema, Scope } from "effect"

export class LoopbackAliasError extends Schema.TaggedError<LoopbackAliasError>()("LoopbackAliasError", {
  address: Schema.String,
  message: Schema.String
}) {}

export class LoopbackAlias extends Context.Service<LoopbackAlias, {
  /** Scoped: a leased 127.0.0.x alias is added now and removed when the scope closes. */
  readonly alias: (slug: string) => Effect.Effect<string, LoopbackAliasError, Scope.Scope>
}>()("bot-bottle/LoopbackAlias") {}
