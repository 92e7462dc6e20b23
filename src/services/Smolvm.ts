/**
 * The `smolvm` CLI (libkrun microVMs), 1.x. Machine names are a flag (`--name`); machines we
 * create carry `--label bot-bottle.slug=<slug>`. Never trust a network flag: the backend probes
 * reachability from inside the guest after start and fails closed (see DESIGN.md).
 */
import { Context, type Effect, Result, Schema, type Scope, SemVer } from "effect"

/**
 * DESIGN.md: releases before 1.8 silently dropped `--allow-cidr` beside `--from`, and before
 * 1.9.0 machines served from the image cache booted with open networking.
 */
export const SMOLVM_MINIMUM = "1.9.0"

/**
 * The version in `smolvm --version` output ("smolvm 1.9.1"): its first X.Y.Z, with a
 * pre-release suffix if any, checked as SemVer (Effect's `SemVer`); undefined when none.
 */
export const parseSmolvmVersion = (output: string): SemVer.SemVer | undefined => {
  const text = output.match(/\b(\d+\.\d+\.\d+(?:-[0-9A-Za-z.-]+)?)/)?.[1]
  if (text === undefined) return undefined
  const parsed = SemVer.parse(text)
  return Result.isSuccess(parsed) ? parsed.success : undefined
}

/** At least SMOLVM_MINIMUM, by SemVer precedence (a pre-release of the minimum is older). */
export const smolvmRecentEnough = (version: SemVer.SemVer): boolean =>
  SemVer.isGreaterThanOrEqualTo(version, SemVer.parseUnsafe(SMOLVM_MINIMUM))

export class SmolvmCommandFailed extends Schema.TaggedClass<SmolvmCommandFailed>()("CommandFailed", {
  argv: Schema.Array(Schema.String),
  exitCode: Schema.Number,
  stderr: Schema.String
}) {}
export class SmolvmMissing extends Schema.TaggedClass<SmolvmMissing>()("Missing", { message: Schema.String }) {}
export class SmolvmTooOld extends Schema.TaggedClass<SmolvmTooOld>()("TooOld", { version: Schema.String, minimum: Schema.String }) {}
export class SmolvmDecodeFailed extends Schema.TaggedClass<SmolvmDecodeFailed>()("DecodeFailed", { message: Schema.String }) {}
/** The machine started but no exec succeeded within the bound. */
export class SmolvmNotReady extends Schema.TaggedClass<SmolvmNotReady>()("NotReady", { name: Schema.String, timeoutMs: Schema.Number, lastError: Schema.String }) {}

export class SmolvmError extends Schema.TaggedError<SmolvmError>()("SmolvmError", {
  reason: Schema.Union([SmolvmCommandFailed, SmolvmMissing, SmolvmTooOld, SmolvmDecodeFailed, SmolvmNotReady])
}) {
  override get message(): string {
    const r = this.reason
    switch (r._tag) {
      case "CommandFailed":
        return `smolvm ${r.argv.slice(1, 3).join(" ")} failed (exit ${r.exitCode})${r.stderr.trim() ? `: ${r.stderr.trim().split("\n").slice(-3).join(" / ")}` : ""}`
      case "Missing":
        return `smolvm is not installed or cannot run (${r.message}); install smolvm ≥ ${SMOLVM_MINIMUM} for --backend smolmachines (\`bottle doctor\` checks it)`
      case "TooOld":
        return `smolvm ${r.version} is too old: --backend smolmachines needs ${r.minimum} or later (network allowlists were unreliable before); install smolvm ${r.minimum} or later`
      case "DecodeFailed":
        return `smolvm printed output we could not decode: ${r.message}`
      case "NotReady":
        return `smolvm machine ${r.name} started but did not accept an exec within ${r.timeoutMs} ms (last: ${r.lastError.trim().split("\n").slice(-1)[0] ?? ""})`
    }
  }
}

export interface MachineSpec {
  readonly name: string
  /** The `.smolmachine` artifact from `pack create`. */
  readonly from: string
  /** Env of PID 1 only (`-e` at create): every exec passes the env again. */
  readonly env: Record<string, string>
  readonly labels: Record<string, string>
  /** Exactly the bundle's address, e.g. "172.30.5.2/32". */
  readonly allowCidrs: ReadonlyArray<string>
  /** The guest's DNS server (`--dns`): the bundle, where nothing answers, so names go nowhere. */
  readonly dns?: string
  readonly cpus?: number
  /** MiB (`--mem`). */
  readonly memoryMib?: number
  /** How long to poll for a working exec after start (default 60 s). */
  readonly readyTimeoutMs?: number
}

export interface Machine {
  readonly name: string
}

/** One machine of `smolvm machine ls --json` (the fields we read; smolvm prints more). */
export const MachineInfo = Schema.Struct({
  name: Schema.String,
  state: Schema.String,
  labels: Schema.optionalKey(Schema.NullOr(Schema.Record(Schema.String, Schema.String))),
  pid: Schema.optionalKey(Schema.NullOr(Schema.Number)),
  network: Schema.optionalKey(Schema.Boolean)
})
export type MachineInfo = typeof MachineInfo.Type

export interface MachineExecOptions {
  readonly env: Record<string, string>
  readonly workdir?: string
  readonly stdin?: string | Uint8Array
}

export class Smolvm extends Context.Service<Smolvm, {
  /** `smolvm --version`, as SemVer text. */
  readonly version: Effect.Effect<string, SmolvmError>
  /** The version, failing with TooOld below SMOLVM_MINIMUM (or Missing). */
  readonly ensureRecent: Effect.Effect<string, SmolvmError>
  /** `pack create --image IMAGE -o OUT`; returns the artifact, `OUT.smolmachine` (OUT must not end in .smolmachine). */
  readonly packCreate: (image: string, out: string) => Effect.Effect<string, SmolvmError>
  /**
   * create + start, poll until an exec succeeds (bounded: NotReady), then undo pack's ownership
   * remap (`chown -R node:node /home/node`, `chmod 1777 /tmp /var/tmp`). Scoped: stop + delete
   * on release (logged, never failing).
   */
  readonly machine: (spec: MachineSpec) => Effect.Effect<Machine, SmolvmError, Scope.Scope>
  /** `machine create` alone: the caller decides what becomes of the machine (see `start`, `stop`). */
  readonly create: (spec: MachineSpec) => Effect.Effect<void, SmolvmError>
  /**
   * `machine start` of a created or stopped machine, then as `machine`: exec polled until ready,
   * ownership fixed. A named machine keeps its disks (smolvm's per-machine storage and overlay
   * disks, `machine data-dir`) from stop to start until it is deleted: what was written is there.
   */
  readonly start: (name: string, options?: { readonly readyTimeoutMs?: number }) => Effect.Effect<void, SmolvmError>
  /** `machine stop`, keeping the machine and its disks; a machine already stopped, or gone, is fine. */
  readonly stop: (name: string) => Effect.Effect<void, SmolvmError>
  /** `machine exec`, with `env` passed again (create-time env reaches PID 1 only); any exit code. */
  readonly exec: (name: string, argv: ReadonlyArray<string>, options: MachineExecOptions) => Effect.Effect<{ readonly stdout: string; readonly stderr: string; readonly exitCode: number }, SmolvmError>
  /** `machine exec -i [-t]` with the caller's terminal; returns the exit code. */
  readonly execInteractive: (name: string, argv: ReadonlyArray<string>, options: MachineExecOptions & { readonly tty: boolean }) => Effect.Effect<number, SmolvmError>
  /** `machine cp HOST NAME:GUEST`. */
  readonly copyTo: (name: string, hostPath: string, guestPath: string) => Effect.Effect<void, SmolvmError>
  /** `machine cp NAME:GUEST HOST`. */
  readonly copyFrom: (name: string, guestPath: string, hostPath: string) => Effect.Effect<void, SmolvmError>
  /** `machine ls --json`, decoded. */
  readonly list: Effect.Effect<ReadonlyArray<MachineInfo>, SmolvmError>
  /** stop (if running) + delete --force; a machine already gone is fine. */
  readonly remove: (name: string) => Effect.Effect<void, SmolvmError>
}>()("bot-bottle/Smolvm") {}
