/** `bottle logs <bottle>`: the sidecar bundle's daemon log; `--egress` for the egress audit log, `--git` for the git gate's pushes. */
import { Console, Effect } from "effect"
import { Command, Flag } from "effect/cli"
import { readAudit } from "../schema/AuditLog.ts"
import { DAEMONS, hostDirOf } from "../schema/BundleProtocol.ts"
import { readGateAudit } from "../schema/GitGate.ts"
import { Backend } from "../services/Backend.ts"
import { StateStore } from "../services/StateStore.ts"
import { bottleArg, onBackend, savedPlan } from "./bottleArg.ts"
import { CliFailure } from "./failure.ts"

export const logs = Command.make(
  "logs",
  {
    bottle: bottleArg,
    egress: Flag.Boolean("egress").pipe(Flag.withDescription("Show the egress audit log (one JSON line per request)"), Flag.withDefault(false)),
    git: Flag.Boolean("git").pipe(Flag.withDescription("Show the git gate's push audit log (one JSON line per push)"), Flag.withDefault(false)),
    follow: Flag.Boolean("follow").pipe(Flag.withAlias("f"), Flag.withDescription("Keep printing new lines"), Flag.withDefault(false))
  },
  Effect.fn(function*({ bottle, egress, git, follow }) {
    const plan = yield* savedPlan(bottle)
    if (git) {
      const state = yield* StateStore
      for (const e of readGateAudit(hostDirOf(state.bottleDir(bottle), DAEMONS["git-gate"]))) yield* Console.log(JSON.stringify(e))
      return
    }
    if (egress) {
      const state = yield* StateStore
      const entries = yield* readAudit(hostDirOf(state.bottleDir(bottle), DAEMONS.egress))
      for (const e of entries) yield* Console.log(JSON.stringify(e))
      return
    }
    yield* Backend.use((backend) => backend.logs(bottle, { follow })).pipe(
      onBackend(plan.backend),
      Effect.catchIf((e) => e._tag === "BackendError" && e.reason._tag === "NotFound", () =>
        Effect.fail(new CliFailure({ message: `bottle ${bottle} has no sidecar running (its log went with it); the egress audit log is kept: \`bottle logs ${bottle} --egress\`` })))
    )
  })
).pipe(Command.withDescription("Show a bottle's sidecar logs (daemons), or its egress audit log"))
