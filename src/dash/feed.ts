/**
 * What the dashboard asks of bot-bottle, as the CLI's own Effect programs: `listBottles` for the
 * list, `resolvePlan` + `pendingGrants` + `renderPlan` for the preflight (the text `bottle plan`
 * prints), `launch` with the `Progress` reference for a start, `teardown` for a stop, the
 * approval queue's programs for answers. Nothing here lists, plans, launches or answers on its
 * own. `makeDashApi` runs them on the services it is given (the CLI's layers, or fakes in tests)
 * and hands the UI promises: the UI never waits on one to draw.
 *
 * Guarantees: nothing is built or started before `launch` is called (the preflight only
 * resolves); a credential grant is approved only by that call, i.e. by the operator's explicit
 * confirmation in the modal; a failed deploy-key revocation is reported as such (`StopOutcome`),
 * never folded into a generic error.
 */
import * as path from "node:path"
import { Cause, Context, Effect, Fiber, Option, Schema } from "effect"
import { renderPlan } from "../cli/render.ts"
import { Backends, backendNames } from "../layers/Backends.ts"
import { backendOf, listBottles, teardown } from "../programs/bottles.ts"
import { approveGrants, describeGrant, type Grant, pendingGrants } from "../programs/grants.ts"
import { launch } from "../programs/launch.ts"
import { loadManifest } from "../programs/loadManifest.ts"
import { resolvePlan } from "../programs/resolvePlan.ts"
import { AuditEntry } from "../schema/AuditLog.ts"
import { type BottlePlan, SavedBottlePlan } from "../schema/BottlePlan.ts"
import { DAEMONS, hostDirOf, notBuiltDaemons } from "../schema/BundleProtocol.ts"
import type { ProgressEvent } from "../schema/LaunchProgress.ts"
import type { AgentColor } from "../schema/Manifest.ts"
import { Backend } from "../services/Backend.ts"
import type { GitHost } from "../services/GitHost.ts"
import { ProcessRunner } from "../services/ProcessRunner.ts"
import { Progress } from "../services/Progress.ts"
import { StateStore } from "../services/StateStore.ts"
import type { ApprovalQueue } from "./approvals.ts"
import type { ApprovalLine, PushLine } from "./model.ts"
import type { BottleRow } from "../programs/bottles.ts"

export interface AgentChoice {
  readonly name: string
  readonly label: string
  readonly color?: AgentColor | undefined
}

export interface Preflight {
  readonly plan: BottlePlan
  readonly manifestFile: string
  /** `bottle plan`'s text for this plan. */
  readonly text: string
  readonly grants: ReadonlyArray<Grant>
  /** Why this plan cannot start (start would refuse it the same way); empty when it can. */
  readonly problems: ReadonlyArray<string>
}

export type StopOutcome =
  | { readonly _tag: "Stopped"; readonly leftovers: ReadonlyArray<string> }
  | { readonly _tag: "Failed"; readonly revocation: ReadonlyArray<string>; readonly other: ReadonlyArray<string> }

export interface BottleFiles {
  readonly stateDir: string
  readonly egressAudit: string
  readonly gitGateDir: string
  readonly superviseDir: string
}

/** Everything the UI asks, as promises (rejections carry one-line messages). */
export interface DashApi {
  /** The directory holding every bottle's state dir (watched for bottles coming and going). */
  readonly bottlesDir: string
  readonly files: (slug: string) => BottleFiles
  readonly rows: () => Promise<ReadonlyArray<BottleRow & { readonly label: string; readonly color?: AgentColor | undefined }>>
  readonly agents: () => Promise<{ readonly manifestFile: string; readonly agents: ReadonlyArray<AgentChoice> }>
  readonly preflight: (agent: string) => Promise<Preflight>
  readonly launch: (pre: Preflight, onProgress: (event: ProgressEvent) => void) => Promise<void>
  /** `bottle stop` (`purge`: `--purge`, the state goes too and the bottle leaves the list). */
  readonly stop: (slug: string, purge?: boolean) => Promise<StopOutcome>
  readonly approvals: (slug: string) => Promise<ReadonlyArray<ApprovalLine>>
  readonly answer: (slug: string, id: string, decision: "approve" | "deny", note: string | undefined) => Promise<string>
  /** Opens the agent's terminal: a new tmux window inside tmux; else says what to run. */
  readonly openTerminal: (slug: string) => Promise<string>
  /** Calls `onChange` on each engine event about this root's bottles, until the returned stop is called. */
  readonly watchEngine: (onChange: () => void) => () => void
}

const messageOf = (cause: Cause.Cause<unknown>): string => {
  const errors = cause.reasons.filter(Cause.isFailReason).map((r) => r.error as { message?: string })
  if (errors.length > 0) return errors.map((e) => e.message ?? String(e)).join("; ")
  return Cause.pretty(cause).split("\n")[0] ?? "failed"
}

export const AuditLine = Schema.decodeUnknownOption(Schema.fromJsonString(AuditEntry))
export const decodeAudit = (line: string) => Option.getOrUndefined(AuditLine(line))

/**
 * A git-gate push log line, read tolerantly (its writer's format may grow): any JSON object
 * that says it is a push (kind/type/event/op mentioning push) or names a ref.
 */
export const decodePush = (line: string): PushLine | undefined => {
  let o: unknown
  try {
    o = JSON.parse(line)
  } catch {
    return undefined
  }
  if (typeof o !== "object" || o === null) return undefined
  const r = o as Record<string, unknown>
  const str = (k: string) => (typeof r[k] === "string" ? (r[k] as string) : undefined)
  const what = [str("kind"), str("type"), str("event"), str("op"), str("action")].filter((x) => x !== undefined).join(" ")
  const refs = Array.isArray(r["refs"])
    ? (r["refs"] as Array<unknown>).map((x) => (typeof x === "string" ? x : typeof x === "object" && x !== null && typeof (x as Record<string, unknown>)["ref"] === "string" ? (x as Record<string, string>)["ref"] : "")).filter(Boolean).join(" ")
    : str("ref") ?? ""
  if (!/push/i.test(what) && refs === "") return undefined
  const outcome = str("decision") ?? str("outcome") ?? str("result") ?? str("status") ?? (typeof r["ok"] === "boolean" ? (r["ok"] ? "ok" : "refused") : "")
  return { time: str("time") ?? str("ts") ?? "", ref: refs, outcome }
}

/** The services the dashboard's programs run on: those of the CLI's commands. */
export type DashServices = StateStore | Backends | ProcessRunner | GitHost

/** The dashboard's API over `context` (the services the CLI's commands run on). */
export const makeDashApi = (
  context: Context.Context<DashServices>,
  options: { readonly cwd: string; readonly env: Record<string, string | undefined>; readonly queue: ApprovalQueue<DashServices>; readonly bottleCommand: ReadonlyArray<string> }
): DashApi => {
  const run = <A, E>(effect: Effect.Effect<A, E, DashServices>): Promise<A> =>
    Effect.runPromiseExit(Effect.provideContext(effect, context)).then((exit) => {
      if (exit._tag === "Success") return exit.value
      throw new Error(messageOf(exit.cause))
    })
  const state = Context.get(context, StateStore)
  const labels = new Map<string, { readonly label: string; readonly color?: AgentColor | undefined }>()

  const files = (slug: string): BottleFiles => {
    const dir = state.bottleDir(slug)
    return {
      stateDir: dir,
      egressAudit: path.join(hostDirOf(dir, DAEMONS.egress), "audit.log"),
      gitGateDir: hostDirOf(dir, DAEMONS["git-gate"]),
      superviseDir: hostDirOf(dir, DAEMONS.supervise)
    }
  }

  /** A bottle's label and colour from its saved plan, read once per bottle. */
  const labelOf = (row: BottleRow) =>
    Effect.gen(function*() {
      const known = labels.get(row.slug)
      if (known) return known
      const plan = yield* state.readJsonIfAny(row.slug, "plan.json", SavedBottlePlan).pipe(Effect.orElseSucceed(() => Option.none()))
      const found = Option.match(plan, {
        onNone: () => ({ label: row.agent }),
        onSome: (p) => ({ label: p.label ?? p.agent, color: p.color })
      })
      if (Option.isSome(plan)) labels.set(row.slug, found)
      return found
    })

  const preflight = (agent: string) =>
    Effect.gen(function*() {
      const { loaded, plan } = yield* resolvePlan({ agent, manifest: Option.none(), backend: Option.none(), name: Option.none() })
      const problems: Array<string> = []
      // The refusals `bottle start` makes before its question, in its words.
      const refusal = yield* Backend.use((b) => b.preflight).pipe(Effect.provide(Backends.get(plan.backend)), Effect.flip, Effect.option)
      if (Option.isSome(refusal)) problems.push(refusal.value.message)
      const missingDaemons = notBuiltDaemons(plan.daemons)
      if (missingDaemons.length > 0) problems.push(`this bottle needs the ${missingDaemons.join(" and ")} daemon${missingDaemons.length > 1 ? "s" : ""}, which ${missingDaemons.length > 1 ? "are" : "is"} not built yet in this version of bot-bottle`)
      const missing = plan.egress.tokens.filter((t) => !t.present)
      if (missing.length > 0) problems.push(`${missing.map((t) => `$${t.env}`).join(", ")} ${missing.length > 1 ? "are" : "is"} not set on this host; the bottle's routes inject ${missing.length > 1 ? "them" : "it"}`)
      if (yield* state.exists(plan.slug)) problems.push(`bottle ${plan.slug} already exists: \`bottle resume ${plan.slug}\` to attach, or stop it first`)
      const grants = yield* pendingGrants(plan)
      return { plan, manifestFile: loaded.file, text: renderPlan(plan, loaded.file, grants), grants, problems } satisfies Preflight
    })

  return {
    bottlesDir: path.dirname(state.bottleDir("x")),
    files,
    rows: () =>
      run(Effect.gen(function*() {
        const rows = yield* listBottles()
        return yield* Effect.forEach(rows, (row) => Effect.map(labelOf(row), (l) => ({ ...row, ...l })))
      })),
    agents: () =>
      run(Effect.gen(function*() {
        const loaded = yield* loadManifest({ cwd: options.cwd, env: options.env })
        const agents = Object.entries(loaded.manifest.agents).map(([name, a]): AgentChoice => ({ name, label: a.label ?? name, color: a.color }))
        return { manifestFile: loaded.file, agents }
      })),
    preflight: (agent) => run(preflight(agent)),
    launch: (pre, onProgress) =>
      run(Effect.gen(function*() {
        if (pre.problems.length > 0) return yield* Effect.fail(new Error(pre.problems.join("; ")))
        // Confirmed in the modal, with the grants shown: the operator approved them.
        if (pre.grants.length > 0) yield* approveGrants(pre.grants, pre.manifestFile)
        yield* launch(pre.plan, { mode: "detach", fresh: true, env: options.env }).pipe(
          Effect.provide(Backends.get(pre.plan.backend)),
          Effect.provideService(Progress, { report: (event) => Effect.sync(() => onProgress(event)) })
        )
      })),
    stop: (slug, purge = false) =>
      run(Effect.gen(function*() {
        const backend = yield* backendOf(slug)
        const exit = yield* teardown(slug, { purge, env: options.env }).pipe(Effect.provide(Backends.get(backend)), Effect.exit)
        labels.delete(slug)
        if (exit._tag === "Success") return { _tag: "Stopped", leftovers: exit.value } satisfies StopOutcome
        const errors = exit.cause.reasons.filter(Cause.isFailReason).map((r) => r.error)
        if (errors.length === 0) return yield* Effect.failCause(exit.cause)
        const revocation = errors.filter((e) => e._tag === "LaunchError" && e.reason._tag === "RevocationFailed").map((e) => e.message)
        const other = errors.filter((e) => !(e._tag === "LaunchError" && e.reason._tag === "RevocationFailed")).map((e) => e.message)
        return { _tag: "Failed", revocation, other } satisfies StopOutcome
      })),
    approvals: (slug) => run(options.queue.list(slug)),
    answer: (slug, id, decision, note) => run(options.queue.answer(slug, id, decision, note)),
    openTerminal: (slug) =>
      run(Effect.gen(function*() {
        const resume = [...options.bottleCommand, "resume", slug]
        if (!options.env["TMUX"]) return `run \`bottle resume ${slug}\` in a terminal to use the agent`
        const runner = yield* ProcessRunner
        // The window's shell gets tmux's environment, not ours: the state root, the engine and
        // PATH go along, so `bottle resume` finds this bottle.
        const carried = Object.entries(options.env)
          .filter(([k, v]) => v !== undefined && (k.startsWith("BOTTLE_") || ["PATH", "HOME", "DOCKER_HOST", "TERM"].includes(k)))
          .flatMap(([k, v]) => ["-e", `${k}=${v}`])
        yield* runner.run(["tmux", "new-window", "-n", slug, "-c", options.cwd, ...carried, ...resume])
        return `opened ${slug} in a new tmux window`
      })),
    watchEngine: (onChange) => {
      const fibers = backendNames.map((name) =>
        Effect.runFork(Effect.provideContext(
          Backend.use((b) => (b.changes ? b.changes(onChange) : Effect.never)).pipe(
            Effect.provide(Backends.get(name)),
            // The engine away (restarting, unreachable): ask again a little later.
            Effect.catch(() => Effect.sleep("5 seconds")),
            Effect.andThen(Effect.sync(onChange)),
            Effect.forever
          ),
          context
        ))
      )
      return () => fibers.forEach((f) => Effect.runFork(Fiber.interrupt(f)))
    }
  }
}

export { describeGrant }
