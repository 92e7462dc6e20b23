/**
 * `bottle cleanup`: remove everything labelled as ours whose bottle is gone; `--cache`: the
 * artifact cache too. `--keys` also sweeps every repository a bottle is configured for and
 * revokes this machine's stale `bot-bottle …` deploy keys (their bottle no longer runs: a
 * crash, a killed launch).
 */
import { Console, Effect } from "effect"
import { Command, Flag } from "effect/cli"
import { ARTIFACT_NAMESPACE } from "../layers/SmolmachinesBackend.ts"
import { jsonFlag } from "./flags.ts"
import { cleanup as cleanupProgram, listBottles } from "../programs/bottles.ts"
import { sweepKeys } from "../programs/deployKeys.ts"
import { Cache } from "../services/Cache.ts"
import { CliFailure } from "./failure.ts"

export const cleanup = Command.make(
  "cleanup",
  {
    dryRun: Flag.Boolean("dry-run").pipe(Flag.withDescription("Only list what would be removed"), Flag.withDefault(false)),
    cache: Flag.Boolean("cache").pipe(Flag.withDescription("Also empty the cache of smolmachines artifacts (rebuilt on the next start)"), Flag.withDefault(false)),
    keys: Flag.Boolean("keys").pipe(Flag.withDescription("Also revoke stale bot-bottle deploy keys of this machine on every configured repository"), Flag.withDefault(false)),
    json: jsonFlag
  },
  Effect.fn(function*({ dryRun, cache, keys, json }) {
    const removed = [...yield* cleanupProgram({ dryRun })]
    if (cache) {
      const c = yield* Cache
      const entries = dryRun ? (yield* c.entries).filter((e) => e.namespace === ARTIFACT_NAMESPACE) : yield* c.clear(ARTIFACT_NAMESPACE)
      for (const e of entries) removed.push(`cached artifact ${e.path} (${Math.ceil(e.size / 1024)} KB)`)
    }
    const swept = keys
      ? yield* sweepKeys(
        // A bottle runs while its agent does (running, or unhealthy: its bundle says so); a
        // degraded or stopped one gets new keys if resumed.
        (yield* listBottles()).map((b) => ({ slug: b.slug, running: b.status === "unknown" ? undefined : b.status === "running" || b.status === "unhealthy" })),
        { dryRun, env: process.env }
      )
      : { revoked: [], failures: [] }
    if (json) {
      yield* Console.log(JSON.stringify({ dryRun, removed, revokedKeys: swept.revoked, failures: swept.failures }, null, 2))
    } else {
      const verb = dryRun ? "would remove" : "removed"
      for (const r of removed) yield* Console.log(`${verb} ${r}`)
      for (const k of swept.revoked) yield* Console.log(`${dryRun ? "would revoke" : "revoked"} deploy key ${k.repo}#${k.id} (${k.title})`)
      if (removed.length === 0 && swept.revoked.length === 0 && swept.failures.length === 0) yield* Console.log("nothing to clean up")
    }
    if (swept.failures.length > 0) {
      return yield* new CliFailure({ message: `could not revoke every stale deploy key (run \`bottle cleanup --keys\` again, or revoke by hand): ${swept.failures.join("; ")}` })
    }
  })
).pipe(
  Command.withDescription("Remove containers, networks, volumes and leases left by bottles that no longer exist (--cache: and cached smolmachines artifacts; --keys: and this machine's stale deploy keys)"),
  Command.withShortDescription("Remove what bottles that no longer exist left behind"),
  Command.withExamples([
    { command: "bottle cleanup --dry-run", description: "See what would go" },
    { command: "bottle cleanup --cache", description: "Remove it, and the cached smolmachines artifacts" },
    { command: "bottle cleanup --keys --dry-run", description: "List this machine's stale deploy keys that would be revoked" }
  ])
)
