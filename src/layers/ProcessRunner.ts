/**
 * Live ProcessRunner on node:child_process. Interruption kills the child (SIGTERM, then
 * SIGKILL after 5 s), so a Ctrl-C never leaves a docker/smolvm call running behind us.
 */
import { spawn } from "node:child_process"
import { Effect, Layer } from "effect"
import { CommandFailed, ProcessError, ProcessRunner, SpawnFailed, type RunOptions, type RunResult } from "../services/ProcessRunner.ts"

const lineSplitter = (onLine: (line: string) => void) => {
  let buf = ""
  return {
    push: (chunk: string) => {
      buf += chunk
      let i: number
      while ((i = buf.search(/[\r\n]/)) >= 0) {
        const line = buf.slice(0, i)
        buf = buf.slice(i + 1)
        if (line.length > 0) onLine(line)
      }
    },
    end: () => {
      if (buf.length > 0) onLine(buf)
      buf = ""
    }
  }
}

const spawnCollect = (argv: ReadonlyArray<string>, options: RunOptions | undefined, stdio: "pipe" | "inherit") =>
  Effect.callback<RunResult, ProcessError>((resume) => {
    const [cmd, ...args] = argv
    const child = spawn(cmd!, args, {
      cwd: options?.cwd,
      env: options?.env ? { ...process.env, ...options.env } : process.env,
      stdio: stdio === "inherit" ? "inherit" : ["pipe", "pipe", "pipe"]
    })
    const out: Array<Buffer> = []
    const err: Array<Buffer> = []
    const outLines = options?.onStdoutLine ? lineSplitter(options.onStdoutLine) : undefined
    const errLines = options?.onStderrLine ? lineSplitter(options.onStderrLine) : undefined
    child.stdout?.on("data", (c: Buffer) => {
      out.push(c)
      outLines?.push(c.toString("utf8"))
    })
    child.stderr?.on("data", (c: Buffer) => {
      err.push(c)
      errLines?.push(c.toString("utf8"))
    })
    if (child.stdin) {
      child.stdin.on("error", () => {})
      if (options?.stdin !== undefined) child.stdin.end(options.stdin)
      else child.stdin.end()
    }
    let settled = false
    child.on("error", (e) => {
      if (settled) return
      settled = true
      resume(Effect.fail(new ProcessError({ reason: new SpawnFailed({ argv: [...argv], message: e.message }) })))
    })
    child.on("close", (code, signal) => {
      if (settled) return
      settled = true
      outLines?.end()
      errLines?.end()
      resume(Effect.succeed({
        stdout: Buffer.concat(out).toString("utf8"),
        stderr: Buffer.concat(err).toString("utf8"),
        exitCode: code ?? (signal ? 128 + (signal === "SIGKILL" ? 9 : 15) : 1)
      }))
    })
    return Effect.sync(() => {
      if (settled || child.exitCode !== null) return
      child.kill("SIGTERM")
      const t = setTimeout(() => child.kill("SIGKILL"), 5000)
      t.unref()
    })
  })

const watch = (argv: ReadonlyArray<string>, match: (line: string) => boolean) =>
  Effect.callback<string | undefined, ProcessError>((resume) => {
    const [cmd, ...args] = argv
    const child = spawn(cmd!, args, { stdio: ["ignore", "pipe", "pipe"] })
    let settled = false
    const settle = (eff: Effect.Effect<string | undefined, ProcessError>) => {
      if (settled) return
      settled = true
      resume(eff)
      if (child.exitCode === null) child.kill("SIGTERM")
    }
    const onLine = (line: string) => {
      if (match(line)) settle(Effect.succeed(line))
    }
    const out = lineSplitter(onLine)
    const err = lineSplitter(onLine)
    child.stdout.on("data", (c: Buffer) => out.push(c.toString("utf8")))
    child.stderr.on("data", (c: Buffer) => err.push(c.toString("utf8")))
    child.on("error", (e) => settle(Effect.fail(new ProcessError({ reason: new SpawnFailed({ argv: [...argv], message: e.message }) }))))
    child.on("close", () => {
      out.end()
      err.end()
      settle(Effect.succeed(undefined))
    })
    return Effect.sync(() => {
      settled = true
      if (child.exitCode === null) child.kill("SIGTERM")
    })
  })

export const layer = Layer.succeed(ProcessRunner, ProcessRunner.of({
  watch,
  exec: (argv, options) => spawnCollect(argv, options, "pipe"),
  run: (argv, options) =>
    spawnCollect(argv, options, "pipe").pipe(
      Effect.flatMap((r) =>
        r.exitCode === 0
          ? Effect.succeed(r)
          : Effect.fail(new ProcessError({ reason: new CommandFailed({ argv: [...argv], exitCode: r.exitCode, stderr: r.stderr }) }))
      )
    ),
  interactive: (argv, options) => spawnCollect(argv, options, "inherit").pipe(Effect.map((r) => r.exitCode))
}))
