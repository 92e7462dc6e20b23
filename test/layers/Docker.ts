/**
 * Fake Docker for program tests: scoped constructors record acquire/release in the Recorder;
 * removal can be told to fail (to prove later releases still run). Methods a test did not
 * expect die loudly.
 */
import { Effect, Layer } from "effect"
import { Docker, DockerCommandFailed, DockerError, type ContainerSpec, type NetworkSpec } from "../../src/services/Docker.ts"
import { Recorder } from "./Recorder.ts"

export interface FakeDockerOptions {
  /** Container name suffixes (e.g. "-agent") whose removal fails. */
  readonly failRemove?: ReadonlyArray<string>
  /** What the bundle's log says (readiness line). */
  readonly bundleStatus?: string
  readonly provisionExitCode?: number
  readonly attachExitCode?: number
}

const unexpected = (name: string) => () => Effect.die(new Error(`fake Docker: unexpected call to ${name}`))

export const layerTest = (options: FakeDockerOptions = {}) =>
  Layer.effect(Docker, Effect.gen(function*() {
    const rec = yield* Recorder
    const createNetwork = (spec: NetworkSpec) => rec.record(`acquire network ${spec.name}`).pipe(Effect.as({ id: spec.name, name: spec.name }))
    const removeNetwork = (name: string) => rec.record(`release network ${name}`)
    const runContainer = (spec: ContainerSpec) => rec.record(`acquire container ${spec.name}`).pipe(Effect.as({ id: spec.name, name: spec.name }))
    const removeContainer = (name: string) =>
      rec.record(`release container ${name}`).pipe(
        Effect.andThen(
          options.failRemove?.some((suffix) => name.endsWith(suffix))
            ? Effect.fail(new DockerError({ reason: new DockerCommandFailed({ argv: ["docker", "rm", name], exitCode: 1, stderr: "boom" }) }))
            : Effect.void
        )
      )
    return Docker.of({
      info: Effect.succeed({ operatingSystem: "fake", serverVersion: "0" }),
      imageExists: () => Effect.succeed(true),
      imageId: () => Effect.succeed("sha256:fake"),
      pullImage: unexpected("pullImage"),
      build: unexpected("build"),
      saveImage: unexpected("saveImage"),
      imageRefs: unexpected("imageRefs"),
      removeImage: unexpected("removeImage"),
      createNetwork,
      removeNetwork,
      // The gate sits before acquireRelease: an acquisition itself is uninterruptible, so an
      // interrupt lands between steps (or waits for the step in progress to finish).
      network: (spec) =>
        rec.gate(`network ${spec.name}`).pipe(Effect.andThen(Effect.acquireRelease(createNetwork(spec), (n) => removeNetwork(n.name).pipe(Effect.catchCause(() => Effect.void))))),
      runContainer,
      removeContainer,
      connectNetwork: (container, network) => rec.record(`connect ${container} ${network.name}`),
      container: (spec) =>
        rec.gate(`container ${spec.name}`).pipe(Effect.andThen(Effect.acquireRelease(runContainer(spec), (c) =>
          removeContainer(c.name).pipe(Effect.catchCause((c2) => Effect.logError("fake: remove failed", c2)))))),
      startContainer: unexpected("startContainer"),
      stopContainer: unexpected("stopContainer"),
      containerState: () => Effect.succeed({ running: true, status: "running" }),
      exec: (container, argv) =>
        rec.gate(`exec ${container}`).pipe(
            Effect.andThen(rec.record(`exec ${container} ${argv[0]}`)),
            Effect.as({ stdout: "", stderr: "", exitCode: options.provisionExitCode ?? 0 })
          ),
      execInteractive: (container) =>
        rec.gate(`attach ${container}`).pipe(Effect.andThen(rec.record(`attach ${container}`)), Effect.as(options.attachExitCode ?? 0)),
      copyTo: (container) => rec.record(`copy ${container}`),
      waitForLogLine: (_container, match) =>
        Effect.succeed((options.bundleStatus ?? "bottle-bundle: ready (egress)\n").split("\n").find(match)),
      logs: unexpected("logs"),
      listLabelled: unexpected("listLabelled"),
      removeVolume: unexpected("removeVolume")
    })
  }))
