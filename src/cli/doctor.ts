/**
 * `bottle doctor [<bottle>]`: checks what bottles need on this host (the engine, smolvm and
 * hardware virtualization, the state dir), and says how to fix each failure. Given a running
 * bottle, it reruns the isolation probe inside it (src/programs/isolationProbe.ts) and fails
 * naming whatever the sandbox can reach that it must not.
 */
import { execFileSync } from "node:child_process"
import * as fs from "node:fs"
import { Console, Effect, Option, Result, SemVer, SemVerRange } from "effect"
import { Argument, Command, Flag } from "effect/cli"
import { Backend } from "../services/Backend.ts"
import { Docker } from "../services/Docker.ts"
import { SMOLVM_MINIMUM, Smolvm, smolvmRecentEnough } from "../services/Smolvm.ts"
import { StateStore } from "../services/StateStore.ts"
import { CliFailure } from "./failure.ts"
import { onBackend, savedPlan } from "./bottleArg.ts"

/** Hardware virtualization for smolvm: KVM on Linux, Hypervisor.framework on macOS. */
export const hardwareVirtualization = (platform: NodeJS.Platform = process.platform): { readonly ok: boolean; readonly detail: string } => {
  if (platform === "linux") {
    try {
      fs.accessSync("/dev/kvm", fs.constants.R_OK | fs.constants.W_OK)
      return { ok: true, detail: "KVM (/dev/kvm is usable)" }
    } catch (e) {
      return { ok: false, detail: `KVM: /dev/kvm ${(e as NodeJS.ErrnoException).code === "ENOENT" ? "does not exist" : "is not usable by this user"}` }
    }
  }
  if (platform === "darwin") {
    try {
      const v = execFileSync("sysctl", ["-n", "kern.hv_support"], { encoding: "utf8", timeout: 2000 }).trim()
      return v === "1" ? { ok: true, detail: "Hypervisor.framework (kern.hv_support=1)" } : { ok: false, detail: "Hypervisor.framework: kern.hv_support is not 1" }
    } catch (e) {
      return { ok: false, detail: `Hypervisor.framework: ${(e as Error).message}` }
    }
  }
  return { ok: false, detail: `no hardware virtualization smolvm supports on ${platform}` }
}

/** Engines with the fix for CVE-2024-29018 (26.0.0, backported to 25.0.5 and 23.0.11). */
const DNS_FIXED = SemVerRange.parseUnsafe(">=26.0.0 || >=25.0.5 <26.0.0 || >=23.0.11 <23.1.0")

/**
 * Whether an engine version has the DNS fix. Distributions suffix the version in ways SemVer
 * does not allow (`24.0.5-0ubuntu1~22.04.1`), so the leading X.Y.Z is what is compared.
 */
export const engineHasDnsFix = (serverVersion: string): boolean => {
  const core = serverVersion.match(/^(\d+\.\d+\.\d+)/)?.[1]
  const v = core === undefined ? undefined : SemVer.parse(core)
  return v !== undefined && Result.isSuccess(v) && SemVerRange.matches(DNS_FIXED, v.success)
}

/** The isolation probe, rerun on a running bottle; one line per target, a failure names what was reachable. */
const probeBottle = Effect.fn(function*(slug: string, json: boolean) {
  const plan = yield* savedPlan(slug)
  const report = yield* Effect.gen(function*() {
    const backend = yield* Backend
    const [found] = yield* backend.inspect(slug).pipe(Effect.orElseSucceed(() => []))
    if (found?.status !== "running" && found?.status !== "unhealthy" && found?.status !== "degraded") {
      return yield* new CliFailure({ message: `bottle ${slug} is not running (\`bottle resume ${slug} --detach\` brings it back)` })
    }
    return yield* backend.probe(plan)
  }).pipe(onBackend(plan.backend))
  if (json) {
    yield* Console.log(JSON.stringify({ bottle: slug, backend: plan.backend, ok: report.ok, results: report.results, problems: report.problems, ...(report.advice ? { advice: report.advice } : {}) }, null, 2))
  } else {
    for (const r of report.results) yield* Console.log(`${r.ok ? "✓" : "✗"} ${r.label} ${r.host}:${r.port}: ${r.outcome}`)
  }
  if (!report.ok) return yield* new CliFailure({ message: `bottle ${slug}: ${report.problems.join("; ")}${report.advice ? ` — ${report.advice}` : ""}` })
})

export const doctor = Command.make("doctor", {
  bottle: Argument.String("bottle").pipe(Argument.withDescription("A running bottle: rerun its isolation probe (see `bottle ls`)"), Argument.optional),
  json: Flag.Boolean("json").pipe(Flag.withDescription("With <bottle>: the probe's results as JSON"), Flag.withDefault(false))
}, Effect.fn(function*({ bottle, json }) {
  if (Option.isSome(bottle)) return yield* probeBottle(bottle.value, json)
  const docker = yield* Docker
  const smolvm = yield* Smolvm
  const state = yield* StateStore
  let failed = 0
  const ok = (what: string, detail: string) => Console.log(`✓ ${what}: ${detail}`)
  const bad = (what: string, detail: string, fix: string) => {
    failed++
    return Console.log(`✗ ${what}: ${detail}\n    fix: ${fix}`)
  }
  const warn = (what: string, detail: string, fix: string) => Console.log(`! ${what}: ${detail}\n    fix: ${fix}`)

  const info = yield* Effect.result(docker.info)
  if (info._tag === "Success") {
    yield* ok("docker engine", `${info.success.operatingSystem}, server ${info.success.serverVersion}`)
    if (!engineHasDnsFix(info.success.serverVersion)) {
      yield* warn("docker engine DNS", `${info.success.serverVersion} has CVE-2024-29018 (internal networks' DNS lookups can leave through the host); bot-bottle points the agent's DNS at its sidecar to close it`, "upgrade the engine to 26.0.0 or later (or 25.0.5, 23.0.11)")
    }
  } else {
    yield* bad("docker engine", info.failure.message, "install Docker and start its engine (Linux: `sudo systemctl start docker`; macOS: start Docker Desktop); check `docker info`")
  }

  const smol = yield* Effect.result(smolvm.version)
  if (smol._tag === "Success") {
    const version = SemVer.parseUnsafe(smol.success)
    if (smolvmRecentEnough(version)) yield* ok("smolvm", smol.success)
    else yield* warn("smolvm", `version ${smol.success} is older than ${SMOLVM_MINIMUM} (network allowlists were unreliable before)`, "upgrade smolvm (only needed for --backend smolmachines)")
  } else if (smol.failure.reason._tag === "Missing") {
    yield* warn("smolvm", "not found", "install smolvm ≥ " + SMOLVM_MINIMUM + " for --backend smolmachines (the docker backend does not need it)")
  } else {
    yield* warn("smolvm", smol.failure.message, "reinstall smolvm ≥ " + SMOLVM_MINIMUM + " (only needed for --backend smolmachines)")
  }
  const hv = hardwareVirtualization()
  if (hv.ok) yield* ok("hardware virtualization", hv.detail)
  else yield* warn("hardware virtualization", hv.detail, "smolvm needs KVM (Linux) or Hypervisor.framework (macOS) for --backend smolmachines; the docker backend does not")

  const writable = yield* Effect.sync(() => {
    try {
      fs.mkdirSync(state.root, { recursive: true, mode: 0o700 })
      fs.accessSync(state.root, fs.constants.W_OK)
      return undefined
    } catch (e) {
      return (e as Error).message
    }
  })
  if (writable === undefined) yield* ok("state dir", state.root)
  else yield* bad("state dir", `${state.root}: ${writable}`, "make it writable, or point $BOTTLE_STATE_DIR at a writable directory")

  if (failed > 0) return yield* new CliFailure({ message: `${failed} check${failed > 1 ? "s" : ""} failed` })
})).pipe(Command.withDescription("Check the Docker engine, smolvm, hardware virtualization and the state dir, and say how to fix what fails; `bottle doctor <bottle>` reruns a running bottle's isolation probe (e.g. `bottle doctor my-bottle --json`)"))
