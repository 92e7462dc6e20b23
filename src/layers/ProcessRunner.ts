/**
 * Live ProcessRunner on `effect/process`: every command is a `ChildProcess` spawned by the
 * Node `ChildProcessSpawner` inside a scope, so closing the scope (completion, failure or
 * interruption) releases the child. Interruption sends SIGTERM, then SIGKILL after 5 s, and
 * waits until the child is gone, so a Ctrl-C never leaves a docker/smolvm call running behind
 * us.
 *
 * Two choices differ from the spawner's defaults, both on purpose:
 * - `detached: false`. On POSIX the spawner defaults to `detached: true`, which makes each
 *   child the leader of a new session: it loses the controlling terminal (an attached
 *   `docker exec -it` would no longer be in the terminal's foreground group, so it would get
 *   no SIGWINCH and no terminal Ctrl-C), and on release the spawner SIGTERMs the whole
 *   process group even after a successful exit, which would kill anything a CLI leaves
 *   running in the background on purpose (a VM monitor started by `smolvm machine start`).
 *   Children therefore stay in our process group, as with a plain `node:child_process` spawn:
 *   a terminal Ctrl-C reaches them as it reaches us, and only the child itself is signalled.
 * - stdin is always given (the bytes of `options.stdin`, or an empty stream), so the child
 *   sees EOF instead of waiting on an open pipe.
 *
 * A child killed by a signal makes the spawner's `exitCode` fail; it is reported here as the
 * shell does, 128 + the signal number (SIGTERM → 143).
 */
import * as os from "node:os"
import { Effect, Layer, Option, Stream } from "effect"
import type * as PlatformError from "effect/PlatformError"
import { ChildProcess, ChildProcessSpawner } from "effect/process"
import * as NodeChildProcessSpawner from "@effect/platform-node/NodeChildProcessSpawner"
import * as NodeFileSystem from "@effect/platform-node/NodeFileSystem"
import * as NodePath from "@effect/platform-node/NodePath"
import { CommandFailed, ProcessError, ProcessRunner, SpawnFailed, type RunOptions, type RunResult } from "../services/ProcessRunner.ts"

/** How long a child may take to exit after SIGTERM before it gets SIGKILL. */
const FORCE_KILL_AFTER = "5 seconds"

const spawnFailed = (argv: ReadonlyArray<string>) => (e: PlatformError.PlatformError) =>
  new ProcessError({
    reason: new SpawnFailed({
      argv: [...argv],
      // Node's own message ("spawn docker ENOENT", "ENOENT: no such file or directory, access
      // '/x'") says more than the wrapper's.
      message: e.cause instanceof Error ? e.cause.message : e.message
    })
  })

const signalExit = /receipt of signal: '(\w+)'/

/** The exit code, or 128 + signal number for a child killed by a signal. */
const exitCodeOf = (handle: ChildProcessSpawner.ChildProcessHandle): Effect.Effect<number, PlatformError.PlatformError> =>
  handle.exitCode.pipe(
    Effect.map(Number),
    Effect.catch((e) => {
      const signal = (e.cause instanceof Error ? e.cause.message : e.message).match(signalExit)?.[1]
      const n = signal === undefined ? undefined : os.constants.signals[signal as NodeJS.Signals]
      return n === undefined ? Effect.fail(e) : Effect.succeed(128 + n)
    })
  )

/** Non-empty lines of a byte stream; `\n`, `\r\n` and a lone `\r` (progress bars) all end one. */
const lines = <E>(bytes: Stream.Stream<Uint8Array, E>): Stream.Stream<string, E> =>
  bytes.pipe(Stream.decodeText(), Stream.splitLines, Stream.filter((l) => l.length > 0))

/** Collects a byte stream as UTF-8 text, handing each line to `onLine` as it arrives. */
const collect = (bytes: Stream.Stream<Uint8Array, PlatformError.PlatformError>, onLine?: (line: string) => void) =>
  Effect.suspend(() => {
    const chunks: Array<Uint8Array> = []
    const kept = Stream.tap(bytes, (c) => Effect.sync(() => chunks.push(c)))
    return (onLine ? Stream.runForEach(lines(kept), (l) => Effect.sync(() => onLine(l))) : Stream.runDrain(kept)).pipe(
      Effect.map(() => Buffer.concat(chunks).toString("utf8"))
    )
  })

const command = (argv: ReadonlyArray<string>, options: Omit<ChildProcess.CommandOptions, "detached" | "forceKillAfter">) => {
  const [cmd, ...args] = argv
  return ChildProcess.make(cmd!, args, { ...options, detached: false, forceKillAfter: FORCE_KILL_AFTER })
}

const placement = (options: RunOptions | undefined) => ({
  ...(options?.cwd !== undefined ? { cwd: options.cwd } : {}),
  ...(options?.env !== undefined ? { env: options.env, extendEnv: true } : {})
})

export const make = Effect.gen(function*() {
  const spawner = yield* ChildProcessSpawner.ChildProcessSpawner

  const exec = (argv: ReadonlyArray<string>, options?: RunOptions): Effect.Effect<RunResult, ProcessError> =>
    Effect.scoped(Effect.gen(function*() {
      const input = options?.stdin === undefined
        ? Stream.empty
        : Stream.succeed(typeof options.stdin === "string" ? Buffer.from(options.stdin, "utf8") : options.stdin)
      const handle = yield* spawner.spawn(command(argv, { ...placement(options), stdin: input }))
      // Like node's "close": the output is complete and the child has exited.
      const [stdout, stderr, exitCode] = yield* Effect.all([
        collect(handle.stdout, options?.onStdoutLine),
        collect(handle.stderr, options?.onStderrLine),
        exitCodeOf(handle)
      ], { concurrency: "unbounded" })
      return { stdout, stderr, exitCode }
    })).pipe(Effect.mapError(spawnFailed(argv)))

  const watch = (argv: ReadonlyArray<string>, match: (line: string) => boolean): Effect.Effect<string | undefined, ProcessError> =>
    Effect.scoped(Effect.gen(function*() {
      const handle = yield* spawner.spawn(command(argv, { stdin: "ignore" }))
      // Split each stream on its own: merging the bytes first could splice half a stdout line
      // onto half a stderr line. Closing the scope stops the process.
      const line = yield* Stream.merge(lines(handle.stdout), lines(handle.stderr)).pipe(Stream.filter(match), Stream.runHead)
      return Option.getOrUndefined(line)
    })).pipe(Effect.mapError(spawnFailed(argv)))

  const interactive = (argv: ReadonlyArray<string>, options?: Omit<RunOptions, "stdin">): Effect.Effect<number, ProcessError> =>
    Effect.scoped(Effect.gen(function*() {
      const handle = yield* spawner.spawn(command(argv, { ...placement(options), stdin: "inherit", stdout: "inherit", stderr: "inherit" }))
      return yield* exitCodeOf(handle)
    })).pipe(Effect.mapError(spawnFailed(argv)))

  return ProcessRunner.of({
    watch,
    exec,
    run: (argv, options) =>
      exec(argv, options).pipe(
        Effect.flatMap((r) =>
          r.exitCode === 0
            ? Effect.succeed(r)
            : Effect.fail(new ProcessError({ reason: new CommandFailed({ argv: [...argv], exitCode: r.exitCode, stderr: r.stderr }) }))
        )
      ),
    interactive
  })
})

/** Self-contained: brings the Node spawner (and the FileSystem and Path it resolves `cwd` with). */
export const layer = Layer.effect(ProcessRunner, make).pipe(
  Layer.provide(NodeChildProcessSpawner.layer),
  Layer.provide(Layer.mergeAll(NodeFileSystem.layer, NodePath.layer))
)
