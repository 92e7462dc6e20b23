/**
 * `bottle logs <bottle>`: the sidecar bundle's daemon log (live while it runs; once the bottle
 * is stopped, the copy saved in its state dir at removal); `--egress` for the egress audit log,
 * as a table (time, decision, method, host, path, status, reason) or `--json` (one object per
 * line, camelCase keys); `--git` for the git gate's pushes (one JSON line each). `-f` follows
 * the egress log or the daemon log until Ctrl-C. Text the agent influenced (hosts, paths,
 * reasons, daemon lines) is shown with its control characters escaped.
 */
import * as fs from "node:fs"
import * as path from "node:path"
import { Console, Effect } from "effect"
import { Command, Flag } from "effect/cli"
import { type AuditEntry, auditJson, followAudit, readAudit } from "../schema/AuditLog.ts"
import { DAEMONS, hostDirOf } from "../schema/BundleProtocol.ts"
import { readGateAudit } from "../schema/GitGate.ts"
import { Backend, SAVED_BUNDLE_LOG } from "../services/Backend.ts"
import { StateStore } from "../services/StateStore.ts"
import { bottleArg, onBackend, savedPlan } from "./bottleArg.ts"
import { auditLineFixed, auditRow, AUDIT_HEADERS, jsonText, table, visible } from "./render.ts"

export const logs = Command.make(
  "logs",
  {
    bottle: bottleArg,
    egress: Flag.Boolean("egress").pipe(Flag.withDescription("Show the egress audit log: one line per request"), Flag.withDefault(false)),
    git: Flag.Boolean("git").pipe(Flag.withDescription("Show the git gate's push audit log (one JSON line per push)"), Flag.withDefault(false)),
    follow: Flag.Boolean("follow").pipe(Flag.withAlias("f"), Flag.withDescription("Keep printing new lines until Ctrl-C"), Flag.withDefault(false)),
    json: Flag.Boolean("json").pipe(Flag.withDescription("With --egress: one JSON object per request (camelCase keys)"), Flag.withDefault(false))
  },
  Effect.fn(function*({ bottle, egress, git, follow, json }) {
    const plan = yield* savedPlan(bottle)
    const state = yield* StateStore
    if (git) {
      for (const e of readGateAudit(hostDirOf(state.bottleDir(bottle), DAEMONS["git-gate"]))) yield* Console.log(jsonText(e))
      return
    }
    if (egress) {
      const dir = hostDirOf(state.bottleDir(bottle), DAEMONS.egress)
      if (json) {
        const print = (e: AuditEntry) => process.stdout.write(jsonText(auditJson(e)) + "\n")
        if (follow) return yield* followAudit(dir, print, { history: true })
        for (const e of yield* readAudit(dir)) print(e)
        return
      }
      if (follow) {
        // Column widths cannot wait for lines not yet written: a fixed layout, one line each.
        yield* Console.log(auditLineFixed(AUDIT_HEADERS))
        return yield* followAudit(dir, (e) => process.stdout.write(auditLineFixed(auditRow(e)) + "\n"), { history: true })
      }
      const entries = yield* readAudit(dir)
      if (entries.length === 0) return yield* Console.error(`no egress requests audited for bottle ${bottle} yet`)
      return yield* Console.log(table(AUDIT_HEADERS, entries.map(auditRow)))
    }
    const saved = path.join(state.bottleDir(bottle), SAVED_BUNDLE_LOG)
    // Daemon lines quote what the agent sent (a refused request's host and path, which an HTTP/2
    // :path carries latin1-decoded: C1 controls): escaped like the saved log below.
    yield* Backend.use((backend) => backend.logs(bottle, { follow, onLine: (line) => process.stdout.write(visible(line) + "\n") })).pipe(
      onBackend(plan.backend),
      Effect.catchIf((e) => e._tag === "BackendError" && e.reason._tag === "NotFound", () =>
        Effect.sync(() => {
          if (!fs.existsSync(saved)) {
            process.stderr.write(`bottle ${bottle} has no sidecar running and no saved log; the egress audit log is kept: \`bottle logs ${bottle} --egress\`\n`)
            return
          }
          process.stderr.write(`bottle ${bottle} is not running: its sidecar's log as saved when it stopped (${saved})\n`)
          process.stdout.write(fs.readFileSync(saved, "utf8").split("\n").map(visible).join("\n"))
        }))
    )
  })
).pipe(
  Command.withDescription("Show a bottle's sidecar log (daemons; kept after stop), its egress audit log, or its git pushes"),
  Command.withExamples([
    { command: "bottle logs claude-1a2b3c", description: "The sidecar's daemon log (kept after stop)" },
    { command: "bottle logs claude-1a2b3c --egress -f", description: "Follow requests as the agent makes them" },
    { command: "bottle logs claude-1a2b3c --egress --json", description: "One JSON object per request, for scripts" },
    { command: "bottle logs claude-1a2b3c --git", description: "The pushes the git gate forwarded or refused" }
  ])
)
