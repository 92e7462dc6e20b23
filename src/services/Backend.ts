/**
 * What a backend must do to box an agent (DESIGN.md, Seams). `launch`, `attach`, `bottle
 * exec|logs|ls|stop|cleanup` speak only this interface; each backend is one live layer
 * (src/layers/DockerBackend.ts, ...), chosen by the plan's `backend` in src/layers/Backends.ts.
 * docs/backends.md maps it onto docker, smolmachines, kubernetes and macos-container.
 *
 * Guarantees every layer must keep:
 * - scoped acquisitions (`network`, `bundle`, `sandbox`) release what they made when the scope
 *   closes, and their release logs its own failure and never fails;
 * - the bottle's objects are the state root's own: names and labels carry its id (one engine or
 *   host serves several roots), and `inspect`, `remove` and `removeOrphans` never see or touch
 *   another root's objects;
 * - the sandbox's only reachable peer is the bundle: whatever `network` makes, the agent side
 *   of it has no route out but the bundle's address (`plan.network.bundleIp`);
 * - the bundle gets secrets only through `BundleSpec.secretEnv`, never on a command line, and
 *   the sandbox gets no secret at all;
 * - `exec` and `attach` run with the bottle's env (`plan.env`, HOME) on every call (a microVM's
 *   exec does not inherit PID 1's env).
 * - the bottle's state (its own workspace, the agent's home) outlives the sandbox: a later
 *   `sandbox` for the slug gets it back as it was, until `remove(slug, { volumes: true })` or
 *   `removeOrphans`; a `sandbox` acquisition that fails removes what it created itself; a
 *   workspace seeded from a host dir never writes to that dir (docs/lifecycle.md).
 */
import { Context, type Effect, type Redacted, Schema, type Scope } from "effect"
import type { ProbeReport } from "../programs/isolationProbe.ts"
import type { BottlePlan } from "../schema/BottlePlan.ts"

export class BackendUnavailable extends Schema.TaggedClass<BackendUnavailable>()("Unavailable", { message: Schema.String }) {}
export class BackendNotFound extends Schema.TaggedClass<BackendNotFound>()("NotFound", { what: Schema.String }) {}
export class BackendFailed extends Schema.TaggedClass<BackendFailed>()("Failed", { message: Schema.String }) {}
export class BackendNotBuilt extends Schema.TaggedClass<BackendNotBuilt>()("BackendNotBuilt", { backend: Schema.String }) {}
/** The plan's subnet is taken on the substrate (by anyone, e.g. since `addressesInUse` was asked). */
export class BackendAddressTaken extends Schema.TaggedClass<BackendAddressTaken>()("AddressTaken", { subnet: Schema.String, message: Schema.String }) {}

export class BackendError extends Schema.TaggedError<BackendError>()("BackendError", {
  backend: Schema.String,
  reason: Schema.Union([BackendUnavailable, BackendNotFound, BackendFailed, BackendNotBuilt, BackendAddressTaken])
}) {
  override get message(): string {
    const r = this.reason
    switch (r._tag) {
      case "Unavailable":
      case "Failed":
      case "AddressTaken":
        return r.message
      case "NotFound":
        return `${this.backend}: ${r.what} not found`
      case "BackendNotBuilt":
        return `the ${r.backend} backend is not built yet in this version of bot-bottle; use --backend docker`
    }
  }
}

/** The image build context of the agent or the bundle (see src/programs/images.ts). */
export interface ImageSource {
  /** Short name: "agent" or "bundle". */
  readonly name: string
  /** Files of the context: path inside the context → absolute source path. */
  readonly files: ReadonlyArray<{ readonly at: string; readonly from: string }>
}

export interface ImagesSpec {
  readonly env: Record<string, string | undefined>
  /** Default: the package's agent-image/ and bundle/. */
  readonly sources?: { readonly agent: ImageSource; readonly bundle: ImageSource } | undefined
}

/** Image references as the backend runs them. */
export interface BottleImages {
  readonly agent: string
  readonly bundle: string
}

/**
 * A bottle's network resources, as far as launch needs to know: opaque but for `complete`, the
 * part the sandbox does not wait for (docker: the egress network), which the bundle awaits.
 */
export interface BottleNetwork {
  readonly complete: Effect.Effect<void, BackendError>
}

export interface HostMount {
  readonly source: string
  readonly target: string
  readonly readonly: boolean
}

/** Where the bundle's state is mounted, what it is told, and the secrets its routes inject. */
export interface BundleSpec {
  readonly image: string
  /**
   * The bottle's state dir on the host. The bundle protocol (src/schema/BundleProtocol.ts)
   * says which of its subdirs the bundle gets (one per daemon, nothing above them) and what
   * each daemon is told.
   */
  readonly stateDir: string
  readonly secretEnv: Record<string, Redacted.Redacted<string>>
  readonly readyTimeoutMs: number
}

export interface SandboxSpec {
  readonly image: string
  /** Host dir of provisioning files (CA cert, prompt, skills), mounted read-only at `provisionTarget`. */
  readonly provisionDir: string
  readonly provisionTarget: string
  /** The workspace's mounts (mount_cwd), empty when the cwd is copied or not used. */
  readonly mounts: ReadonlyArray<HostMount>
  /**
   * The bottle's own workspace at `plan.workdir`, kept across stop/resume (absent with
   * mount_cwd). `seed`: the host dir it starts as a private copy of (copy_cwd), read, never
   * written; taken when the workspace is first made, never again.
   */
  readonly workspace?: { readonly seed?: string | undefined } | undefined
  /**
   * The bottle's first launch (its state dir was just made): anything the backend still keeps
   * for the slug belongs to a bottle of that name that is gone, and is not this one's state.
   */
  readonly fresh?: boolean | undefined
  /** Run once, as root, when the sandbox is exec-ready (after the cwd copy): argv, no shell splicing. */
  readonly provision: ReadonlyArray<string>
}

export type SandboxUser = "root" | "agent"

export interface ExecResult {
  readonly stdout: string
  readonly stderr: string
  readonly exitCode: number
}

/** degraded: some parts are not running; unhealthy: the bundle reports a crashed daemon. */
export type BottleStatus = "running" | "stopped" | "degraded" | "unhealthy"

export type SessionEnd = { readonly _tag: "Exited"; readonly exitCode: number } | { readonly _tag: "Detached" }

export interface BottleState {
  readonly slug: string
  readonly status: BottleStatus
  /** What the backend runs for it (container names, VM names, pods): for humans. */
  readonly parts: ReadonlyArray<string>
  /** What it keeps for the bottle across stop/resume (volume names): for humans. */
  readonly volumes: ReadonlyArray<string>
}

/** The bundle's log as saved at its removal, in the bottle's state dir (host side only). */
export const SAVED_BUNDLE_LOG = "bundle.log"

export class Backend extends Context.Service<Backend, {
  readonly name: string
  /** Fails (e.g. NotBuilt) before launch acquires anything, when this backend cannot run. */
  readonly preflight: Effect.Effect<void, BackendError>
  /** The agent and bundle images, built or fetched as needed. */
  readonly images: (spec: ImagesSpec) => Effect.Effect<BottleImages, BackendError>
  /**
   * The IPv4 subnets (CIDR) the substrate already has networks on, anyone's: a subnet lease
   * skips them. A backend whose bottles share no address space with anything returns none.
   */
  readonly addressesInUse: Effect.Effect<ReadonlyArray<string>, BackendError>
  /**
   * Scoped: the bottle's network resources on `plan.network.subnet`. Returns once the sandbox
   * can be created on them. Fails with AddressTaken, leaving nothing behind, when the substrate
   * already has that subnet (launch then leases another and asks again).
   */
  readonly network: (plan: BottlePlan) => Effect.Effect<BottleNetwork, BackendError, Scope.Scope>
  /** Scoped: the sidecar bundle, started and reporting ready (fails naming an unhealthy daemon). */
  readonly bundle: (plan: BottlePlan, network: BottleNetwork, spec: BundleSpec) => Effect.Effect<void, BackendError, Scope.Scope>
  /** Scoped: the agent's sandbox, created, its workspace copied, provisioned, exec-ready. */
  readonly sandbox: (plan: BottlePlan, network: BottleNetwork, spec: SandboxSpec) => Effect.Effect<void, BackendError, Scope.Scope>
  /**
   * The isolation probe (src/programs/isolationProbe.ts) run inside the running sandbox: the
   * bundle's proxy answers, nothing outside the allowlist does. A report, not a failure: launch
   * fails closed on a bad one, `bottle doctor <bottle>` prints it.
   */
  readonly probe: (plan: BottlePlan) => Effect.Effect<ProbeReport, BackendError>
  /** Runs argv in the sandbox (bottle env, workdir) and collects its output, whatever its exit code. */
  readonly exec: (plan: BottlePlan, argv: ReadonlyArray<string>, options: { readonly user: SandboxUser; readonly stdin?: string }) => Effect.Effect<ExecResult, BackendError>
  /** Copies a sandbox path out to `hostPath`, which must not exist (links are copied as links, never followed). */
  readonly copyOut: (plan: BottlePlan, sandboxPath: string, hostPath: string) => Effect.Effect<void, BackendError>
  /** Copies a host file or dir into the sandbox at `sandboxPath`, owned by the agent's user. */
  readonly copyIn: (plan: BottlePlan, hostPath: string, sandboxPath: string) => Effect.Effect<void, BackendError>
  /**
   * The agent's session: argv in the sandbox with the caller's terminal, as the agent's user.
   * `detached`: the caller left with the terminal's detach keys (docker's Ctrl-P Ctrl-Q) and the
   * command still runs; else its exit code.
   */
  readonly session: (plan: BottlePlan, argv: ReadonlyArray<string>) => Effect.Effect<SessionEnd, BackendError>
  /** Runs argv in the sandbox with the caller's terminal; returns its exit code. */
  readonly attach: (plan: BottlePlan, argv: ReadonlyArray<string>, options: { readonly user: SandboxUser }) => Effect.Effect<number, BackendError>
  /**
   * Optional: whether what this backend keeps for `slug` across stop/resume is bound to the
   * bottle's leased addresses (a stopped microVM whose allowlist is fixed at create). While it
   * is, a session's end keeps the leases (launch's `keepIf`) and `remove` without volumes says
   * `holdsAddress`, so a resume gets the same address back; absent: never.
   */
  readonly keepsAddress?: (slug: string) => Effect.Effect<boolean>
  /** The state of this backend's bottles (`slug` narrows): what `ls`, `resume` and `exec` need. */
  readonly inspect: (slug?: string) => Effect.Effect<ReadonlyArray<BottleState>, BackendError>
  /**
   * Optional: runs until interrupted, calling `onChange` whenever this root's bottles may have
   * changed state on the substrate (engine events), so a watcher (`bottle dash`) need not poll.
   */
  readonly changes?: (onChange: () => void) => Effect.Effect<void, BackendError>
  /**
   * Prints the bundle's daemon log (`follow`: until interrupted; `onLine`: each line handed to it
   * instead, for a caller that escapes what the agent put there); NotFound when no bundle runs.
   * Before a backend removes a bundle (a launch's release, `remove`) it saves the bundle's log
   * as SAVED_BUNDLE_LOG in the bottle's state dir, so `bottle logs` can show it after stop.
   */
  readonly logs: (slug: string, options: { readonly follow: boolean; readonly onLine?: (line: string) => void }) => Effect.Effect<void, BackendError>
  /**
   * Removes everything this backend runs for `slug`, and its kept state too with `volumes`;
   * returns what could not be removed (one line each). `holdsAddress`: a leftover still holds
   * the bottle's leased address.
   */
  readonly remove: (slug: string, options: { readonly volumes: boolean }) => Effect.Effect<{ readonly leftovers: ReadonlyArray<string>; readonly holdsAddress: boolean }, BackendError>
  /** Everything this backend runs for a bottle not in `known`, removed unless `dryRun`; one line each. */
  readonly removeOrphans: (known: ReadonlySet<string>, options: { readonly dryRun: boolean }) => Effect.Effect<ReadonlyArray<string>, BackendError>
}>()("bot-bottle/Backend") {}
