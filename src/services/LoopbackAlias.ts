/**
 * Where a bottle's VM finds its bundle, per platform (DESIGN.md, Backends, smolmachines).
 *
 * On macOS the bundle's ports are published on a per-bottle loopback alias (127.0.0.x, leased
 * from a pool through the StateStore, added with `ifconfig lo0 alias`, which needs sudo), so a
 * VM allowed to reach it cannot reach another bottle's ports or host services on 127.0.0.1;
 * the VM's allowlist is that alias /32. On Linux no alias is needed: the VM reaches the
 * bundle's bridge address, and the allowlist is that address /32.
 */
import { Context, type Effect, Schema, type Scope } from "effect"

export class LoopbackAliasError extends Schema.TaggedError<LoopbackAliasError>()("LoopbackAliasError", {
  address: Schema.String,
  message: Schema.String
}) {}

/** What the VM is allowed to reach, and where the bundle's ports are published for it. */
export interface BundleEndpoint {
  /** The one address the VM may reach (`--allow-cidr`), e.g. "127.0.0.7/32" or "10.243.7.2/32". */
  readonly allowCidr: string
  /** The address the VM dials for the bundle (the alias, or the bridge address). */
  readonly address: string
  /** The host address the bundle's ports are published on (`-p ADDR:PORT:PORT`), if any. */
  readonly publishOn: string | undefined
}

export interface AliasOptions {
  /**
   * Asked when the scope closes: true keeps the alias's lease (not the alias itself) for the
   * slug, because something kept is bound to the address (a stopped machine's allowlist); the
   * next `alias` for the slug gets the same address. `bottle stop --purge` frees it.
   */
  readonly keepIf?: Effect.Effect<boolean> | undefined
}

export class LoopbackAlias extends Context.Service<LoopbackAlias, {
  /** Scoped: a leased 127.0.0.x alias is added now and removed when the scope closes. */
  readonly alias: (slug: string, options?: AliasOptions) => Effect.Effect<string, LoopbackAliasError, Scope.Scope>
  /** Scoped: the platform's endpoint for a bottle whose bundle has `bridgeIp` (macOS: an alias). */
  readonly endpoint: (slug: string, bridgeIp: string, options?: AliasOptions) => Effect.Effect<BundleEndpoint, LoopbackAliasError, Scope.Scope>
  /** The endpoint of a running bottle (its leased alias, or the bridge address), for exec and probes. */
  readonly current: (slug: string, bridgeIp: string) => Effect.Effect<BundleEndpoint, LoopbackAliasError>
  /** `bottle stop`: removes the alias of the slug's lease, if it holds one (the lease itself is freed by stop). */
  readonly release: (slug: string) => Effect.Effect<void, LoopbackAliasError>
  /** Whether this platform needs an alias (and so sudo): said up front in the plan. */
  readonly needsAlias: boolean
}>()("bot-bottle/LoopbackAlias") {}
