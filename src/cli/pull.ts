/**
 * `bottle pull <bottle>`: fetch the agent's commits from its workspace into the host repository
 * under `refs/remotes/bottle/<bottle>/*`, never touching the host's branches, HEAD, index or
 * working tree (src/programs/pull.ts says how the agent's repository is kept at arm's length).
 */
import { Console, Effect, Option } from "effect"
import { Command, Flag } from "effect/cli"
import { pull as pullProgram, pullNamespace } from "../programs/pull.ts"
import { bottleArg, onBackend, savedPlan } from "./bottleArg.ts"
import { CliFailure } from "./failure.ts"
import { jsonFlag } from "./flags.ts"
import { requireRunning } from "./cp.ts"
import { jsonText, visible } from "./render.ts"

export const pull = Command.make(
  "pull",
  {
    bottle: bottleArg,
    repo: Flag.String("repo").pipe(Flag.withDescription("Host repository to fetch into (default: the directory the bottle was started from)"), Flag.optional),
    json: jsonFlag
  },
  Effect.fn(function*({ bottle, repo, json }) {
    const plan = yield* savedPlan(bottle)
    const result = yield* Effect.gen(function*() {
      yield* requireRunning(bottle)
      return yield* pullProgram(plan, Option.getOrElse(repo, () => plan.cwd))
    }).pipe(onBackend(plan.backend), Effect.mapError((e) => (e._tag === "PullError" ? new CliFailure({ message: `bottle pull ${bottle}: ${e.message}` }) : e)))
    if (json) return yield* Console.log(jsonText(result, 2))
    if (!result.fetched) yield* Console.error(`nothing new: bottle ${bottle}'s branches hold no commit ${result.repo} lacks`)
    if (result.refs.length === 0) return yield* Console.error(`no branches under ${pullNamespace(bottle)} in ${result.repo}`)
    // Branch names are the agent's: git lets them carry C1 and bidirectional controls.
    for (const r of result.refs) yield* Console.log(`${r.commit.slice(0, 12)} ${visible(r.ref)}`)
    yield* Console.error(`review: git log ${visible(result.refs[0]!.ref.replace(/^refs\/remotes\//, ""))} (your branches, HEAD and working tree are untouched)`)
  })
).pipe(
  Command.withDescription("Fetch the agent's commits into the host repository as refs/remotes/bottle/<bottle>/*"),
  Command.withExamples([{ command: "bottle pull claude-1a2b3c && git log bottle/claude-1a2b3c/main", description: "Review the agent's work as a branch" }])
)
