/** `bottle doctor`: checks what bottles need on this host, and says how to fix each failure. */
import * as fs from "node:fs"
import { Console, Effect, Result, SemVer, SemVerRange } from "effect"
import { Command } from "effect/cli"
import { jsonFlag } from "./flags.ts"
import { Docker } from "../services/Docker.ts"
import { SMOLVM_MINIMUM, Smolvm, smolvmRecentEnough } from "../services/Smolvm.ts"
import { StateStore } from "../services/StateStore.ts"
import { CliFailure } from "./failure.ts"

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

export interface DoctorCheck {
  readonly name: string
  readonly status: "ok" | "warn" | "fail"
  readonly detail: string
  readonly fix?: string
}

export const doctor = Command.make("doctor", { json: jsonFlag }, Effect.fn(function*({ json }) {
  const docker = yield* Docker
  const smolvm = yield* Smolvm
  const state = yield* StateStore
  let failed = 0
  const checks: Array<DoctorCheck> = []
  const say = (check: DoctorCheck) =>
    Effect.suspend(() => {
      checks.push(check)
      if (json) return Effect.void
      const mark = check.status === "ok" ? "✓" : check.status === "warn" ? "!" : "✗"
      return Console.log(`${mark} ${check.name}: ${check.detail}${check.fix !== undefined ? `\n    fix: ${check.fix}` : ""}`)
    })
  const ok = (what: string, detail: string) => say({ name: what, status: "ok", detail })
  const bad = (what: string, detail: string, fix: string) => {
    failed++
    return say({ name: what, status: "fail", detail, fix })
  }
  const warn = (what: string, detail: string, fix: string) => say({ name: what, status: "warn", detail, fix })

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

  if (json) yield* Console.log(JSON.stringify({ ok: failed === 0, checks }, null, 2))
  if (failed > 0) return yield* new CliFailure({ message: `${failed} check${failed > 1 ? "s" : ""} failed` })
})).pipe(
  Command.withDescription("Check the Docker engine, smolvm and the state dir, and say how to fix what fails"),
  Command.withExamples([
    { command: "bottle doctor", description: "Check this host" },
    { command: "bottle doctor --json", description: "The checks as JSON (exit 1 if one fails)" }
  ])
)
