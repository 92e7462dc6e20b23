/**
 * Fake Docker for program tests: scoped constructors record acquire/release in the Recorder.
 * The engine's networks are `engineNetworks` (none unless told) plus those created here; a
 * network whose subnet overlaps one of them is refused the way the live layer reports it
 * (SubnetOverlap), so subnet leasing can be tested against a crowded engine.
 * Removal can be told to fail; a scoped container's release then really fails (it dies,
 * harsher than the live layer, which logs and never fails), to prove that a broken release
 * cannot skip the ones behind it. The engine can be told to be unreachable. Methods a test did
 * not expect die loudly.
 */
import { Effect, Layer } from "effect"
import {
  Docker,
  DockerCommandFailed,
  DockerError,
  DockerNotFound,
  DockerSubnetOverlap,
  DockerUnavailable,
  type ContainerSpec,
  type LabelledResource,
  type NetworkSpec,
  type VolumeSpec
} from "../../src/services/Docker.ts"
import { Recorder } from "./Recorder.ts"

export interface FakeDockerOptions {
  /** Container or network name suffixes (e.g. "-agent", "-int") whose removal fails. */
  readonly failRemove?: ReadonlyArray<string>
  /** What the bundle's log says (readiness line). */
  readonly bundleStatus?: string
  readonly provisionExitCode?: number
  readonly attachExitCode?: number
  /** What `listLabelled` finds (filtered by slug), or "unavailable": the engine does not answer. Unset: it dies. */
  readonly labelled?: ReadonlyArray<LabelledResource> | "unavailable"
  /** Receives the spec of every container started (to check what a container was given). */
  readonly started?: Array<ContainerSpec>
  /** Networks the engine already has (anyone's), by name and subnets. */
  readonly engineNetworks?: ReadonlyArray<{ readonly name: string; readonly subnets: ReadonlyArray<string> }>
  /**
   * Subnets someone else takes on the engine between `networkSubnets` and `createNetwork`
   * (a race): invisible to the listing, refused with SubnetOverlap on create.
   */
  readonly takenMeanwhile?: ReadonlyArray<string>
  /** Volumes the engine already has (a resumed bottle's); those created are added. */
  readonly volumes?: ReadonlyArray<string>
  /** Receives the spec of every volume created. */
  readonly volumeSpecs?: Array<VolumeSpec>
}

const unreachable = new DockerError({ reason: new DockerUnavailable({ message: "Cannot connect to the Docker daemon at unix:///fake.sock" }) })

const unexpected = (name: string) => () => Effect.die(new Error(`fake Docker: unexpected call to ${name}`))

export const layerTest = (options: FakeDockerOptions = {}) =>
  Layer.effect(Docker, Effect.gen(function*() {
    const rec = yield* Recorder
    const networks = new Map<string, ReadonlyArray<string>>((options.engineNetworks ?? []).map((n) => [n.name, n.subnets]))
    const volumes = new Set<string>(options.volumes ?? [])
    // Exact-match overlap is enough here: the fake's subnets are all /24s of the pool.
    const createNetwork = (spec: NetworkSpec) => {
      const subnet = spec.subnet
      if (subnet && ([...networks.values()].some((s) => s.includes(subnet)) || options.takenMeanwhile?.includes(subnet))) {
        return rec.record(`refused network ${spec.name} ${subnet}`).pipe(
          Effect.andThen(Effect.fail(new DockerError({ reason: new DockerSubnetOverlap({ network: spec.name, subnet, stderr: "Pool overlaps with other one on this address space" }) })))
        )
      }
      return Effect.sync(() => networks.set(spec.name, subnet ? [subnet] : [])).pipe(
        Effect.andThen(rec.record(`acquire network ${spec.name}`)),
        Effect.as({ id: spec.name, name: spec.name })
      )
    }
    const failure = (argv: ReadonlyArray<string>) => new DockerError({ reason: new DockerCommandFailed({ argv: [...argv], exitCode: 1, stderr: "boom" }) })
    const removeNetwork = (name: string) =>
      Effect.sync(() => networks.delete(name)).pipe(
        Effect.andThen(rec.record(`release network ${name}`)),
        Effect.andThen(options.failRemove?.some((suffix) => name.endsWith(suffix)) ? Effect.fail(failure(["docker", "network", "rm", name])) : Effect.void)
      )
    const runContainer = (spec: ContainerSpec) =>
      Effect.sync(() => options.started?.push(spec)).pipe(
        Effect.andThen(rec.record(`acquire container ${spec.name}`)),
        Effect.as({ id: spec.name, name: spec.name })
      )
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
      networkSubnets: Effect.sync(() => [...networks].map(([name, subnets]) => ({ name, subnets }))),
      // The gate sits before acquireRelease: an acquisition itself is uninterruptible, so an
      // interrupt lands between steps (or waits for the step in progress to finish).
      network: (spec) =>
        rec.gate(`network ${spec.name}`).pipe(Effect.andThen(Effect.acquireRelease(createNetwork(spec), (n) => removeNetwork(n.name).pipe(Effect.orDie)))),
      runContainer,
      removeContainer,
      connectNetwork: (container, network) => rec.record(`connect ${container} ${network.name}`),
      container: (spec) =>
        rec.gate(`container ${spec.name}`).pipe(Effect.andThen(Effect.acquireRelease(runContainer(spec), (c) => removeContainer(c.name).pipe(Effect.orDie)))),
      startContainer: unexpected("startContainer"),
      stopContainer: unexpected("stopContainer"),
      containerState: () => Effect.succeed({ running: true, status: "running" }),
      exec: (container, argv) =>
        rec.gate(`exec ${container}`).pipe(
            Effect.andThen(rec.record(`exec ${container} ${argv[0]}`)),
            Effect.as(
              // The isolation probe (src/programs/isolationProbe.ts): the fake's containers are
              // isolated, so the bundle answers and nothing else does.
              argv[0] === "node" && argv[1] === "-e" && argv[2]?.includes("/proc/net/route")
                ? { stdout: JSON.stringify((JSON.parse(argv[3] ?? "[]") as Array<{ expect: string }>).map((t) => ({ ...t, outcome: t.expect === "open" ? "connected" : "timeout" }))), stderr: "", exitCode: 0 }
                : { stdout: "", stderr: "", exitCode: options.provisionExitCode ?? 0 }
            )
          ),
      execInteractive: (container) =>
        rec.gate(`attach ${container}`).pipe(Effect.andThen(rec.record(`attach ${container}`)), Effect.as(options.attachExitCode ?? 0)),
      copyTo: (container) => rec.record(`copy ${container}`),
      waitForLogLine: (_container, match) =>
        Effect.succeed((options.bundleStatus ?? "bottle-bundle: ready (egress)\n").split("\n").find(match)),
      logs: unexpected("logs"),
      listLabelled: (slug) => {
        const labelled = options.labelled
        if (labelled === undefined) return unexpected("listLabelled")()
        return rec.record(`list ${slug ?? "*"}`).pipe(
          Effect.andThen(labelled === "unavailable" ? Effect.fail(unreachable) : Effect.succeed(labelled.filter((r) => slug === undefined || r.slug === slug)))
        )
      },
      removeVolume: (name) => Effect.sync(() => volumes.delete(name)).pipe(Effect.andThen(rec.record(`release volume ${name}`))),
      createVolume: (spec) =>
        Effect.sync(() => {
          volumes.add(spec.name)
          options.volumeSpecs?.push(spec)
        }).pipe(Effect.andThen(rec.record(`acquire volume ${spec.name}`))),
      volumeMountpoint: (name) =>
        volumes.has(name)
          ? Effect.succeed(`/var/lib/docker/volumes/${name}/_data`)
          : Effect.fail(new DockerError({ reason: new DockerNotFound({ what: `No such volume: ${name}` }) })),
      copyFrom: (container) => rec.record(`copy from ${container}`)
    })
  }))
