/**
 * The public module, `import … from "bot-bottle"`: the programs the `bottle` CLI runs, for
 * scripts to compose (docs/library.md). Only what is exported here (and from
 * `bot-bottle/testing`, `bot-bottle/promise`) is public; everything else is internal and may
 * change.
 *
 * Effect-first: each program is an `Effect` whose errors are typed values and whose
 * requirements `BottleLive` (or `BottleTest` from `bot-bottle/testing`) provides. A launched
 * bottle is a scoped resource: closing its scope (success, failure, interruption) tears it down
 * and revokes its deploy keys. Scripts that do not use Effect: `bot-bottle/promise`.
 */
import * as path from "node:path"
import { Effect } from "effect"
import { loadManifest } from "./programs/loadManifest.ts"
import { prepare } from "./programs/prepare.ts"
import type { Backend as BackendName } from "./schema/Manifest.ts"

export { layer as BottleLive } from "./layers/BottleLive.ts"
export { listBottles as ls, type BottleRow, type BottleStatus } from "./programs/bottles.ts"
export { LaunchError } from "./programs/launch.ts"
export { loadManifest, type LoadedManifest } from "./programs/loadManifest.ts"
export { prepare, type PrepareInput } from "./programs/prepare.ts"
export { headlessCommand, MAX_PROMPT_BYTES, runAgent as run, type RunOptions, type RunResult } from "./programs/run.ts"
export {
  type BottleHandle,
  BottleRefused,
  type BottleServices,
  type EgressSummary,
  type ExecOptions,
  openBottle as launch,
  type OpenOptions,
  stopBottle as stop,
  type StopError,
  summarizeEgress
} from "./programs/session.ts"
export { type AuditEntry, AuditUnreadable } from "./schema/AuditLog.ts"
export type { BottlePlan } from "./schema/BottlePlan.ts"
export { ManifestError, type ManifestProblem } from "./schema/ManifestError.ts"
export { BackendError, type ExecResult, type SandboxUser } from "./services/Backend.ts"
export { GitHostError } from "./services/GitHost.ts"
export { StateError } from "./services/StateStore.ts"

export interface PlanOptions {
  /** The agent: a key of `agents` in the manifest. */
  readonly agent: string
  /** bottle.yaml (default: found walking up from `cwd`, else the built-in default manifest). */
  readonly manifest?: string | undefined
  /** The directory the bottle is for (its workspace; default: process.cwd()). */
  readonly cwd?: string | undefined
  /** The host environment (default: process.env): route tokens are checked against it. */
  readonly env?: Record<string, string | undefined> | undefined
  /** Overrides the manifest's backend. */
  readonly backend?: BackendName | undefined
  /** The bottle's name (default `<agent>-<hash of cwd>`): bottles side by side need one each. */
  readonly name?: string | undefined
}

/** loadManifest + prepare: the plan `bottle plan <agent>` shows. Starts and writes nothing. */
export const plan = Effect.fn("plan")(function*(options: PlanOptions) {
  const cwd = path.resolve(options.cwd ?? process.cwd())
  const env = options.env ?? process.env
  const loaded = yield* loadManifest({ cwd, manifestPath: options.manifest, env })
  return yield* prepare({ loaded, agent: options.agent, cwd, env, backend: options.backend, name: options.name })
})
