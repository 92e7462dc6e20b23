/** `bottle cleanup`: remove everything labelled as ours whose bottle is gone. */
import { Console, Effect } from "effect"
import { Command, Flag } from "effect/cli"
import { jsonFlag } from "./flags.ts"
import { cleanup as cleanupProgram } from "../programs/bottles.ts"

export const cleanup = Command.make(
  "cleanup",
  { dryRun: Flag.Boolean("dry-run").pipe(Flag.withDescription("Only list what would be removed"), Flag.withDefault(false)), json: jsonFlag },
  Effect.fn(function*({ dryRun, json }) {
    const removed = yield* cleanupProgram({ dryRun })
    if (json) return yield* Console.log(JSON.stringify({ dryRun, removed }, null, 2))
    if (removed.length === 0) return yield* Console.log("nothing to clean up")
    for (const r of removed) yield* Console.log(`${dryRun ? "would remove" : "removed"} ${r}`)
  })
).pipe(
  Command.withDescription("Remove containers, networks, volumes and leases left by bottles that no longer exist"),
  Command.withExamples([
    { command: "bottle cleanup --dry-run", description: "See what would go" },
    { command: "bottle cleanup", description: "Remove it" }
  ])
)
