/**
 * The one process runner every external CLI goes through (docker, smolvm, skopeo, git, ssh).
 * It spawns, collects stdout and stderr, checks the exit code, and maps every failure to a
 * typed `ProcessError` that carries the argv and stderr. JSON output is decoded with Schema.
 *
 * `spawner.string` ignores exit codes; this service never does.
 */
import { Context, Effect, Schema } from "effect"

export class CommandFailed extends Schema.TaggedClass<CommandFailed>()("CommandFailed", {
  argv: Schema.Array(Schema.String),
  exitCode: Schema.Number,
  stderr: Schema.String
}) {}

export class SpawnFailed extends Schema.TaggedClass<SpawnFailed>()("SpawnFailed", {
  argv: Schema.Array(Schema.String),
  message: Schema.String
}) {}

export class DecodeFailed extends Schema.TaggedClass<DecodeFailed>()("DecodeFailed", {
  argv: Schema.Array(Schema.String),
  message: Schema.String
}) {}

export class ProcessError extends Schema.TaggedError<ProcessError>()("ProcessError", {
  reason: Schema.Union([CommandFailed, SpawnFailed, DecodeFailed])
}) {
  override get message(): string {
    const r = this.reason
    const cmd = r.argv.join(" ")
    switch (r._tag) {
      case "CommandFailed":
        return `\`${cmd}\` exited with code ${r.exitCode}${r.stderr.trim() ? `: ${r.stderr.trim().split("\n").slice(-5).join("\n")}` : ""}`
      case "SpawnFailed":
        return `could not run \`${cmd}\`: ${r.message}`
      case "DecodeFailed":
        return `\`${cmd}\` printed output that could not be decoded: ${r.message}`
    }
  }
}

export interface RunOptions {
  readonly cwd?: string
  /** Added to (not replacing) the inherited environment. */
  readonly env?: Record<string, string>
  /** Written to the child's stdin, then closed. */
  readonly stdin?: string | Uint8Array
  /** Called with each stderr line as it arrives (progress display). */
  readonly onStderrLine?: (line: string) => void
  /** Called with each stdout line as it arrives (progress display). */
  readonly onStdoutLine?: (line: string) => void
}

export interface RunResult {
  readonly stdout: string
  readonly stderr: string
  readonly exitCode: number
}

export class ProcessRunner extends Context.Service<ProcessRunner, {
  /** Runs argv to completion; fails with CommandFailed on a non-zero exit. */
  readonly run: (argv: ReadonlyArray<string>, options?: RunOptions) => Effect.Effect<RunResult, ProcessError>
  /** Runs argv to completion and returns the result whatever the exit code. */
  readonly exec: (argv: ReadonlyArray<string>, options?: RunOptions) => Effect.Effect<RunResult, ProcessError>
  /**
   * Runs argv until one of its output lines (stdout or stderr) satisfies `match`, then stops
   * it; returns that line, or undefined when the process ended first. For `docker logs -f`.
   */
  readonly watch: (argv: ReadonlyArray<string>, match: (line: string) => boolean) => Effect.Effect<string | undefined, ProcessError>
  /** Runs argv with the terminal attached (stdio inherited); returns its exit code. */
  readonly interactive: (argv: ReadonlyArray<string>, options?: Omit<RunOptions, "stdin">) => Effect.Effect<number, ProcessError>
}>()("bot-bottle/ProcessRunner") {}

/** Runs argv and decodes its stdout as JSON with `schema`. */
export const runJson = <S extends Schema.Codec<unknown, unknown>>(schema: S) => {
  const decode = Schema.decodeUnknownEffect(Schema.fromJsonString(schema as Schema.Codec<S["Type"], unknown>))
  return Effect.fnUntraced(function*(argv: ReadonlyArray<string>, options?: RunOptions) {
    const runner = yield* ProcessRunner
    const { stdout } = yield* runner.run(argv, options)
    return yield* decode(stdout).pipe(
      Effect.mapError((e) => new ProcessError({ reason: new DecodeFailed({ argv: [...argv], message: e.message }) }))
    )
  })
}

/** `docker ps --format json` and friends print one JSON object per line. */
export const runJsonLines = <S extends Schema.Codec<unknown, unknown>>(schema: S) => {
  const decode = Schema.decodeUnknownEffect(Schema.Array(Schema.fromJsonString(schema as Schema.Codec<S["Type"], unknown>)))
  return Effect.fnUntraced(function*(argv: ReadonlyArray<string>, options?: RunOptions) {
    const runner = yield* ProcessRunner
    const { stdout } = yield* runner.run(argv, options)
    const lines = stdout.split("\n").filter((l) => l.trim() !== "")
    return yield* decode(lines).pipe(
      Effect.mapError((e) => new ProcessError({ reason: new DecodeFailed({ argv: [...argv], message: e.message }) }))
    )
  })
}
