/**
 * The `smolvm` CLI (libkrun microVMs), 1.x. Machine names are a flag (`--name`); machines we
 * create carry `--label bot-bottle.slug=<slug>`. Never trust a network flag: the backend probes
 * reachability from inside the guest after start and fails closed (see DESIGN.md).
 */
import { Context, Effect, Result, Schema, Scope, SemVer } from "effect"

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

export class SmolvmError extends Schema.TaggedError<SmolvmError>()("SmolvmError", {
  reason: Schema.Union([SmolvmCommandFailed, SmolvmMissing, SmolvmTooOld, SmolvmDecodeFailed])
}) {
  override get message(): string {
    const r = this.reason
    switch (r._tag) {
      case "CommandFailed":
        return `smolvm ${r.argv.slice(1, 3).join(" ")} failed (exit ${r.exitCode})${r.stderr.trim() ? `: ${r.stderr.trim().split("\n").slice(-3).join(" / ")}` : ""}`
      case "Missing":
        return `smolvm is not installed or cannot run (${r.message}); install smolvm ≥ ${SMOLVM_MINIMUM} for --backend smolmachines (\`bottle doctor\` checks it)`
      case "TooOld":
        return `smolvm ${r.version} is too old: --backend smolmachines needs ${r.minimum} or later (network allowlists were unreliable before)`
      case "DecodeFailed":
        return `smolvm printed output we could not decode: ${r.message}`
    }
  }
}

export interface MachineSpec {
  readonly name: string
  /** The `.smolmachine` artifact from `pack create`. */
  readonly from: string
  readonly env: Record<string, string>
  readonly labels: Record<string, string>
  /** Exactly the bundle's address, e.g. "172.30.5.2/32". */
  readonly allowCidrs: ReadonlyArray<string>
  readonly cpus?: number
  readonly memory?: string
}

export interface Machine {
  readonly name: string
}

export class Smolvm extends Context.Service<Smolvm, {
  readonly version: Effect.Effect<string, SmolvmError>
  readonly packCreate: (image: string, out: string) => Effect.Effect<string, SmolvmError>
  /** create + start, then poll until an exec succeeds. Scoped: stop + delete on release. */
  readonly machine: (spec: MachineSpec) => Effect.Effect<Machine, SmolvmError, Scope.Scope>
  readonly exec: (name: string, argv: ReadonlyArray<string>, env: Record<string, string>) => Effect.Effect<{ readonly stdout: string; readonly exitCode: number }, SmolvmError>
  readonly list: Effect.Effect<ReadonlyArray<{ readonly name: string; readonly state: string; readonly labels: Record<string, string> }>, SmolvmError>
  readonly remove: (name: string) => Effect.Effect<void, SmolvmError>
}>()("bot-bottle/Smolvm") {}
