/**
 * Fake Smolvm for program tests: the scoped `machine` records acquire/release in the Recorder
 * (release can be told to fail: it logs, never fails, like the live one). Every other method
 * must be stubbed by the test; an unstubbed call dies loudly.
 */
import { Effect, Layer } from "effect"
import { Smolvm } from "../../src/services/Smolvm.ts"
import { Recorder } from "./Recorder.ts"

type Service = Smolvm["Service"]

export interface FakeSmolvmOptions extends Partial<Omit<Service, "machine">> {
  /** Machine names whose stop + delete fails on release. */
  readonly failRelease?: ReadonlyArray<string>
}

const unexpected = (name: string) => Effect.die(new Error(`fake Smolvm: unexpected call to ${name}`))

export const layerTest = (options: FakeSmolvmOptions = {}) =>
  Layer.effect(Smolvm, Effect.gen(function*() {
    const rec = yield* Recorder
    const { exec, packCreate, remove } = options
    return Smolvm.of({
      version: options.version ?? unexpected("version"),
      ensureRecent: options.ensureRecent ?? unexpected("ensureRecent"),
      execInteractive: options.execInteractive ?? (() => unexpected("execInteractive")),
      copyTo: options.copyTo ?? (() => unexpected("copyTo")),
      copyFrom: options.copyFrom ?? (() => unexpected("copyFrom")),
      list: options.list ?? unexpected("list"),
      create: options.create ? (spec) => rec.record(`create machine ${spec.name}`).pipe(Effect.andThen(options.create!(spec))) : () => unexpected("create"),
      start: options.start ? (name, o) => rec.record(`start machine ${name}`).pipe(Effect.andThen(options.start!(name, o))) : () => unexpected("start"),
      stop: options.stop ? (name) => rec.record(`stop machine ${name}`).pipe(Effect.andThen(options.stop!(name))) : () => unexpected("stop"),
      packCreate: packCreate
        ? (image, out) => rec.record(`pack ${image}`).pipe(Effect.andThen(packCreate(image, out)))
        : () => unexpected("packCreate"),
      // The gate sits before acquireRelease so an interrupt can land while this step is in progress.
      machine: (spec) =>
        rec.gate(`machine ${spec.name}`).pipe(
          Effect.andThen(Effect.acquireRelease(
            rec.record(`acquire machine ${spec.name}`).pipe(Effect.as({ name: spec.name })),
            (m) =>
              rec.record(`release machine ${m.name}`).pipe(
                Effect.andThen(
                  options.failRelease?.includes(m.name)
                    ? Effect.logError(`fake Smolvm: could not delete machine ${m.name}`)
                    : Effect.void
                )
              )
          ))
        ),
      exec: exec
        ? (name, argv, env) =>
          rec.gate(`exec ${name}`).pipe(Effect.andThen(rec.record(`exec ${name} ${argv[0]}`)), Effect.andThen(exec(name, argv, env)))
        : () => unexpected("exec"),
      remove: remove ? (name) => rec.record(`remove machine ${name}`).pipe(Effect.andThen(remove(name))) : () => unexpected("remove")
    })
  }))
