/**
 * Live Smolvm, through the ProcessRunner. In this version only `version` is live (what `bottle
 * doctor` checks); the machine methods belong to the smolmachines backend, which is not built
 * yet: launch refuses that backend before anything starts, so calling one is a defect, and it
 * dies saying so. A missing binary is `Missing`; a failed run `CommandFailed`; output without a
 * SemVer version `DecodeFailed`.
 */
import { Effect, Layer, SemVer } from "effect"
import { ProcessRunner } from "../services/ProcessRunner.ts"
import { parseSmolvmVersion, Smolvm, SmolvmCommandFailed, SmolvmDecodeFailed, SmolvmError, SmolvmMissing } from "../services/Smolvm.ts"

const notBuilt = (method: string) => Effect.die(new Error(`Smolvm.${method}: the smolmachines backend is not built in this version of bot-bottle`))

export const layer = Layer.effect(
  Smolvm,
  Effect.gen(function*() {
    const runner = yield* ProcessRunner
    const version = Effect.fn("Smolvm.version")(function*() {
      const argv = ["smolvm", "--version"]
      const out = yield* runner.run(argv).pipe(
        Effect.mapError((e) => {
          const r = e.reason
          switch (r._tag) {
            case "SpawnFailed":
              return new SmolvmError({ reason: new SmolvmMissing({ message: r.message }) })
            case "CommandFailed":
              return new SmolvmError({ reason: new SmolvmCommandFailed({ argv: r.argv, exitCode: r.exitCode, stderr: r.stderr }) })
            case "DecodeFailed":
              return new SmolvmError({ reason: new SmolvmDecodeFailed({ message: r.message }) })
          }
        })
      )
      const parsed = parseSmolvmVersion(out.stdout)
      if (parsed === undefined) {
        return yield* new SmolvmError({ reason: new SmolvmDecodeFailed({ message: `no version in \`smolvm --version\` output: ${JSON.stringify(out.stdout.trim().slice(0, 200))}` }) })
      }
      return SemVer.format(parsed)
    })
    return Smolvm.of({
      version: version(),
      packCreate: () => notBuilt("packCreate"),
      machine: () => notBuilt("machine"),
      exec: () => notBuilt("exec"),
      list: notBuilt("list"),
      remove: () => notBuilt("remove")
    })
  })
)
