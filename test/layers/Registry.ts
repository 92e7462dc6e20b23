/**
 * Fake ephemeral Registry for the smolmachines image pipeline: the scoped `ephemeral` records
 * acquire/release in the Recorder (or fails at start when told to); `pushArchive` must be
 * stubbed by the test, else it dies loudly.
 */
import { Effect, Layer } from "effect"
import { Registry, RegistryError, type EphemeralRegistry } from "../../src/services/Registry.ts"
import { Recorder } from "./Recorder.ts"

type Service = Registry["Service"]

export interface FakeRegistryOptions extends Partial<Omit<Service, "ephemeral">> {
  /** `ephemeral` fails (step "start") without acquiring anything. */
  readonly failStart?: boolean
  /** Host port the fake registry claims to listen on (default 5000). */
  readonly port?: number
}

const unexpected = (name: string) => Effect.die(new Error(`fake Registry: unexpected call to ${name}`))

export const layerTest = (options: FakeRegistryOptions = {}) =>
  Layer.effect(Registry, Effect.gen(function*() {
    const rec = yield* Recorder
    const { pushArchive } = options
    const start = (session: string): Effect.Effect<EphemeralRegistry, RegistryError> =>
      options.failStart
        ? Effect.fail(new RegistryError({ step: "start", message: "fake registry: told to fail" }))
        : rec.record(`acquire registry ${session}`).pipe(Effect.as({
          hostAddress: `localhost:${options.port ?? 5000}`,
          networkAddress: `bottle-reg-${session}:5000`,
          network: `bottle-reg-${session}`
        }))
    return Registry.of({
      ephemeral: (session) =>
        rec.gate(`registry ${session}`).pipe(
          Effect.andThen(Effect.acquireRelease(start(session), () => rec.record(`release registry ${session}`)))
        ),
      pushArchive: pushArchive
        ? (registry, tarPath, repoTag) => rec.record(`push ${repoTag}`).pipe(Effect.andThen(pushArchive(registry, tarPath, repoTag)))
        : () => unexpected("pushArchive")
    })
  }))
