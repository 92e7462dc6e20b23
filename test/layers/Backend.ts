/**
 * Fake Backend for program tests: its scoped acquisitions (network, bundle, sandbox) record
 * acquire/release in the Recorder, each behind a gate so a test can interrupt a launch at
 * exactly that step; the sandbox's provisioning has its own gate. A release can be told to
 * fail; it then really fails (it dies, harsher than a live layer, which logs and never fails),
 * to prove that a broken release cannot skip the ones behind it. The specs the bundle and the
 * sandbox were given are kept for inspection. Its substrate has the subnets `addressesInUse`
 * (none unless told); a network on a subnet in `takenMeanwhile` (taken since the look) is
 * refused with AddressTaken, recorded as `refused network <slug> <subnet>`. Methods a test did
 * not stub die loudly.
 */
import { Effect, Layer } from "effect"
import {
  Backend,
  BackendAddressTaken,
  BackendError,
  BackendFailed,
  type BottleState,
  type BundleSpec,
  type SandboxSpec
} from "../../src/services/Backend.ts"
import { Recorder } from "./Recorder.ts"

export interface FakeBackendOptions {
  /** Parts ("network", "bundle", "sandbox") whose release dies with "boom". */
  readonly failRelease?: ReadonlyArray<"network" | "bundle" | "sandbox">
  /** The bundle never gets ready: it fails with this message (e.g. an unhealthy daemon). */
  readonly bundleFailure?: string
  readonly attachExitCode?: number
  /** Receives the spec of every bundle and sandbox started (to check what each was given). */
  readonly bundles?: Array<BundleSpec>
  readonly sandboxes?: Array<SandboxSpec>
  /** Subnets the substrate already has networks on (anyone's). */
  readonly addressesInUse?: ReadonlyArray<string>
  /** Subnets taken on the substrate after the look: a network on one of them is refused (AddressTaken). */
  readonly takenMeanwhile?: ReadonlyArray<string>
  /** The isolation probe's report (default: a pass); it is recorded as `probe <slug>` when given. */
  readonly probe?: Backend["Service"]["probe"]
  /** The session ends with the detach keys instead of an exit. */
  readonly detach?: boolean
  /** Overrides, for the methods launch does not use (inspect, remove, ...). Unset: they die. */
  readonly stub?: Partial<Backend["Service"]>
}

const unexpected = (name: string) => () => Effect.die(new Error(`fake Backend: unexpected call to ${name}`))

export const layerTest = (options: FakeBackendOptions = {}) =>
  Layer.effect(Backend, Effect.gen(function*() {
    const rec = yield* Recorder
    /** The gate sits before acquireRelease: an acquisition itself is uninterruptible. */
    const scoped = (part: "network" | "bundle" | "sandbox", slug: string) =>
      rec.gate(`${part} ${slug}`).pipe(
        Effect.andThen(Effect.acquireRelease(rec.record(`acquire ${part} ${slug}`), () =>
          rec.record(`release ${part} ${slug}`).pipe(
            Effect.andThen(options.failRelease?.includes(part) ? Effect.die(new Error(`release ${part} ${slug}: boom`)) : Effect.void)
          )))
      )
    return Backend.of({
      name: "fake",
      preflight: Effect.void,
      images: () => Effect.succeed({ agent: "fake/agent:1", bundle: "fake/bundle:1" }),
      addressesInUse: Effect.succeed(options.addressesInUse ?? []),
      network: (plan) =>
        options.takenMeanwhile?.includes(plan.network.subnet)
          ? rec.record(`refused network ${plan.slug} ${plan.network.subnet}`).pipe(Effect.andThen(Effect.fail(new BackendError({
            backend: "fake",
            reason: new BackendAddressTaken({ subnet: plan.network.subnet, message: `${plan.network.subnet} is taken` })
          }))))
          : scoped("network", plan.slug).pipe(Effect.as({ complete: Effect.void })),
      bundle: (plan, _network, spec) =>
        Effect.sync(() => options.bundles?.push(spec)).pipe(
          Effect.andThen(scoped("bundle", plan.slug)),
          Effect.andThen(
            options.bundleFailure === undefined ? Effect.void : Effect.fail(new BackendError({ backend: "fake", reason: new BackendFailed({ message: options.bundleFailure }) }))
          )
        ),
      sandbox: (plan, _network, spec) =>
        Effect.sync(() => options.sandboxes?.push(spec)).pipe(
          Effect.andThen(scoped("sandbox", plan.slug)),
          Effect.andThen(rec.gate(`provision ${plan.slug}`)),
          Effect.andThen(rec.record(`provision ${plan.slug}`))
        ),
      exec: unexpected("exec"),
      attach: (plan) => rec.gate(`attach ${plan.slug}`).pipe(Effect.andThen(rec.record(`attach ${plan.slug}`)), Effect.as(options.attachExitCode ?? 0)),
      inspect: unexpected("inspect") as (slug?: string) => Effect.Effect<ReadonlyArray<BottleState>, BackendError>,
      logs: unexpected("logs"),
      probe: options.probe
        ? (plan) => rec.gate(`probe ${plan.slug}`).pipe(Effect.andThen(rec.record(`probe ${plan.slug}`)), Effect.andThen(options.probe!(plan)))
        : () => Effect.succeed({ ok: true, results: [], problems: [] }),
      session: (plan) =>
        rec.gate(`attach ${plan.slug}`).pipe(
          Effect.andThen(rec.record(`attach ${plan.slug}`)),
          Effect.as(options.detach ? { _tag: "Detached" as const } : { _tag: "Exited" as const, exitCode: options.attachExitCode ?? 0 })
        ),
      copyOut: unexpected("copyOut"),
      copyIn: unexpected("copyIn"),
      remove: unexpected("remove"),
      removeOrphans: unexpected("removeOrphans"),
      ...options.stub
    })
  }))
