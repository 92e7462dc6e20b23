/** `bottle doctor`: checks what bottles need on this host, and says how to fix each failure. */
import * as fs from "node:fs"
import { Console, Effect } from "effect"
import { Command } from "effect/cli"
import { Docker } from "../services/Docker.ts"
import { ProcessRunner } from "../services/ProcessRunner.ts"
import { SMOLVM_MINIMUM } from "../services/Smolvm.ts"
import { StateStore } from "../services/StateStore.ts"
import { CliFailure } from "./failure.ts"

const newer = (a: string, b: string) => {
  const pa = a.split(".").map(Number)
  const pb = b.split(".").map(Number)
  for (let i = 0; i < 3; i++) if ((pa[i] ?? 0) !== (pb[i] ?? 0)) return (pa[i] ?? 0) > (pb[i] ?? 0)
  return true
}

export const doctor = Command.make("doctor", {}, Effect.fn(function*() {
  const docker = yield* Docker
  const runner = yield* ProcessRunner
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
    const v = info.success.serverVersion.match(/^(\d+)\.(\d+)\.(\d+)/)
    const [maj, min, pat] = v ? [Number(v[1]), Number(v[2]), Number(v[3])] : [0, 0, 0]
    const patched = maj >= 26 || (maj === 25 && pat >= 5) || (maj === 23 && min === 0 && pat >= 11)
    if (!patched) {
      yield* warn("docker engine DNS", `${info.success.serverVersion} has CVE-2024-29018 (internal networks' DNS lookups can leave through the host); bot-bottle points the agent's DNS at its sidecar to close it`, "upgrade the engine to 26.0.0 or later (or 25.0.5, 23.0.11)")
    }
  } else {
    yield* bad("docker engine", info.failure.message, "install Docker and start its engine (Linux: `sudo systemctl start docker`; macOS: start Docker Desktop); check `docker info`")
  }

  const smol = yield* Effect.result(runner.run(["smolvm", "--version"]))
  if (smol._tag === "Success") {
    const version = smol.success.stdout.match(/(\d+\.\d+\.\d+)/)?.[1] ?? "unknown"
    if (version !== "unknown" && newer(version, SMOLVM_MINIMUM)) yield* ok("smolvm", version)
    else yield* warn("smolvm", `version ${version} is older than ${SMOLVM_MINIMUM} (network allowlists were unreliable before)`, "upgrade smolvm (only needed for --backend smolmachines)")
  } else {
    yield* warn("smolvm", "not found", "install smolvm ≥ " + SMOLVM_MINIMUM + " for --backend smolmachines (the docker backend does not need it)")
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

  if (failed > 0) return yield* new CliFailure({ message: `${failed} check${failed > 1 ? "s" : ""} failed` })
})).pipe(Command.withDescription("Check the Docker engine, smolvm and the state dir, and say how to fix what fails"))
