/**
 * The path every plan-showing command shares: manifest → prepare, with the backend taken from
 * --backend, else $BOTTLE_BACKEND, else the manifest.
 */
import { Effect, Option, Schema } from "effect"
import { Backend } from "../schema/Manifest.ts"
import { ManifestError } from "../schema/ManifestError.ts"
import { loadManifest } from "./loadManifest.ts"
import { prepare } from "./prepare.ts"

export const resolvePlan = Effect.fn("resolvePlan")(function*(input: {
  readonly agent: string
  readonly manifest: Option.Option<string>
  readonly backend: Option.Option<Backend>
  readonly name: Option.Option<string>
}) {
  const env = process.env
  const cwd = process.cwd()
  let backend = Option.getOrUndefined(input.backend)
  if (backend === undefined && env["BOTTLE_BACKEND"]) {
    const decoded = Schema.decodeUnknownOption(Backend)(env["BOTTLE_BACKEND"])
    if (Option.isNone(decoded)) {
      return yield* new ManifestError({ file: "$BOTTLE_BACKEND", problems: [{ path: "", message: `expected docker or smolmachines, got "${env["BOTTLE_BACKEND"]}"` }] })
    }
    backend = decoded.value
  }
  const loaded = yield* loadManifest({ cwd, manifestPath: Option.getOrUndefined(input.manifest), env })
  const plan = yield* prepare({ loaded, agent: input.agent, cwd, env, backend, name: Option.getOrUndefined(input.name) })
  return { loaded, plan }
})
