/** `bottle logs <bottle>`: the sidecar bundle's daemon log; `--egress` for the egress audit log. */
import { Console, Effect } from "effect"
import { Command, Flag } from "effect/cli"
import { readAudit } from "../../bundle/egress/audit.ts"
import { egressDir } from "../../bundle/egress/paths.ts"
import { bottleNames } from "../programs/bottleNames.ts"
import { Docker } from "../services/Docker.ts"
import { StateStore } from "../services/StateStore.ts"
import { bottleArg, savedPlan } from "./bottleArg.ts"
import { CliFailure } from "./failure.ts"

export const logs = Command.make(
  "logs",
  {
    bottle: bottleArg,
    egress: Flag.Boolean("egress").pipe(Flag.withDescription("Show the egress audit log (one JSON line per request)"), Flag.withDefault(false)),
    follow: Flag.Boolean("follow").pipe(Flag.withAlias("f"), Flag.withDescription("Keep printing new lines"), Flag.withDefault(false))
  },
  Effect.fn(function*({ bottle, egress, follow }) {
    yield* savedPlan(bottle)
    if (egress) {
      const state = yield* StateStore
      const entries = yield* readAudit(egressDir(state.root, bottle))
      for (const e of entries) yield* Console.log(JSON.stringify(e))
      return
    }
    const docker = yield* Docker
    const bundle = bottleNames((yield* StateStore).root, bottle).bundle
    const running = yield* docker.containerState(bundle).pipe(Effect.option)
    if (running._tag === "None") {
      return yield* new CliFailure({ message: `bottle ${bottle} has no sidecar running (its log went with it); the egress audit log is kept: \`bottle logs ${bottle} --egress\`` })
    }
    yield* docker.logs(bundle, { follow })
  })
).pipe(Command.withDescription("Show a bottle's sidecar logs (daemons), or its egress audit log"))
