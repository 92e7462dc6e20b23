/**
 * Live Smolvm: the real `smolvm` CLI (≥ SMOLVM_MINIMUM) through the ProcessRunner. The argv
 * shapes are smolvm's own, pinned from smol-machines/smolvm v1.9.3 (src/cli/machine.rs,
 * src/cli/pack.rs, src/cli/vm_common.rs; the same flags at v1.9.0): the machine name is the
 * `--name` flag, `--from` carries the `.smolmachine` artifact, `--allow-cidr` the allowlist,
 * `--label` our ownership, `-e` env (PID 1's only, so every exec passes it again).
 *
 * Guarantees:
 * - a missing binary is `Missing`, a failed run `CommandFailed` (argv + stderr), output that does
 *   not decode `DecodeFailed` (`ls --json` through Schema, `--version` as SemVer);
 * - `machine` returns only once an exec works (polled, bounded: `NotReady` names the machine
 *   and the last error) and pack's ownership remap is undone; if any of that fails, or the scope
 *   closes (success, failure, interruption), the machine is stopped and deleted, and that
 *   release logs its failure and never fails;
 * - `create`, `start` and `stop` are the same steps for a caller that keeps a machine between
 *   sessions (the smolmachines backend keeps a stopped bottle's machine: its disks are the
 *   bottle's workspace and home); `stop` of a machine already stopped or gone succeeds;
 * - nothing here trusts the allowlist: the backend probes it from inside afterwards.
 */
import { Clock, Effect, Layer, Schema, SemVer } from "effect"
import { type ProcessError, ProcessRunner, runJson } from "../services/ProcessRunner.ts"
import {
  type MachineExecOptions,
  type MachineSpec,
  MachineInfo,
  parseSmolvmVersion,
  Smolvm,
  SMOLVM_MINIMUM,
  SmolvmCommandFailed,
  SmolvmDecodeFailed,
  SmolvmError,
  SmolvmMissing,
  SmolvmNotReady,
  smolvmRecentEnough,
  SmolvmTooOld
} from "../services/Smolvm.ts"

const SMOLVM = process.env["BOTTLE_SMOLVM"] ?? "smolvm"

const toSmolvmError = (e: ProcessError): SmolvmError => {
  const r = e.reason
  switch (r._tag) {
    case "SpawnFailed":
      return new SmolvmError({ reason: new SmolvmMissing({ message: r.message }) })
    case "CommandFailed":
      return new SmolvmError({ reason: new SmolvmCommandFailed({ argv: r.argv, exitCode: r.exitCode, stderr: r.stderr }) })
    case "DecodeFailed":
      return new SmolvmError({ reason: new SmolvmDecodeFailed({ message: r.message }) })
  }
}

/** `-e K=V` for each variable (values are plain: the bottle's env holds no secret). */
const envArgs = (env: Record<string, string>) => Object.entries(env).flatMap(([k, v]) => ["-e", `${k}=${v}`])
const execArgv = (name: string, argv: ReadonlyArray<string>, options: MachineExecOptions, extra: ReadonlyArray<string> = []) => [
  SMOLVM, "machine", "exec", "--name", name, ...extra, ...envArgs(options.env), ...(options.workdir ? ["-w", options.workdir] : []), "--", ...argv
]

/** After start: pack remaps ownership to the host user; the agent's home and temp dirs get theirs back. */
export const OWNERSHIP_FIX: ReadonlyArray<string> = ["sh", "-c", "chown -R node:node /home/node && chmod 1777 /tmp /var/tmp"]

export const make = Effect.gen(function*() {
  const runner = yield* ProcessRunner
  const run = (argv: ReadonlyArray<string>, options?: { readonly stdin?: string }) =>
    runner.run(argv, options).pipe(Effect.mapError(toSmolvmError))

  const version = Effect.gen(function*() {
    const out = yield* run([SMOLVM, "--version"])
    const parsed = parseSmolvmVersion(out.stdout)
    if (parsed === undefined) {
      return yield* new SmolvmError({ reason: new SmolvmDecodeFailed({ message: `no version in \`smolvm --version\` output: ${JSON.stringify(out.stdout.trim().slice(0, 200))}` }) })
    }
    return SemVer.format(parsed)
  }).pipe(Effect.withSpan("Smolvm.version"))

  const ensureRecent = Effect.gen(function*() {
    const v = yield* version
    if (!smolvmRecentEnough(SemVer.parseUnsafe(v))) return yield* new SmolvmError({ reason: new SmolvmTooOld({ version: v, minimum: SMOLVM_MINIMUM }) })
    return v
  }).pipe(Effect.withSpan("Smolvm.ensureRecent"))

  const exec = Effect.fn("Smolvm.exec")(function*(name: string, argv: ReadonlyArray<string>, options: MachineExecOptions) {
    return yield* runner.exec(execArgv(name, argv, options, options.stdin !== undefined ? ["-i"] : []), options.stdin !== undefined ? { stdin: options.stdin } : {}).pipe(Effect.mapError(toSmolvmError))
  })

  const remove = Effect.fn("Smolvm.remove")(function*(name: string) {
    const known = (yield* list).some((m) => m.name === name)
    if (!known) return
    // A stop of a machine that is not running fails; delete --force is what must succeed.
    yield* runner.exec([SMOLVM, "machine", "stop", "--name", name]).pipe(Effect.mapError(toSmolvmError))
    yield* run([SMOLVM, "machine", "delete", "--name", name, "--force"])
  })

  const list = runJson(Schema.Array(MachineInfo))([SMOLVM, "machine", "ls", "--json"]).pipe(
    Effect.provideService(ProcessRunner, runner),
    Effect.mapError(toSmolvmError),
    Effect.withSpan("Smolvm.list")
  )

  /** Polls `exec true` until it works, or fails NotReady after `timeoutMs`. */
  const waitExecReady = Effect.fnUntraced(function*(name: string, timeoutMs: number) {
    const deadline = (yield* Clock.currentTimeMillis) + timeoutMs
    let last = ""
    let delay = 25
    while (true) {
      const r = yield* runner.exec(execArgv(name, ["true"], { env: {} })).pipe(Effect.mapError(toSmolvmError))
      if (r.exitCode === 0) return
      last = r.stderr || `exit ${r.exitCode}`
      if ((yield* Clock.currentTimeMillis) + delay > deadline) return yield* new SmolvmError({ reason: new SmolvmNotReady({ name, timeoutMs, lastError: last }) })
      yield* Effect.sleep(delay)
      delay = Math.min(delay * 2, 500)
    }
  })

  const createArgv = (spec: MachineSpec) => [
    SMOLVM, "machine", "create", "--name", spec.name, "--from", spec.from,
    ...spec.allowCidrs.flatMap((c) => ["--allow-cidr", c]),
    ...Object.entries(spec.labels).flatMap(([k, v]) => ["--label", `${k}=${v}`]),
    ...envArgs(spec.env),
    ...(spec.dns ? ["--dns", spec.dns] : []),
    ...(spec.cpus !== undefined ? ["--cpus", String(Math.max(1, Math.ceil(spec.cpus)))] : []),
    ...(spec.memoryMib !== undefined ? ["--mem", String(spec.memoryMib)] : [])
  ]
  const create = Effect.fn("Smolvm.create")(function*(spec: MachineSpec) {
    yield* run(createArgv(spec))
  })
  const start = Effect.fn("Smolvm.start")(function*(name: string, options?: { readonly readyTimeoutMs?: number }) {
    yield* run([SMOLVM, "machine", "start", "--name", name])
    yield* waitExecReady(name, options?.readyTimeoutMs ?? 60_000)
    const fix = yield* exec(name, OWNERSHIP_FIX, { env: {} })
    if (fix.exitCode !== 0) {
      return yield* new SmolvmError({ reason: new SmolvmCommandFailed({ argv: [SMOLVM, "machine", "exec", ...OWNERSHIP_FIX], exitCode: fix.exitCode, stderr: fix.stderr }) })
    }
  })
  const stop = Effect.fn("Smolvm.stop")(function*(name: string) {
    const found = (yield* list).find((m) => m.name === name)
    if (found === undefined || found.state === "stopped") return
    const r = yield* runner.exec([SMOLVM, "machine", "stop", "--name", name]).pipe(Effect.mapError(toSmolvmError))
    if (r.exitCode === 0) return
    // A machine that was not running after all (it crashed since the listing) is stopped.
    const now = (yield* list).find((m) => m.name === name)
    if (now !== undefined && now.state !== "running") return
    return yield* new SmolvmError({ reason: new SmolvmCommandFailed({ argv: [SMOLVM, "machine", "stop", "--name", name], exitCode: r.exitCode, stderr: r.stderr }) })
  })

  const machine = Effect.fn("Smolvm.machine")(function*(spec: MachineSpec) {
    // Acquired as soon as `create` is asked for: a create interrupted half-way may have left a
    // machine, and the release (a remove of whatever is there) must run for it too.
    yield* Effect.acquireRelease(
      create(spec),
      () => remove(spec.name).pipe(Effect.catch((e) => Effect.logError(`could not remove smolvm machine ${spec.name}: ${e.message}`)))
    )
    yield* start(spec.name, spec.readyTimeoutMs !== undefined ? { readyTimeoutMs: spec.readyTimeoutMs } : undefined)
    return { name: spec.name }
  })

  return Smolvm.of({
    version,
    ensureRecent,
    packCreate: Effect.fn("Smolvm.packCreate")(function*(image: string, out: string) {
      if (/\.smolmachine$/i.test(out)) return yield* Effect.die(new Error(`Smolvm.packCreate: OUT must not end in .smolmachine (got ${out})`))
      yield* run([SMOLVM, "pack", "create", "--image", image, "-o", out])
      return `${out}.smolmachine`
    }),
    machine,
    create,
    start,
    stop,
    exec,
    execInteractive: Effect.fn("Smolvm.execInteractive")(function*(name, argv, options) {
      return yield* runner.interactive(execArgv(name, argv, options, options.tty ? ["-i", "-t"] : ["-i"])).pipe(Effect.mapError(toSmolvmError))
    }),
    copyTo: Effect.fn("Smolvm.copyTo")(function*(name, hostPath, guestPath) {
      yield* run([SMOLVM, "machine", "cp", hostPath, `${name}:${guestPath}`])
    }),
    copyFrom: Effect.fn("Smolvm.copyFrom")(function*(name, guestPath, hostPath) {
      yield* run([SMOLVM, "machine", "cp", `${name}:${guestPath}`, hostPath])
    }),
    list,
    remove
  })
})

export const layer = Layer.effect(Smolvm, make)
