/**
 * `bottle start <agent>`: plan, confirm (y/N), launch, attach. Ctrl-C before the agent runs tears
 * down everything acquired so far; exiting the agent tears the bottle down (its state, workspace
 * and home are kept for `bottle logs` and `bottle resume`), and says so; the detach keys
 * (Ctrl-P Ctrl-Q) leave it running. `--detach` brings the bottle up without attaching: the
 * agent's command starts when you attach (`bottle resume`).
 */
import * as path from "node:path"
import { Console, Effect } from "effect"
import { Command, Flag } from "effect/cli"
import * as PromptTerminal from "../layers/Terminal.ts"
import { approveGrants, describeGrant, GRANTS_FILE, pendingGrants } from "../programs/grants.ts"
import { launch } from "../programs/launch.ts"
import { resolvePlan } from "../programs/resolvePlan.ts"
import { notBuiltDaemons } from "../schema/BundleProtocol.ts"
import { Backend } from "../services/Backend.ts"
import { Progress } from "../services/Progress.ts"
import { StateStore } from "../services/StateStore.ts"
import { onBackend } from "./bottleArg.ts"
import { askConsent } from "./confirm.ts"
import { CliFailure } from "./failure.ts"
import { backendFlag, manifestFlag, nameFlag } from "./flags.ts"
import { agentArg } from "./plan.ts"
import { renderPlan } from "./render.ts"
import { progress } from "./progress.ts"
import { sessionEnded } from "./sessionEnd.ts"

export const start = Command.make(
  "start",
  {
    agent: agentArg,
    manifest: manifestFlag,
    backend: backendFlag,
    name: nameFlag,
    yes: Flag.Boolean("yes").pipe(Flag.withAlias("y"), Flag.withDescription("Do not ask for confirmation"), Flag.withDefault(false)),
    detach: Flag.Boolean("detach").pipe(Flag.withAlias("d"), Flag.withDescription("Leave the bottle running in the background"), Flag.withDefault(false))
  },
  Effect.fn(function*(input) {
    const { loaded, plan } = yield* resolvePlan(input)
    // Before the plan and the prompt: a backend that cannot run is one line, not a question.
    yield* Backend.use((b) => b.preflight).pipe(onBackend(plan.backend))
    const state = yield* StateStore
    const grants = yield* pendingGrants(plan)
    yield* Console.error(renderPlan(plan, loaded.file, grants))
    const missingDaemons = notBuiltDaemons(plan.daemons)
    if (missingDaemons.length > 0) {
      return yield* new CliFailure({ message: `this bottle needs the ${missingDaemons.join(" and ")} daemon${missingDaemons.length > 1 ? "s" : ""}, which ${missingDaemons.length > 1 ? "are" : "is"} not built yet in this version of bot-bottle` })
    }
    const missing = plan.egress.tokens.filter((t) => !t.present)
    if (missing.length > 0) {
      return yield* new CliFailure({ message: `${missing.map((t) => `$${t.env}`).join(", ")} ${missing.length > 1 ? "are" : "is"} not set on this host; the bottle's routes inject ${missing.length > 1 ? "them" : "it"}` })
    }
    if (yield* state.exists(plan.slug)) {
      return yield* new CliFailure({ message: `bottle ${plan.slug} already exists: \`bottle resume ${plan.slug}\` to attach, or \`bottle stop ${plan.slug} --purge\` first (or pick another --name)` })
    }
    // A token sent where it is not known to belong is approved by a person, once: never by --yes.
    const interactive = process.stdin.isTTY === true
    if (grants.length > 0) {
      const list = grants.map(describeGrant).join(", ")
      const these = grants.length > 1
      const consent = yield* askConsent({
        question: `Approve ${these ? "these credential grants" : "this credential grant"} and start bottle ${plan.slug}?`,
        yes: input.yes,
        interactive,
        grant: true,
        before: Console.error(
          `\nWARNING: ${loaded.file} sends your credentials where bot-bottle does not know them to belong, or unrestricted at home:\n${grants.map((g) => `  ${describeGrant(g)}`).join("\n")}\nThe agent could then hand them to that host, or use all they can do there. Approve only if you trust this manifest and that host (remembered in ${path.join(state.root, GRANTS_FILE)}).`
        )
      }).pipe(Effect.provide(PromptTerminal.layer))
      if (consent === "needs-terminal") {
        return yield* new CliFailure({
          message: `credential grant${these ? "s" : ""} not approved: ${list} (${loaded.file} sends ${these ? "these tokens to hosts" : "this token to a host"} where ${these ? "they are" : "it is"} not known to belong, or with any path and method at ${these ? "their" : "its"} home); --yes never approves a grant: run \`bottle start\` once in a terminal to review and approve ${these ? "them" : "it"}`
        })
      }
      // One question for both: approving without starting would leave a grant nobody used.
      if (consent === "declined") return yield* new CliFailure({ message: "not started: credential grant not approved", exitCode: 1 })
      yield* approveGrants(grants, loaded.file)
    } else {
      const consent = yield* askConsent({ question: `Start bottle ${plan.slug}?`, yes: input.yes, interactive, grant: false }).pipe(Effect.provide(PromptTerminal.layer))
      if (consent === "needs-terminal") return yield* new CliFailure({ message: "not confirmed: stdin is not a terminal; pass --yes to start without asking" })
      if (consent === "declined") return yield* new CliFailure({ message: "not started", exitCode: 1 })
    }
    const ui = progress()
    const result = yield* launch(plan, {
      mode: input.detach ? "detach" : "attach",
      fresh: true,
      env: process.env
    }).pipe(onBackend(plan.backend), Effect.provideService(Progress, ui), Effect.ensuring(Effect.sync(ui.done)))
    if (input.detach) {
      yield* Console.log(plan.slug)
      // Detached, the bottle runs and the agent's command waits for a terminal: it starts when
      // you attach, exactly as `resume` does.
      yield* Console.error(`bottle ${plan.slug} is running; the agent's command starts when you attach. Attach: bottle resume ${plan.slug} · shell: bottle exec ${plan.slug} bash · stop: bottle stop ${plan.slug}`)
    } else {
      yield* Console.error(sessionEnded(plan.slug, result, result.detached === true))
      if (result.exitCode !== undefined && result.exitCode !== 0) process.exitCode = result.exitCode
    }
  })
).pipe(Command.withDescription("Show the plan, confirm, launch the bottle and attach the agent's terminal"))
