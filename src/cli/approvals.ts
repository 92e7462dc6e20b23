/**
 * `bottle approvals [<bottle>] [--json] [--watch]`, `bottle approve <id> [--note …] [--route once|session]`,
 * `bottle deny <id> [--note …]`: the approval queue of the supervise daemon (tool requests,
 * Claude Code's permission prompts) and of egress (`on_unrouted: ask`), answered from the host.
 *
 * Everything an agent wrote (titles, details, requesters, paths) is shown through
 * `displayText`: control and bidi characters are escaped, never sent to the terminal.
 * The first answer stands: a second `approve`/`deny` says so and changes nothing.
 */
import { Console, Effect, Option, Stream } from "effect"
import { Argument, Command, Flag } from "effect/cli"
import * as YAML from "yaml"
import { answer, list, watch } from "../programs/approvals.ts"
import { type Approval, displayBlock, displayText, oneLine } from "../schema/Approval.ts"
import { jsonFlag } from "./flags.ts"
import { table } from "./render.ts"

const optionalBottle = Argument.String("bottle").pipe(Argument.withDescription("Only this bottle's requests (see `bottle ls`)"), Argument.optional)
const idArg = Argument.String("id").pipe(Argument.withDescription("The request's id (see `bottle approvals`)"))
const noteFlag = Flag.String("note").pipe(Flag.withDescription("A note for the agent (check_approval returns it)"), Flag.optional)

const age = (iso: string, now: number): string => {
  const s = Math.max(0, Math.round((now - Date.parse(iso)) / 1000))
  return s < 60 ? `${s}s` : s < 3600 ? `${Math.floor(s / 60)}m` : s < 86400 ? `${Math.floor(s / 3600)}h` : `${Math.floor(s / 86400)}d`
}

/** What a request asks, whole: an egress request by its target, the others by their title. */
const asked = (a: Approval): string =>
  a.kind === "egress" && a.host !== undefined ? `${a.method ?? "?"} ${a.host}:${a.port ?? "?"}${a.path ?? ""}` : a.title

/** What a request asks, on one line. */
const what = (a: Approval): string => oneLine(asked(a), 80)

/** Whether `what` had to cut the request to fit its line. */
const isCut = (a: Approval): boolean => displayText(asked(a)).length > 80

/**
 * A request in full, as it must be read before it is answered: the whole title and every line
 * of its details (a permission prompt's tool input), escaped, nothing cut.
 */
export const detailBlock = (a: Approval, now: number): string => {
  const head = `${a.id}  ${a.status}${a.note ? ` (${oneLine(a.note, 60)})` : ""}  ${a.kind}  ${a.bottle}  ${age(a.createdAt, now)} ago  from ${displayText(a.requester)}`
  const details = a.details ? displayBlock(a.details).split("\n").map((l) => `  | ${l}`) : []
  return [head, `  ${displayText(asked(a))}`, ...details].join("\n")
}

const rows = (all: ReadonlyArray<Approval>, now: number) =>
  table(
    ["ID", "BOTTLE", "KIND", "STATUS", "AGE", "WHAT"],
    all.map((a) => [a.id, a.bottle, a.kind, a.status + (a.note ? ` (${oneLine(a.note, 30)})` : ""), age(a.createdAt, now), what(a)])
  )

/** The line `--watch` prints for a new or changed request. */
export const watchLine = (change: "new" | "changed", a: Approval, now = Date.now()): string => {
  const time = new Date(now).toISOString().slice(11, 19)
  return change === "new"
    ? `\u0007${time} new ${a.kind} request ${a.id} in ${a.bottle}: ${what(a)}  (${isCut(a) ? `cut: read it whole with bottle approvals ${a.bottle} --details; then ` : ""}bottle approve ${a.id} | bottle deny ${a.id})`
    : `${time} ${a.id} in ${a.bottle} is ${a.status}${a.note ? `: ${oneLine(a.note, 60)}` : ""}`
}

export const approvals = Command.make(
  "approvals",
  {
    bottle: optionalBottle,
    json: jsonFlag,
    watch: Flag.Boolean("watch").pipe(Flag.withDescription("Keep running: a bell and a line for each new request (and each answer)"), Flag.withDefault(false)),
    details: Flag.Boolean("details").pipe(Flag.withDescription("Each request in full: its whole title and every line of its details (a permission prompt's tool input)"), Flag.withDefault(false))
  },
  Effect.fn("cli.approvals")(function*({ bottle, json, watch: follow, details }) {
    const only = Option.getOrUndefined(bottle)
    const all = yield* list(only)
    if (json && !follow) return yield* Console.log(JSON.stringify(all, null, 2))
    if (json) {
      for (const a of all) yield* Console.log(JSON.stringify({ change: "existing", approval: a }))
    } else if (all.length === 0) {
      yield* Console.log(follow ? "no approval requests yet; waiting for new ones (Ctrl-C to stop)" : "no approval requests")
    } else if (details) {
      yield* Console.log(all.map((a) => detailBlock(a, Date.now())).join("\n\n"))
    } else {
      yield* Console.log(rows(all, Date.now()))
      // Never let a cut line pass for the whole request: what was cut may be what matters.
      if (all.some((a) => a.status === "pending" && isCut(a))) {
        yield* Console.log("(a request above is cut to fit: read it whole with `bottle approvals --details` before you answer it)")
      }
    }
    if (!follow) return
    yield* watch({ bottle: only }).pipe(
      Stream.runForEach((e) => Console.log(json ? JSON.stringify(e) : watchLine(e.change, e.approval)))
    )
  })
).pipe(
  Command.withDescription("List approval requests (pending first, then oldest first): the agent's, Claude Code's permission prompts, unrouted egress"),
  Command.withShortDescription("List approval requests: the agent's, Claude Code's permission prompts, unrouted egress"),
  Command.withExamples([
    { command: "bottle approvals", description: "Every bottle's requests" },
    { command: "bottle approvals my-bottle --watch", description: "Wait for new requests (a bell and a line each)" },
    { command: "bottle approvals my-bottle --details", description: "Every request in full (a permission prompt's whole command)" }
  ])
)

const showOutcome = (verb: "approved" | "denied", outcome: "answered" | "already", a: Approval) =>
  outcome === "already"
    ? `${a.id} was already ${a.status}${a.answeredAt ? ` at ${a.answeredAt}` : ""}: the first answer stands`
    : `${verb} ${a.id} (${a.kind}, bottle ${a.bottle}): ${what(a)}`

/** The route a user would add to the manifest to keep an egress approval. */
export const routeYaml = (a: Approval): string =>
  YAML.stringify([{ host: a.host, ...(a.port !== undefined && a.port !== 443 ? { ports: [a.port] } : {}), ...(a.allowPrivateIps ? { allow_private_ips: true } : {}) }]).trimEnd()

export const approve = Command.make(
  "approve",
  {
    id: idArg,
    note: noteFlag,
    route: Flag.Literals("route", ["once", "session"]).pipe(
      Flag.withDescription("Egress requests: route the host for the next request only (once, the default) or until the bottle stops (session); no credential"),
      Flag.optional
    ),
    allowPrivateIps: Flag.Boolean("allow-private-ips").pipe(
      Flag.withDescription("Egress requests: the host is an internal service and may resolve to a private address"),
      Flag.withDefault(false)
    ),
    json: jsonFlag
  },
  Effect.fn("cli.approve")(function*({ id, note, route, allowPrivateIps, json }) {
    const r = yield* answer(id, "approve", { note: Option.getOrUndefined(note), route: Option.getOrUndefined(route), allowPrivateIps })
    if (json) return yield* Console.log(JSON.stringify(r, null, 2))
    yield* Console.log(showOutcome("approved", r.outcome, r.approval))
    if (r.outcome === "answered" && r.approval.kind === "egress") {
      const a = r.approval
      yield* Console.log(
        `egress: ${a.bottle} may reach ${displayText(a.host ?? "")}${a.port !== undefined && a.port !== 443 ? ` on port ${a.port}` : ""} ` +
          `${a.route === "session" ? "until it stops" : "for its next request"} (no credential). To keep it, add to the bottle's egress.routes in bottle.yaml:\n` +
          routeYaml(a)
      )
    }
  })
).pipe(
  Command.withDescription("Approve an approval request (the first answer stands)"),
  Command.withExamples([
    { command: "bottle approve k3n8q2wzp4ra --note 'go ahead'", description: "Approve, with a note for the agent" },
    { command: "bottle approve k3n8q2wzp4ra --route session", description: "An unrouted host: route it until the bottle stops" }
  ])
)

export const deny = Command.make(
  "deny",
  { id: idArg, note: noteFlag, json: jsonFlag },
  Effect.fn("cli.deny")(function*({ id, note, json }) {
    const r = yield* answer(id, "deny", { note: Option.getOrUndefined(note) })
    if (json) return yield* Console.log(JSON.stringify(r, null, 2))
    yield* Console.log(showOutcome("denied", r.outcome, r.approval))
  })
).pipe(
  Command.withDescription("Deny an approval request (the first answer stands; a denied host stays refused)"),
  Command.withExamples([{ command: "bottle deny k3n8q2wzp4ra --note 'not on main'", description: "Deny, saying why" }])
)
