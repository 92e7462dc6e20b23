/**
 * The Docker engine, as bot-bottle uses it. Every acquisition is a scoped constructor whose
 * release removes what it created (and logs, never fails). Everything we create carries the
 * label `bot-bottle.slug=<slug>` so `cleanup` can find what a dead bottle left behind.
 */
import { Context, Effect, Redacted, Schema, Scope } from "effect"

export const LABEL_SLUG = "bot-bottle.slug"
export const LABEL_ROLE = "bot-bottle.role"
/** The short id of the state root (`bottleNames.stateRootId`) a bottle belongs to. */
export const LABEL_ROOT = "bot-bottle.root"

export class DockerCommandFailed extends Schema.TaggedClass<DockerCommandFailed>()("CommandFailed", {
  argv: Schema.Array(Schema.String),
  exitCode: Schema.Number,
  stderr: Schema.String
}) {}
export class DockerNotFound extends Schema.TaggedClass<DockerNotFound>()("NotFound", { what: Schema.String }) {}
export class DockerUnavailable extends Schema.TaggedClass<DockerUnavailable>()("Unavailable", { message: Schema.String }) {}
export class DockerDecodeFailed extends Schema.TaggedClass<DockerDecodeFailed>()("DecodeFailed", { message: Schema.String }) {}
/** A network could not be created: its subnet overlaps one the engine already has (anyone's). */
export class DockerSubnetOverlap extends Schema.TaggedClass<DockerSubnetOverlap>()("SubnetOverlap", {
  network: Schema.String,
  subnet: Schema.String,
  stderr: Schema.String
}) {}

export class DockerError extends Schema.TaggedError<DockerError>()("DockerError", {
  reason: Schema.Union([DockerCommandFailed, DockerNotFound, DockerUnavailable, DockerDecodeFailed, DockerSubnetOverlap])
}) {
  override get message(): string {
    const r = this.reason
    switch (r._tag) {
      case "CommandFailed":
        return `docker ${r.argv.slice(1, 3).join(" ")} failed (exit ${r.exitCode}): ${r.stderr.trim().split("\n").slice(-3).join(" / ")}`
      case "NotFound":
        return `docker: ${r.what} not found`
      case "Unavailable":
        return `the Docker engine is not reachable: ${r.message}`
      case "DecodeFailed":
        return `docker printed output we could not decode: ${r.message}`
      case "SubnetOverlap":
        return `docker could not create network ${r.network}: subnet ${r.subnet} overlaps a network the engine already has`
    }
  }
}

export interface NetworkSpec {
  readonly name: string
  readonly internal: boolean
  /** e.g. "10.243.7.0/24"; required for fixed container IPs. */
  readonly subnet?: string
  /** Where dynamic addresses come from; fixed ones (`--ip`) stay outside it, so they never collide. */
  readonly ipRange?: string
  readonly labels: Record<string, string>
}

export interface Network {
  readonly id: string
  readonly name: string
}

export interface NetworkSubnets {
  readonly name: string
  readonly subnets: ReadonlyArray<string>
}

export interface NetworkAttachment {
  readonly name: string
  readonly ip?: string
  readonly aliases?: ReadonlyArray<string>
}

export interface Mount {
  /** A host path (bind), or a volume's name (`volume: true`). */
  readonly source: string
  readonly target: string
  readonly readonly: boolean
  /** A named volume rather than a bind mount. */
  readonly volume?: boolean
  /** A volume that is not filled from the image's content at that path on its first use. */
  readonly nocopy?: boolean
}

export interface VolumeSpec {
  readonly name: string
  readonly labels: Record<string, string>
  /** The driver's options (`--opt k=v`), e.g. the local driver's overlay mount. */
  readonly options?: Record<string, string>
}

export interface ContainerSpec {
  readonly name: string
  readonly image: string
  /** First network (and optional fixed IP); more are connected after create, before start. */
  readonly networks: ReadonlyArray<NetworkAttachment>
  /** Plain values only: they are on docker's command line, visible to every local user. */
  readonly env: Record<string, string>
  /** Passed as `--env NAME` with the value in the docker CLI's own environment: never in argv. */
  readonly secretEnv?: Record<string, Redacted.Redacted<string>>
  readonly labels: Record<string, string>
  readonly mounts?: ReadonlyArray<Mount>
  readonly command?: ReadonlyArray<string>
  readonly entrypoint?: string
  readonly workdir?: string
  readonly user?: string
  readonly hostname?: string
  readonly tty?: boolean
  readonly cpus?: number
  readonly memory?: string
  /** Extra `docker create` flags our launch needs (cap drops, read-only, ...). */
  readonly extraArgs?: ReadonlyArray<string>
}

export interface Container {
  readonly id: string
  readonly name: string
}

export interface BuildSpec {
  readonly context: string
  readonly tag: string
  readonly dockerfile?: string
  readonly buildArgs?: Record<string, string>
  readonly labels?: Record<string, string>
  readonly onProgress?: (line: string) => void
}

export const ResourceKind = Schema.Literals(["container", "network", "volume"])
export type ResourceKind = typeof ResourceKind.Type

export interface LabelledResource {
  readonly kind: ResourceKind
  readonly id: string
  readonly name: string
  readonly slug: string
  /** The state root id label; absent on objects made before roots were labelled. */
  readonly root?: string
  readonly state?: string
  /** From the image's health check, when it has one. */
  readonly health?: "starting" | "healthy" | "unhealthy"
}

export interface ExecOptions {
  /** Plain values only: they are on docker's command line (secrets go through `ContainerSpec.secretEnv`). */
  readonly env?: Record<string, string>
  readonly user?: string
  readonly workdir?: string
  readonly stdin?: string | Uint8Array
}

export class Docker extends Context.Service<Docker, {
  /** `docker info`: the engine is reachable; returns OperatingSystem (e.g. "Docker Desktop"). */
  readonly info: Effect.Effect<{ readonly operatingSystem: string; readonly serverVersion: string }, DockerError>
  readonly imageExists: (ref: string) => Effect.Effect<boolean, DockerError>
  readonly imageId: (ref: string) => Effect.Effect<string, DockerError>
  readonly pullImage: (ref: string) => Effect.Effect<void, DockerError>
  readonly build: (spec: BuildSpec) => Effect.Effect<void, DockerError>
  /** Tags of `repo` present locally, as full references (`repo:tag`). */
  readonly imageRefs: (repo: string) => Effect.Effect<ReadonlyArray<string>, DockerError>
  readonly removeImage: (ref: string) => Effect.Effect<void, DockerError>
  readonly saveImage: (ref: string, tarPath: string) => Effect.Effect<void, DockerError>
  /** Fails with reason SubnetOverlap when `spec.subnet` overlaps a network the engine has. */
  readonly createNetwork: (spec: NetworkSpec) => Effect.Effect<Network, DockerError>
  readonly removeNetwork: (nameOrId: string) => Effect.Effect<void, DockerError>
  /** Every network the engine has (anyone's, not only ours), with its IPAM subnets. */
  readonly networkSubnets: Effect.Effect<ReadonlyArray<NetworkSubnets>, DockerError>
  /** Scoped network: created now, removed when the scope closes. */
  readonly network: (spec: NetworkSpec) => Effect.Effect<Network, DockerError, Scope.Scope>
  /** create + connect extra networks + start. */
  readonly runContainer: (spec: ContainerSpec) => Effect.Effect<Container, DockerError>
  readonly removeContainer: (nameOrId: string) => Effect.Effect<void, DockerError>
  /** Joins a running (or created) container to one more network. */
  readonly connectNetwork: (container: string, network: NetworkAttachment) => Effect.Effect<void, DockerError>
  /** Scoped container: started now, force-removed when the scope closes. */
  readonly container: (spec: ContainerSpec) => Effect.Effect<Container, DockerError, Scope.Scope>
  readonly startContainer: (nameOrId: string) => Effect.Effect<void, DockerError>
  readonly stopContainer: (nameOrId: string) => Effect.Effect<void, DockerError>
  readonly containerState: (nameOrId: string) => Effect.Effect<{ readonly running: boolean; readonly status: string; readonly health?: string }, DockerError>
  readonly exec: (container: string, argv: ReadonlyArray<string>, options?: ExecOptions) => Effect.Effect<{ readonly stdout: string; readonly stderr: string; readonly exitCode: number }, DockerError>
  /** Runs argv in the container with the caller's terminal attached; returns the exit code. */
  readonly execInteractive: (container: string, argv: ReadonlyArray<string>, options?: ExecOptions & { readonly tty: boolean }) => Effect.Effect<number, DockerError>
  readonly copyTo: (container: string, hostPath: string, containerPath: string) => Effect.Effect<void, DockerError>
  /**
   * Follows a container's output until a line satisfies `match` (returned), or the container's
   * output ends (undefined: it stopped). One process, not a poll.
   */
  readonly waitForLogLine: (container: string, match: (line: string) => boolean) => Effect.Effect<string | undefined, DockerError>
  /**
   * Follows the engine's container events for objects labelled with state root `rootId`, calling
   * `onEvent` for each, until interrupted (`docker events`). Optional: the dashboard's watcher.
   */
  readonly events?: (rootId: string, onEvent: () => void) => Effect.Effect<void, DockerError>
  /** Prints a container's log; with `onLine`, hands it each line (stdout and stderr) instead. */
  readonly logs: (container: string, options?: { readonly follow?: boolean; readonly tail?: number; readonly onLine?: (line: string) => void }) => Effect.Effect<void, DockerError>
  /** A container's log (stdout and stderr lines in the order they arrive; `tail`: the last lines only), as text. */
  readonly logsText: (container: string, options?: { readonly tail?: number }) => Effect.Effect<string, DockerError>
  /** Everything (containers, networks, volumes) carrying our slug label; `slug` narrows. */
  readonly listLabelled: (slug?: string) => Effect.Effect<ReadonlyArray<LabelledResource>, DockerError>
  readonly removeVolume: (name: string) => Effect.Effect<void, DockerError>
  /** `docker volume create`: a no-op when a volume of that name exists already. */
  readonly createVolume: (spec: VolumeSpec) => Effect.Effect<void, DockerError>
  /** Where a volume's data is on the engine's own filesystem (`docker volume inspect`). */
  readonly volumeMountpoint: (name: string) => Effect.Effect<string, DockerError>
  /** `docker cp <container>:<path> <hostPath>` (symbolic links are copied as links, never followed). */
  readonly copyFrom: (container: string, containerPath: string, hostPath: string) => Effect.Effect<void, DockerError>
}>()("bot-bottle/Docker") {}
