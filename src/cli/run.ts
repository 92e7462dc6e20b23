/**
 * `bottle run <agent> [--prompt TEXT | --prompt-file F] [--json] [--keep]`: a fresh bottle, the
 * agent run headless once (src/programs/run.ts), its output on stdout, its exit code returned,
 * everything torn down after (deploy keys revoked, state deleted) unless --keep. Ctrl-C tears
 * down too. No question is asked: a credential grant nobody approved is refused, as with --yes.
 *
 * Exit code: the agent's; 125 when the bottle itself could not be run (launch, teardown), 2 for
 * a usage error. `--json`: one result object on stdout (the agent's output collected into it).
 */
import * as crypto from "node:crypto"
import * as fs from "node:fs"
import { Console, Effect, Option } from "effect"
import { Command, Flag } from "effect/cli"
import { resolvePlan } from "../programs/resolvePlan.ts"
import { runAgent } from "../programs/run.ts"
import { Progress } from "../services/Progress.ts"
import { CliFailure } from "./failure.ts"
import { backendFlag, jsonFlag, manifestFlag } from "./flags.ts"
import { agentArg } from "./plan.ts"
import { progress } from "./progress.ts"

/** A name of its own per run, so runs side by side in one directory do not collide. */
const runName = (agent: string) => `${agent.toLowerCase().replace(/[^a-z0-9-]+/g, "-").replace(/^[^a-z]+/, "").slice(0, 48) || "run"}-run-${crypto.randomBytes(3).toString("hex")}`

export const run = Command.make(
  "run",
  {
    agent: agentArg,
    manifest: manifestFlag,
    backend: backendFlag,
    name: Flag.String("name").pipe(Flag.withDescription("Bottle name (default: <agent>-run-<random>)"), Flag.optional),
    prompt: Flag.String("prompt").pipe(Flag.withDescription("The task (Claude Code: `claude -p`; a command agent reads $BOTTLE_PROMPT)"), Flag.optional),
    promptFile: Flag.String("prompt-file").pipe(Flag.withDescription("Read the task from a file"), Flag.optional),
    json: jsonFlag,
    keep: Flag.Boolean("keep").pipe(Flag.withDescription("Leave the bottle running afterwards, for inspection (`bottle stop <bottle>` later)"), Flag.withDefault(false))
  },
  Effect.fn(function*(input) {
    if (Option.isSome(input.prompt) && Option.isSome(input.promptFile)) {
      return yield* new CliFailure({ message: "give --prompt or --prompt-file, not both", exitCode: 2 })
    }
    const promptFile = Option.getOrUndefined(input.promptFile)
    const prompt = promptFile !== undefined
      ? yield* Effect.try({
        try: () => fs.readFileSync(promptFile, "utf8"),
        catch: (e) => new CliFailure({ message: `--prompt-file ${promptFile}: ${(e as NodeJS.ErrnoException).code ?? String(e)}`, exitCode: 2 })
      })
      : Option.getOrUndefined(input.prompt)
    const name = Option.getOrElse(input.name, () => runName(input.agent))
    const { plan } = yield* resolvePlan({ ...input, name: Option.some(name) })
    const ui = progress()
    const result = yield* runAgent(plan, { prompt, keep: input.keep, env: process.env, output: input.json ? "capture" : "inherit" }).pipe(
      Effect.provideService(Progress, ui),
      Effect.ensuring(Effect.sync(ui.done)),
      Effect.mapError((e) => new CliFailure({ message: e.message, exitCode: e._tag === "BottleRefused" ? 2 : 125 }))
    )
    if (input.json) yield* Console.log(JSON.stringify(result, null, 2))
    if (input.keep) yield* Console.error(`bottle ${plan.slug} kept: bottle exec ${plan.slug} -- bash · bottle logs ${plan.slug} --egress · bottle stop ${plan.slug} --purge`)
    if (result.exitCode !== 0) process.exitCode = result.exitCode
  })
).pipe(
  Command.withDescription("Run an agent headless in a fresh bottle, print its output, return its exit code, tear everything down"),
  Command.withExamples([
    { command: "bottle run claude --prompt \"Fix the failing test in src/parse.ts\"", description: "Claude Code, headless (claude -p)" },
    { command: "bottle run checker --json", description: "A command agent; one JSON result (exitCode, output, durationMs, egress)" }
  ])
)
