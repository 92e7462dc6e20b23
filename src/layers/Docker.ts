/**
 * Live Docker layer: drives the `docker` CLI through the shared ProcessRunner. Containers are
 * created, joined to their extra networks, then started, so a container never runs on fewer
 * networks than its spec says. Releases force-remove and log; they never fail. Secret env
 * values reach docker through its own environment, never its command line. JSON output is
 * decoded with Schema: output we do not understand is a typed error, not a guess.
 */
import { Effect, Layer, Redacted, Schema } from "effect"
import {
  Docker,
  DockerCommandFailed,
  DockerDecodeFailed,
  DockerError,
  DockerNotFound,
  DockerSubnetOverlap,
  DockerUnavailable,
  LABEL_ROOT,
  LABEL_SLUG,
  type ContainerSpec,
  type LabelledResource,
  type NetworkAttachment,
  type NetworkSpec
} from "../services/Docker.ts"
import { ProcessRunner, runJson, type ProcessError, type RunOptions } from "../services/ProcessRunner.ts"
import * as ProcessRunnerLive from "./ProcessRunner.ts"

const DOCKER = process.env["BOTTLE_DOCKER"] ?? "docker"

const toDockerError = (e: ProcessError): DockerError => {
  const r = e.reason
  if (r._tag === "CommandFailed") {
    if (/Cannot connect to the Docker daemon|Is the docker daemon running|error during connect/i.test(r.stderr)) {
      return new DockerError({ reason: new DockerUnavailable({ message: r.stderr.trim() }) })
    }
    // Docker's own words for a missing object, and nothing wider: "not found" alone also
    // matches failures that must not pass for a harmless absence (a missing manifest on pull,
    // a plugin, a context).
    if (/No such (container|network|image|object|volume)\b|\bnetwork \S+ not found\b/i.test(r.stderr)) {
      return new DockerError({ reason: new DockerNotFound({ what: r.stderr.trim().split("\n").pop() ?? "object" }) })
    }
    return new DockerError({ reason: new DockerCommandFailed({ argv: r.argv, exitCode: r.exitCode, stderr: r.stderr }) })
  }
  if (r._tag === "SpawnFailed") return new DockerError({ reason: new DockerUnavailable({ message: `cannot run docker: ${r.message}` }) })
  return new DockerError({ reason: new DockerDecodeFailed({ message: r.message }) })
}

const labelArgs = (labels: Record<string, string>) => Object.entries(labels).flatMap(([k, v]) => ["--label", `${k}=${v}`])

// `docker volume ls` prints no ID (a volume's name is its id); containers and networks do.
const LsLine = Schema.Struct({
  ID: Schema.optionalKey(Schema.String),
  Names: Schema.optionalKey(Schema.String),
  Name: Schema.optionalKey(Schema.String),
  Labels: Schema.String,
  State: Schema.optionalKey(Schema.String),
  Status: Schema.optionalKey(Schema.String)
})
const decodeLsLine = Schema.decodeUnknownSync(Schema.fromJsonString(LsLine))

/** `docker network inspect` (a JSON array); Go prints an IPAM without config as null. */
const NetworkInspect = Schema.Array(Schema.Struct({
  Name: Schema.String,
  IPAM: Schema.optionalKey(Schema.NullOr(Schema.Struct({
    Config: Schema.optionalKey(Schema.NullOr(Schema.Array(Schema.Struct({ Subnet: Schema.optionalKey(Schema.String) }))))
  })))
}))

/**
 * The engine's words for a subnet some network already holds: Docker's IPAM ("Pool overlaps with
 * other one on this address space", with "invalid pool request: " before it since 25), its bridge
 * driver ("conflicts with network … networks have overlapping IPv4", when the other network's
 * pool is not the same IPAM's, e.g. made at the same moment) and Podman.
 */
const SUBNET_OVERLAP = /Pool overlaps with other one on this address space|networks have overlapping IPv4|is already used on the host or by another config/i

// `docker info` prints the client's part even when no server answers (ServerVersion empty or
// absent, ServerErrors saying why). Go prints nil slices and pointers as null.
const Info = Schema.Struct({
  OperatingSystem: Schema.optionalKey(Schema.String),
  ServerVersion: Schema.optionalKey(Schema.String),
  ServerErrors: Schema.optionalKey(Schema.NullOr(Schema.Array(Schema.String)))
})
const ContainerState = Schema.Struct({
  Running: Schema.Boolean,
  Status: Schema.String,
  Health: Schema.optionalKey(Schema.NullOr(Schema.Struct({ Status: Schema.String })))
})

export const make = Effect.gen(function*() {
  const runner = yield* ProcessRunner
  const docker = (args: ReadonlyArray<string>, options?: RunOptions) =>
    runner.run([DOCKER, ...args], options).pipe(Effect.mapError(toDockerError))
  const dockerExec = (args: ReadonlyArray<string>, options?: RunOptions) =>
    runner.exec([DOCKER, ...args], options).pipe(Effect.mapError(toDockerError))
  const dockerJson = <S extends Schema.Codec<unknown, unknown>>(schema: S, args: ReadonlyArray<string>) =>
    runJson(schema)([DOCKER, ...args]).pipe(Effect.provideService(ProcessRunner, runner), Effect.mapError(toDockerError))

  const ignoreNotFound = <A>(eff: Effect.Effect<A, DockerError>) =>
    eff.pipe(Effect.catchIf((e) => e.reason._tag === "NotFound", () => Effect.void), Effect.asVoid)

  const createNetwork = Effect.fn("Docker.createNetwork")(function*(spec: NetworkSpec) {
    // --internal alone still lets containers reach the host through the bridge's gateway
    // address; inhibit_ipv4 leaves the bridge without a host-side address, so the only peers
    // on an internal network are its containers.
    const args = ["network", "create", "--driver", "bridge", ...(spec.internal ? ["--internal", "--opt", "com.docker.network.bridge.inhibit_ipv4=true"] : [])]
    if (spec.subnet) args.push("--subnet", spec.subnet)
    if (spec.ipRange) args.push("--ip-range", spec.ipRange)
    const { stdout } = yield* docker([...args, ...labelArgs(spec.labels), spec.name]).pipe(
      Effect.mapError((e) =>
        spec.subnet && e.reason._tag === "CommandFailed" && SUBNET_OVERLAP.test(e.reason.stderr)
          ? new DockerError({ reason: new DockerSubnetOverlap({ network: spec.name, subnet: spec.subnet, stderr: e.reason.stderr.trim() }) })
          : e
      )
    )
    return { id: stdout.trim(), name: spec.name }
  })
  const removeNetwork = Effect.fn("Docker.removeNetwork")(function*(nameOrId: string) {
    yield* ignoreNotFound(docker(["network", "rm", nameOrId]))
  })
  const removeContainer = Effect.fn("Docker.removeContainer")(function*(nameOrId: string) {
    yield* ignoreNotFound(docker(["rm", "--force", "--volumes", nameOrId]))
  })

  const createArgs = (spec: ContainerSpec): Array<string> => {
    const [first] = spec.networks
    const args = ["create", "--name", spec.name, ...labelArgs(spec.labels)]
    if (first) {
      args.push("--network", first.name)
      if (first.ip) args.push("--ip", first.ip)
      for (const a of first.aliases ?? []) args.push("--network-alias", a)
    } else {
      args.push("--network", "none")
    }
    for (const [k, v] of Object.entries(spec.env)) args.push("--env", `${k}=${v}`)
    for (const k of Object.keys(spec.secretEnv ?? {})) args.push("--env", k)
    for (const m of spec.mounts ?? []) {
      args.push("--mount", `type=${m.volume ? "volume" : "bind"},source=${m.source},target=${m.target}${m.readonly ? ",readonly" : ""}${m.volume && m.nocopy ? ",volume-nocopy" : ""}`)
    }
    if (spec.workdir) args.push("--workdir", spec.workdir)
    if (spec.user) args.push("--user", spec.user)
    if (spec.hostname) args.push("--hostname", spec.hostname)
    if (spec.entrypoint !== undefined) args.push("--entrypoint", spec.entrypoint)
    if (spec.tty) args.push("--tty", "--interactive")
    if (spec.cpus) args.push("--cpus", String(spec.cpus))
    if (spec.memory) args.push("--memory", spec.memory)
    args.push(...(spec.extraArgs ?? []), spec.image, ...(spec.command ?? []))
    return args
  }

  const connectNetwork = (container: string, net: NetworkAttachment) =>
    docker([
      "network", "connect",
      ...(net.ip ? ["--ip", net.ip] : []),
      ...(net.aliases ?? []).flatMap((a) => ["--alias", a]),
      net.name, container
    ]).pipe(Effect.asVoid)

  const runContainer = Effect.fn("Docker.runContainer")(function*(spec: ContainerSpec) {
    const secretEnv = Object.fromEntries(Object.entries(spec.secretEnv ?? {}).map(([k, v]) => [k, Redacted.value(v)]))
    const extra = spec.networks.slice(1)
    // One `docker run -d` when the container has one network; else create → connect → start,
    // so it never runs on fewer networks than its spec says.
    const args = createArgs(spec)
    const { stdout } = yield* docker(extra.length === 0 ? ["run", "--detach", ...args.slice(1)] : args, { env: secretEnv }).pipe(
      // `run` creates, then starts: a start that fails (a volume that cannot be mounted, a port
      // taken) leaves the container created, and its name taken for the next launch. Unless
      // the name was someone else's to begin with (nothing was created), it is ours to remove.
      Effect.tapError((e) =>
        extra.length === 0 && !(e.reason._tag === "CommandFailed" && /is already in use by container/.test(e.reason.stderr))
          ? removeContainer(spec.name).pipe(Effect.ignore)
          : Effect.void
      )
    )
    const id = stdout.trim()
    if (extra.length === 0) return { id, name: spec.name }
    // From here on the container exists: if connecting or starting fails, remove it.
    yield* Effect.forEach(extra, (net) => connectNetwork(id, net), { discard: true }).pipe(
      Effect.andThen(docker(["start", id])),
      Effect.onError(() => removeContainer(id).pipe(Effect.ignore))
    )
    return { id, name: spec.name }
  })

  const listKind = (kind: "container" | "network" | "volume", slug: string | undefined) => {
    const filter = ["--filter", `label=${LABEL_SLUG}${slug ? `=${slug}` : ""}`]
    const args = kind === "container"
      ? ["ps", "--all", "--no-trunc", ...filter, "--format", "{{json .}}"]
      : [kind, "ls", ...filter, "--format", "{{json .}}"]
    return docker(args).pipe(
      Effect.flatMap(({ stdout }) =>
        Effect.try({
          try: () =>
            stdout.split("\n").filter((l) => l.trim()).map((l): LabelledResource => {
              const row = decodeLsLine(l)
              const labels = row.Labels.split(",")
              const label = (key: string) => labels.find((kv) => kv.startsWith(`${key}=`))?.slice(key.length + 1)
              const root = label(LABEL_ROOT)
              const name = row.Names ?? row.Name ?? row.ID
              if (name === undefined) throw new Error(`a ${kind} with neither a name nor an id: ${l}`)
              const health = row.Status?.match(/\((healthy|unhealthy|health: starting)\)/)?.[1]
              return {
                kind,
                id: row.ID || name,
                name,
                slug: label(LABEL_SLUG) ?? "",
                ...(root !== undefined ? { root } : {}),
                ...(row.State ? { state: row.State } : {}),
                ...(health ? { health: health === "health: starting" ? "starting" as const : health as "healthy" | "unhealthy" } : {})
              }
            }),
          catch: (e) => new DockerError({ reason: new DockerDecodeFailed({ message: String(e) }) })
        })
      )
    )
  }

  return Docker.of({
    info: dockerJson(Info, ["info", "--format", "{{json .}}"]).pipe(
      Effect.flatMap((j) =>
        j.ServerVersion
          ? Effect.succeed({ operatingSystem: j.OperatingSystem ?? "unknown", serverVersion: j.ServerVersion })
          : Effect.fail(new DockerError({ reason: new DockerUnavailable({ message: j.ServerErrors?.join("; ") || "no server answered" }) }))
      )
    ),
    imageExists: (ref) => dockerExec(["image", "inspect", "--format", "{{.Id}}", ref]).pipe(Effect.map((r) => r.exitCode === 0)),
    imageId: (ref) => docker(["image", "inspect", "--format", "{{.Id}}", ref]).pipe(Effect.map((r) => r.stdout.trim())),
    pullImage: (ref) => docker(["pull", "--quiet", ref]).pipe(Effect.asVoid),
    build: Effect.fn("Docker.build")(function*(spec) {
      // --force-rm: a failed step must not leave its container behind.
      const args = ["build", "--force-rm", "--tag", spec.tag, ...labelArgs(spec.labels ?? {})]
      if (spec.dockerfile) args.push("--file", spec.dockerfile)
      for (const [k, v] of Object.entries(spec.buildArgs ?? {})) args.push("--build-arg", `${k}=${v}`)
      args.push(spec.context)
      const progress = spec.onProgress
      yield* docker(args, {
        env: { DOCKER_BUILDKIT: process.env["DOCKER_BUILDKIT"] ?? "0" },
        ...(progress ? { onStdoutLine: progress, onStderrLine: progress } : {})
      })
    }),
    imageRefs: (repo) =>
      docker(["image", "ls", repo, "--format", "{{.Repository}}:{{.Tag}}"]).pipe(
        Effect.map(({ stdout }) => stdout.split("\n").map((l) => l.trim()).filter((l) => l !== "" && !l.endsWith(":<none>")))
      ),
    removeImage: (ref) => ignoreNotFound(docker(["image", "rm", ref])),
    saveImage: (ref, tarPath) => docker(["save", "--output", tarPath, ref]).pipe(Effect.asVoid),
    createNetwork,
    removeNetwork,
    networkSubnets: Effect.gen(function*() {
      // A network removed between the listing and the inspection is gone from the next listing.
      for (let attempt = 0; ; attempt++) {
        const { stdout } = yield* docker(["network", "ls", "--no-trunc", "--quiet"])
        const ids = stdout.split("\n").map((l) => l.trim()).filter((l) => l !== "")
        if (ids.length === 0) return []
        const inspected = yield* dockerJson(NetworkInspect, ["network", "inspect", ...ids]).pipe(
          Effect.map((nets) => nets.map((n) => ({ name: n.Name, subnets: (n.IPAM?.Config ?? []).flatMap((c) => (c.Subnet ? [c.Subnet] : [])) }))),
          Effect.catchIf((e) => e.reason._tag === "NotFound" && attempt < 5, () => Effect.succeed(undefined))
        )
        if (inspected) return inspected
      }
    }).pipe(Effect.withSpan("Docker.networkSubnets")),
    network: (spec) =>
      Effect.acquireRelease(createNetwork(spec), (n) =>
        removeNetwork(n.name).pipe(Effect.catchCause((c) => Effect.logError(`could not remove network ${n.name}`, c)))),
    runContainer,
    removeContainer,
    connectNetwork,
    container: (spec) =>
      Effect.acquireRelease(runContainer(spec), (c) =>
        removeContainer(c.name).pipe(Effect.catchCause((cause) => Effect.logError(`could not remove container ${c.name}`, cause)))),
    startContainer: (n) => docker(["start", n]).pipe(Effect.asVoid),
    stopContainer: (n) => ignoreNotFound(docker(["stop", "--time", "5", n])),
    containerState: (n) =>
      dockerJson(ContainerState, ["inspect", "--format", "{{json .State}}", n]).pipe(
        Effect.map((s) => ({ running: s.Running, status: s.Status, ...(s.Health ? { health: s.Health.Status } : {}) }))
      ),
    exec: (container, argv, options) => {
      const args = ["exec", ...(options?.stdin !== undefined ? ["--interactive"] : [])]
      for (const [k, v] of Object.entries(options?.env ?? {})) args.push("--env", `${k}=${v}`)
      if (options?.user) args.push("--user", options.user)
      if (options?.workdir) args.push("--workdir", options.workdir)
      return dockerExec([...args, container, ...argv], options?.stdin !== undefined ? { stdin: options.stdin } : undefined)
    },
    execInteractive: (container, argv, options) => {
      const args = ["exec", "--interactive", ...(options?.tty ? ["--tty"] : [])]
      for (const [k, v] of Object.entries(options?.env ?? {})) args.push("--env", `${k}=${v}`)
      if (options?.user) args.push("--user", options.user)
      if (options?.workdir) args.push("--workdir", options.workdir)
      return runner.interactive([DOCKER, ...args, container, ...argv]).pipe(Effect.mapError(toDockerError))
    },
    copyTo: (container, hostPath, containerPath) => docker(["cp", hostPath, `${container}:${containerPath}`]).pipe(Effect.asVoid),
    waitForLogLine: (container, match) =>
      runner.watch([DOCKER, "logs", "--follow", container], match).pipe(Effect.mapError(toDockerError)),
    events: (rootId, onEvent) =>
      runner.watch([DOCKER, "events", "--filter", "type=container", "--filter", `label=${LABEL_ROOT}=${rootId}`, "--format", "{{.Action}}"], () => {
        onEvent()
        return false
      }).pipe(Effect.asVoid, Effect.mapError(toDockerError)),
    logs: (container, options) => {
      const argv = [DOCKER, "logs", ...(options?.follow ? ["--follow"] : []), ...(options?.tail !== undefined ? ["--tail", String(options.tail)] : []), container]
      const onLine = options?.onLine
      const run: Effect.Effect<unknown, ProcessError> = onLine
        ? runner.watch(argv, (line) => {
          onLine(line)
          return false
        })
        : runner.interactive(argv)
      return run.pipe(Effect.mapError(toDockerError), Effect.asVoid)
    },
    logsText: (container, options) =>
      Effect.suspend(() => {
        const lines: Array<string> = []
        const push = (line: string) => void lines.push(line)
        return docker(["logs", ...(options?.tail !== undefined ? ["--tail", String(options.tail)] : []), container], { onStdoutLine: push, onStderrLine: push }).pipe(Effect.map(() => lines.map((l) => `${l}\n`).join("")))
      }),
    listLabelled: (slug) =>
      Effect.all([listKind("container", slug), listKind("network", slug), listKind("volume", slug)]).pipe(Effect.map((xs) => xs.flat())),
    removeVolume: (name) => ignoreNotFound(docker(["volume", "rm", "--force", name])),
    createVolume: (spec) =>
      docker(["volume", "create", ...labelArgs(spec.labels), ...Object.entries(spec.options ?? {}).flatMap(([k, v]) => ["--opt", `${k}=${v}`]), spec.name]).pipe(Effect.asVoid),
    volumeMountpoint: (name) => docker(["volume", "inspect", "--format", "{{.Mountpoint}}", name]).pipe(Effect.map((r) => r.stdout.trim())),
    copyFrom: (container, containerPath, hostPath) => docker(["cp", `${container}:${containerPath}`, hostPath]).pipe(Effect.asVoid)
  })
})

export const layer = Layer.effect(Docker, make).pipe(Layer.provide(ProcessRunnerLive.layer))
