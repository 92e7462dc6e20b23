/**
 * An ephemeral OCI registry for the smolmachines image pipeline: a registry container on a
 * private per-session network, pushed to by a one-shot skopeo container on that network over
 * plain HTTP (sidestepping the daemon's insecure-registry policy), torn down afterwards.
 */
import { Context, Effect, Schema, Scope } from "effect"

export class RegistryError extends Schema.TaggedError<RegistryError>()("RegistryError", {
  step: Schema.Literals(["image", "start", "push", "ready"]),
  message: Schema.String
}) {}

export interface EphemeralRegistry {
  /** Host-reachable address, e.g. "127.0.0.1:41234" (loopback: plain HTTP is allowed there). */
  readonly hostAddress: string
  /** Address on the private network, e.g. "bottle-reg-ab12:5000". */
  readonly networkAddress: string
  readonly network: string
}

export class Registry extends Context.Service<Registry, {
  /**
   * Scoped: a registry container on a private network of its own, published on 127.0.0.1 (an
   * ephemeral port), answering before this returns. The container and its network are removed
   * when the scope closes (success, failure, interruption).
   */
  readonly ephemeral: (session: string) => Effect.Effect<EphemeralRegistry, RegistryError, Scope.Scope>
  /**
   * Pushes a `docker save` tarball into the registry as `repo:tag` with a one-shot pusher
   * container on the registry's network (removed even when interrupted); returns the host-side ref.
   */
  readonly pushArchive: (registry: EphemeralRegistry, tarPath: string, repoTag: string) => Effect.Effect<string, RegistryError>
}>()("bot-bottle/Registry") {}
