/**
 * The live ProcessRunner on real processes: exit codes are never ignored, failures carry argv
 * and stderr, a missing binary is a typed error, stdin/env/cwd reach the child, and an
 * interrupted run kills its child (Ctrl-C must not leave a docker or smolvm call behind):
 * SIGTERM first, SIGKILL 5 s later, and the interrupt returns only once the child is gone.
 */
import { execFileSync } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Fiber, Schema } from "effect"
import { layer } from "../src/layers/ProcessRunner.ts"
import { ProcessRunner, runJson, runJsonLines } from "../src/services/ProcessRunner.ts"

const sh = (script: string) => ["sh", "-c", script]

/** Pids of processes whose command line contains `marker` (pgrep -f). */
const pidsOf = (marker: string): ReadonlyArray<number> => {
  try {
    return execFileSync("pgrep", ["-f", marker], { encoding: "utf8" }).split("\n").filter(Boolean).map(Number)
  } catch (e) {
    // pgrep exits 1 when nothing matches; anything else (pgrep missing: ENOENT) is no answer.
    if ((e as { status?: unknown }).status === 1) return []
    throw new Error(`pgrep -f ${JSON.stringify(marker)} failed (is pgrep installed? Debian: procps): ${e instanceof Error ? e.message : String(e)}`)
  }
}
const isAlive = (pid: number) => {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}

describe("ProcessRunner", () => {
  it.live("watch: returns the first matching line (stdout or stderr) and stops the process", () =>
    Effect.gen(function*() {
      const runner = yield* ProcessRunner
      const marker = `sleep 30.${process.pid}7`
      const line = yield* runner.watch(sh(`echo starting; echo 'bottle-bundle: ready (egress)' >&2; exec ${marker}`), (l) => l.startsWith("bottle-bundle: ready"))
      assert.strictEqual(line, "bottle-bundle: ready (egress)")
      yield* Effect.sleep("200 millis")
      assert.deepStrictEqual(pidsOf(marker), [], "the watched process was stopped")
    }).pipe(Effect.provide(layer)))

  it.effect("watch: returns undefined when the process ends without a match", () =>
    Effect.gen(function*() {
      const runner = yield* ProcessRunner
      assert.isUndefined(yield* runner.watch(sh("echo one; echo two"), (l) => l === "three"))
    }).pipe(Effect.provide(layer)))

  it.effect("run returns stdout and stderr of a successful command", () =>
    Effect.gen(function*() {
      const runner = yield* ProcessRunner
      const r = yield* runner.run(sh("echo out; echo err >&2"))
      assert.deepStrictEqual(r, { stdout: "out\n", stderr: "err\n", exitCode: 0 })
    }).pipe(Effect.provide(layer)))

  it.effect("a non-zero exit fails with CommandFailed carrying argv, exit code and stderr", () =>
    Effect.gen(function*() {
      const runner = yield* ProcessRunner
      const argv = sh("echo partial; echo 'no such thing' >&2; exit 3")
      const err = yield* Effect.flip(runner.run(argv))
      assert.strictEqual(err._tag, "ProcessError")
      assert.strictEqual(err.reason._tag, "CommandFailed")
      if (err.reason._tag === "CommandFailed") {
        assert.deepStrictEqual(err.reason.argv, argv)
        assert.strictEqual(err.reason.exitCode, 3)
        assert.strictEqual(err.reason.stderr, "no such thing\n")
      }
      assert.include(err.message, "exited with code 3")
      assert.include(err.message, "no such thing")
    }).pipe(Effect.provide(layer)))

  it.effect("a child killed by a signal is a failure too", () =>
    Effect.gen(function*() {
      const runner = yield* ProcessRunner
      const err = yield* Effect.flip(runner.run(sh("kill -TERM $$")))
      assert.strictEqual(err.reason._tag, "CommandFailed")
      if (err.reason._tag === "CommandFailed") assert.strictEqual(err.reason.exitCode, 143)
    }).pipe(Effect.provide(layer)))

  it.effect("a signal's exit code is 128 + its number, as in a shell", () =>
    Effect.gen(function*() {
      const runner = yield* ProcessRunner
      assert.strictEqual((yield* runner.exec(sh("kill -KILL $$"))).exitCode, 137)
      assert.strictEqual((yield* runner.exec(sh("kill -INT $$"))).exitCode, 130)
      assert.strictEqual(yield* runner.interactive(sh("kill -TERM $$")), 143)
    }).pipe(Effect.provide(layer)))

  it.effect("a missing cwd fails with SpawnFailed naming the directory", () =>
    Effect.gen(function*() {
      const runner = yield* ProcessRunner
      const err = yield* Effect.flip(runner.run(sh("pwd"), { cwd: "/nonexistent/bb-dir" }))
      assert.strictEqual(err.reason._tag, "SpawnFailed")
      assert.include(err.message, "/nonexistent/bb-dir")
    }).pipe(Effect.provide(layer)))

  it.effect("a missing binary fails with SpawnFailed naming it", () =>
    Effect.gen(function*() {
      const runner = yield* ProcessRunner
      const err = yield* Effect.flip(runner.run(["bb-no-such-binary-xyz", "--version"]))
      assert.strictEqual(err.reason._tag, "SpawnFailed")
      assert.deepStrictEqual(err.reason.argv, ["bb-no-such-binary-xyz", "--version"])
      assert.include(err.message, "bb-no-such-binary-xyz")
      // exec reports it the same way: a process that never ran has no exit code to return.
      const err2 = yield* Effect.flip(runner.exec(["bb-no-such-binary-xyz"]))
      assert.strictEqual(err2.reason._tag, "SpawnFailed")
    }).pipe(Effect.provide(layer)))

  it.effect("exec returns a non-zero exit without failing", () =>
    Effect.gen(function*() {
      const runner = yield* ProcessRunner
      const r = yield* runner.exec(sh("echo hi; echo bad >&2; exit 7"))
      assert.deepStrictEqual(r, { stdout: "hi\n", stderr: "bad\n", exitCode: 7 })
    }).pipe(Effect.provide(layer)))

  it.effect("stdin is written to the child and closed (text and bytes)", () =>
    Effect.gen(function*() {
      const runner = yield* ProcessRunner
      assert.strictEqual((yield* runner.run(["cat"], { stdin: "line one\nline two\n" })).stdout, "line one\nline two\n")
      assert.strictEqual((yield* runner.run(["wc", "-c"], { stdin: new Uint8Array([1, 2, 3, 4, 5]) })).stdout.trim(), "5")
      // Without stdin the child sees EOF at once instead of hanging.
      assert.strictEqual((yield* runner.run(["cat"])).stdout, "")
      // More than a pipe buffer holds, both ways.
      const big = "0123456789abcdef".repeat(128 * 1024)
      assert.strictEqual((yield* runner.run(["cat"], { stdin: big })).stdout, big)
      // A child that exits without reading its stdin is no failure (the EPIPE is ours).
      assert.strictEqual((yield* runner.exec(["true"], { stdin: big })).exitCode, 0)
    }).pipe(Effect.provide(layer)))

  it.effect("env is added to the inherited environment; cwd is honoured", () =>
    Effect.gen(function*() {
      const runner = yield* ProcessRunner
      const dir = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), "bb-pr-")))
      const r = yield* runner.run(sh('echo "$BB_TEST_VAR"; echo "$PATH"; pwd'), { env: { BB_TEST_VAR: "set" }, cwd: dir })
      const [v, p, wd] = r.stdout.split("\n")
      assert.strictEqual(v, "set")
      assert.strictEqual(p, process.env["PATH"], "PATH is inherited, not replaced")
      assert.strictEqual(wd, dir)
    }).pipe(Effect.provide(layer)))

  it.effect("line callbacks see each stdout and stderr line as it arrives", () =>
    Effect.gen(function*() {
      const runner = yield* ProcessRunner
      const out: Array<string> = []
      const err: Array<string> = []
      yield* runner.run(sh("printf 'a\\nb\\r\\nc'; printf 'x\\ny\\n' >&2"), { onStdoutLine: (l) => out.push(l), onStderrLine: (l) => err.push(l) })
      assert.deepStrictEqual(out, ["a", "b", "c"])
      assert.deepStrictEqual(err, ["x", "y"])
    }).pipe(Effect.provide(layer)))

  it.live("line callbacks get whole characters when a UTF-8 sequence spans two reads", () =>
    Effect.gen(function*() {
      const runner = yield* ProcessRunner
      const out: Array<string> = []
      // "é" is c3 a9; the pause makes the two bytes arrive in separate chunks.
      const r = yield* runner.run(sh("printf 'caf\\303'; sleep 0.2; printf '\\251\\n'"), { onStdoutLine: (l) => out.push(l) })
      assert.deepStrictEqual(out, ["café"])
      assert.strictEqual(r.stdout, "café\n")
    }).pipe(Effect.provide(layer)))

  it.effect("interactive returns the exit code without failing", () =>
    Effect.gen(function*() {
      const runner = yield* ProcessRunner
      assert.strictEqual(yield* runner.interactive(sh("exit 4")), 4)
    }).pipe(Effect.provide(layer)))

  it.effect("interactive honours env and cwd, and reports a missing binary as SpawnFailed", () =>
    Effect.gen(function*() {
      const runner = yield* ProcessRunner
      const dir = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), "bb-pr-")))
      const check = sh(`test "$BB_TEST_VAR" = set && test "$PATH" = "${process.env["PATH"]}" && test "$(pwd)" = "${dir}"`)
      assert.strictEqual(yield* runner.interactive(check, { env: { BB_TEST_VAR: "set" }, cwd: dir }), 0)
      const err = yield* Effect.flip(runner.interactive(["bb-no-such-binary-xyz"]))
      assert.strictEqual(err.reason._tag, "SpawnFailed")
    }).pipe(Effect.provide(layer)))

  it.effect("children stay in our process group, so a terminal Ctrl-C and the TTY reach them", () =>
    Effect.gen(function*() {
      const runner = yield* ProcessRunner
      const ours = execFileSync("ps", ["-o", "pgid=", "-p", String(process.pid)], { encoding: "utf8" }).trim()
      assert.strictEqual((yield* runner.run(sh("ps -o pgid= -p $$"))).stdout.trim(), ours)
    }).pipe(Effect.provide(layer)))

  it.live("interrupting a run kills its child", () =>
    Effect.gen(function*() {
      const runner = yield* ProcessRunner
      // A unique argument, so pgrep finds our sleep and nobody else's.
      const marker = `30.${process.pid}${Math.floor(Math.random() * 1e6)}`
      const fiber = yield* Effect.forkChild(runner.run(["sleep", marker]))
      let pids: ReadonlyArray<number> = []
      for (let i = 0; i < 100 && pids.length === 0; i++) {
        yield* Effect.sleep("50 millis")
        pids = pidsOf(`sleep ${marker}`)
      }
      assert.strictEqual(pids.length, 1, "the child is running")
      yield* Fiber.interrupt(fiber)
      // No polling: the interrupt completes only after the child has exited.
      assert.isFalse(isAlive(pids[0]!), `sleep (pid ${pids[0]}) still runs after the interrupt`)
      assert.deepStrictEqual(pidsOf(`sleep ${marker}`), [])
    }).pipe(Effect.provide(layer)))

  it.live("a child that ignores SIGTERM gets SIGKILL 5 s after the interrupt", () =>
    Effect.gen(function*() {
      const runner = yield* ProcessRunner
      const marker = `bb-stubborn-${process.pid}-${Math.floor(Math.random() * 1e6)}`
      // exec keeps the marker in the command line of the process that ignores SIGTERM.
      const fiber = yield* Effect.forkChild(runner.run(sh(`trap '' TERM; echo up; exec sh -c 'while :; do sleep 0.1; done' ${marker}`)))
      let pids: ReadonlyArray<number> = []
      for (let i = 0; i < 100 && pids.length === 0; i++) {
        yield* Effect.sleep("50 millis")
        pids = pidsOf(marker)
      }
      assert.strictEqual(pids.length, 1, "the child is running")
      const started = Date.now()
      yield* Fiber.interrupt(fiber)
      const took = Date.now() - started
      assert.isFalse(isAlive(pids[0]!), "the child is gone once the interrupt returns")
      assert.isAtLeast(took, 4_500, "SIGTERM alone did not stop it")
      assert.isBelow(took, 8_000, "SIGKILL followed within the bound")
    }).pipe(Effect.provide(layer)), 20_000)

  it.effect("runJson decodes stdout with a Schema", () =>
    Effect.gen(function*() {
      const Info = Schema.Struct({ name: Schema.String, size: Schema.Number })
      const info = yield* runJson(Info)(sh(`echo '{"name":"img","size":42}'`))
      assert.deepStrictEqual(info, { name: "img", size: 42 })
      const lines = yield* runJsonLines(Info)(sh(`printf '{"name":"a","size":1}\\n\\n{"name":"b","size":2}\\n'`))
      assert.deepStrictEqual(lines, [{ name: "a", size: 1 }, { name: "b", size: 2 }])
    }).pipe(Effect.provide(layer)))

  it.effect("runJson fails with DecodeFailed on bad JSON or the wrong shape, and passes CommandFailed through", () =>
    Effect.gen(function*() {
      const decode = runJson(Schema.Struct({ name: Schema.String }))
      const notJson = sh("echo 'not json'")
      const bad = yield* Effect.flip(decode(notJson))
      assert.strictEqual(bad.reason._tag, "DecodeFailed")
      assert.deepStrictEqual(bad.reason.argv, notJson)
      const shape = yield* Effect.flip(decode(sh(`echo '{"name":1}'`)))
      assert.strictEqual(shape.reason._tag, "DecodeFailed")
      assert.include(shape.message, "could not be decoded")
      const failed = yield* Effect.flip(decode(sh(`echo '{"name":"x"}'; exit 1`)))
      assert.strictEqual(failed.reason._tag, "CommandFailed", "the exit code is checked before decoding")
      const badLine = yield* Effect.flip(runJsonLines(Schema.Struct({ name: Schema.String }))(sh(`printf '{"name":"a"}\\nnope\\n'`)))
      assert.strictEqual(badLine.reason._tag, "DecodeFailed")
    }).pipe(Effect.provide(layer)))
})
