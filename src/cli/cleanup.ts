/** `bottle cleanup`: remove everything labelled as ours whose bottle is gone; `--cache`: the artifact cache too. */
import { Console, Effect } from "effect"
import { Command, Flag } from "effect/cli"
import { ARTIFACT_NAMESPACE } from "../layers/SmolmachinesBackend.ts"
import { jsonFlag } from "./flags.ts"
import { cleanup as cleanupProgram } from "../programs/bottles.ts"
import { Cache } from "../services/Cache.ts"

export const cleanup = Command.make(
  "cleanup",
  {
    dryRun: Flag.Boolean("dry-run").pipe(Flag.withDescription("Only list what would be removed"), Flag.withDefault(false)),
    cache: Flag.Boolean("cache").pipe(Flag.withDescription("Also empty the cache of smolmachines artifacts (rebuilt on the next start)"), Flag.withDefault(false)),
    json: jsonFlag
  },
  Effect.fn(function*({ dryRun, cache, json }) {
    const removed = [...yield* cleanupProgram({ dryRun })]
    if (cache) {
      const c = yield* Cache
      const entries = dryRun ? (yield* c.entries).filter((e) => e.namespace === ARTIFACT_NAMESPACE) : yield* c.clear(ARTIFACT_NAMESPACE)
      for (const e of entries) removed.push(`cached artifact ${e.path} (${Math.ceil(e.size / 1024)} KB)`)
    }
    if (json) return yield* Console.log(JSON.stringify({ dryRun, removed }, null, 2))
    if (removed.length === 0) return yield* Console.log("nothing to clean up")
    for (const r of removed) yield* Console.log(`${dryRun ? "would remove" : "removed"} ${r}`)
  })
).pipe(
  Command.withDescription("Remove containers, networks, volumes and leases left by bottles that no longer exist (--cache: and cached smolmachines artifacts)"),
  Command.withShortDescription("Remove what bottles that no longer exist left behind"),
  Command.withExamples([
    { command: "bottle cleanup --dry-run", description: "See what would go" },
    { command: "bottle cleanup --cache", description: "Remove it, and the cached smolmachines artifacts" }
  ])
)
