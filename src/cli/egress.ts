/**
 * `bottle egress ls|allow|deny <bottle> …`: see and change the routes of a bottle. The bottle
 * is found through the StateStore (an unknown name is one line saying so); its routes file, in
 * the egress daemon's subdir (bundle protocol), is edited atomically (temp file + rename in the
 * same directory); the daemon watches that directory and applies the change live. A resumed
 * bottle keeps its routes file, so edits survive stop/resume.
 *
 * What the manifest said is never lost: `deny` removes a host's live routes while the plan
 * keeps the manifest's; `allow` of such a host restores them, credential included, and `ls`
 * shows a denied manifest route as such.
 */
import * as path from "node:path"
import { Console, Effect } from "effect"
import { Argument, Command, Flag } from "effect/cli"
import { DAEMONS, hostDirOf } from "../schema/BundleProtocol.ts"
import type { Route } from "../schema/Route.ts"
import { allowHost, denyHost, loadRoutes } from "../schema/RoutesFile.ts"
import { StateError, StateNotFound, StateStore } from "../services/StateStore.ts"
import { bottleArg, savedPlan } from "./bottleArg.ts"
import { jsonFlag } from "./flags.ts"
import { table, visible } from "./render.ts"

const host = Argument.String("host").pipe(Argument.withDescription("Host name, e.g. api.example.com or *.example.com"))

/** The routes file of bottle `slug` in `state`. */
export const bottleRoutesFile = (state: StateStore["Service"], slugName: string): string =>
  path.join(hostDirOf(state.bottleDir(slugName), DAEMONS.egress), "routes.yaml")

/** The routes file of an existing bottle; NotFound (one line) when there is no such bottle. */
const routesOf = Effect.fnUntraced(function*(slugName: string) {
  const state = yield* StateStore
  if (!(yield* state.exists(slugName))) return yield* new StateError({ reason: new StateNotFound({ slug: slugName }) })
  return bottleRoutesFile(state, slugName)
})

/** The manifest's routes, as planned for the bottle (none when its plan is unreadable). */
const manifestRoutes = (bottle: string) =>
  savedPlan(bottle).pipe(Effect.map((p): ReadonlyArray<Route> => p.egress.routes), Effect.orElseSucceed((): ReadonlyArray<Route> => []))

/** What a route injects, in words: `authorization: Bearer $TOKEN`, or undefined. */
export const credentialOf = (r: Route): string | undefined =>
  r.auth ? `${r.auth.header ?? "authorization"}: ${r.auth.scheme ? `${r.auth.scheme} ` : ""}$${r.auth.token_env}` : undefined

/** A route as `egress ls --json` and allow/deny --json print it (camelCase). */
const routeJson = (r: Route) => ({
  host: r.host,
  ports: r.ports ?? [443],
  paths: r.paths ?? null,
  methods: r.methods ?? null,
  credential: r.auth ? { header: r.auth.header ?? "authorization", scheme: r.auth.scheme ?? null, tokenEnv: r.auth.token_env } : null,
  allowPrivateIps: r.allow_private_ips === true
})

const scopeOf = (r: ReturnType<typeof routeJson>): string =>
  [r.methods ? r.methods.join("|") : "any method", r.paths ? r.paths.join(" ") : "any path", `port ${r.ports.join(",")}`, ...(r.allowPrivateIps ? ["private addresses"] : [])].join(", ")

const sameRoute = (a: Route, b: Route) => JSON.stringify(routeJson(a)) === JSON.stringify(routeJson(b))

export interface EgressRow {
  readonly host: string
  /** live: the daemon enforces it; denied: a manifest route `egress deny` took away. */
  readonly state: "live" | "denied"
  /** The daemon's name for it in denials and the audit log (`routes[0] (host)`); null when denied. */
  readonly rule: string | null
  /** manifest: as planned; added: by `egress allow` (or a hand edit), not in the manifest. */
  readonly source: "manifest" | "added"
  readonly route: ReturnType<typeof routeJson>
}

export const egressRows = (live: ReadonlyArray<Route>, manifest: ReadonlyArray<Route>): ReadonlyArray<EgressRow> => [
  ...live.map((r, i): EgressRow => ({
    host: r.host,
    state: "live",
    rule: `routes[${i}] (${r.host})`,
    source: manifest.some((m) => sameRoute(m, r)) ? "manifest" : "added",
    route: routeJson(r)
  })),
  ...manifest.filter((m) => !live.some((r) => r.host === m.host)).map((m): EgressRow => ({
    host: m.host,
    state: "denied",
    rule: null,
    source: "manifest",
    route: routeJson(m)
  }))
]

export const ls = Command.make(
  "ls",
  { bottle: bottleArg, json: jsonFlag },
  Effect.fn("egress.ls")(function*({ bottle, json }) {
    const file = yield* routesOf(bottle)
    const live = (yield* loadRoutes(file)).routes
    const rows = egressRows(live, yield* manifestRoutes(bottle))
    if (json) return yield* Console.log(JSON.stringify({ bottle, routes: rows }, null, 2))
    if (rows.length === 0) return yield* Console.log(`bottle ${bottle} has no egress routes: every request is refused`)
    yield* Console.log(table(
      ["HOST", "STATE", "CREDENTIAL", "SCOPE", "RULE", "SOURCE"],
      rows.map((r) => {
        const cred = r.route.credential ? `${r.route.credential.header}: ${r.route.credential.scheme ? `${r.route.credential.scheme} ` : ""}$${r.route.credential.tokenEnv}` : "-"
        return [r.host, r.state, cred, scopeOf(r.route), r.rule ?? `(egress allow ${bottle} ${r.host} restores it)`, r.source].map(visible)
      })
    ))
  })
).pipe(
  Command.withDescription("List a bottle's egress routes: which are live, which inject a credential, which rule name the audit log uses"),
  Command.withExamples([
    { command: "bottle egress ls claude-1a2b3c", description: "The routes the egress daemon enforces now" },
    { command: "bottle egress ls claude-1a2b3c --json", description: "For scripts" }
  ])
)

const allowPrivateIps = Flag.Boolean("allow-private-ips").pipe(
  Flag.withDescription("The host is an internal service: it may resolve to a loopback, private (RFC 1918), CGNAT or unique-local address"),
  Flag.withDefault(false)
)

export const allow = Command.make(
  "allow",
  { bottle: bottleArg, host, allowPrivateIps, json: jsonFlag },
  Effect.fn("egress.allow")(function*({ bottle, host, allowPrivateIps, json }) {
    const file = yield* routesOf(bottle)
    const manifest = yield* manifestRoutes(bottle)
    const outcome = yield* allowHost(file, host, { allowPrivateIps, manifest })
    const h = host.toLowerCase()
    const live = (yield* loadRoutes(file)).routes.filter((r) => r.host === h)
    if (json) return yield* Console.log(JSON.stringify({ bottle, host: h, outcome: outcome === "changed" ? "allowed" : outcome, routes: live.map(routeJson) }))
    const what = allowPrivateIps ? `${h} (private addresses included)` : h
    const creds = live.map(credentialOf).filter((c) => c !== undefined)
    yield* Console.log(
      outcome === "restored" ? `egress: ${bottle} may reach ${what} again, as its manifest said${creds.length > 0 ? ` (injects ${creds.join(", ")})` : ""}`
      : outcome === "changed" ? `egress: ${bottle} may now reach ${what} (no credential, any path and method)`
      : `egress: ${bottle} already routes ${what}${creds.length > 0 ? ` (injects ${creds.join(", ")})` : ""}`
    )
  })
).pipe(
  Command.withDescription("Allow a bottle to reach a host: the manifest's route for it if it had one (credential included), else any path and method without a credential"),
  Command.withExamples([
    { command: "bottle egress allow claude-1a2b3c registry.npmjs.org", description: "Let the agent install packages" },
    { command: "bottle egress allow claude-1a2b3c ci.internal.example --allow-private-ips", description: "An internal service" }
  ])
)

export const deny = Command.make(
  "deny",
  { bottle: bottleArg, host, json: jsonFlag },
  Effect.fn("egress.deny")(function*({ bottle, host, json }) {
    const file = yield* routesOf(bottle)
    const outcome = yield* denyHost(file, host)
    const h = host.toLowerCase()
    const planned = (yield* manifestRoutes(bottle)).some((r) => r.host === h)
    if (json) return yield* Console.log(JSON.stringify({ bottle, host: h, outcome: outcome === "changed" ? "denied" : "unchanged", manifestRouteKept: planned }))
    yield* Console.log(
      outcome === "changed"
        ? `egress: ${bottle} may no longer reach ${h}${planned ? ` (its manifest route is kept: \`bottle egress allow ${bottle} ${h}\` restores it)` : ""}`
        : `egress: ${bottle} had no route for ${h}`
    )
  })
).pipe(
  Command.withDescription("Take a bottle's routes for a host away (a manifest route stays known: `egress allow` restores it)"),
  Command.withExamples([{ command: "bottle egress deny claude-1a2b3c registry.npmjs.org", description: "Cut the agent off from a host" }])
)

export const egress = Command.make("egress").pipe(
  Command.withDescription("See and change the egress routes of a bottle (live while it runs; kept across stop and resume)"),
  Command.withExamples([
    { command: "bottle egress ls claude-1a2b3c", description: "What the bottle may reach, and with which credential" },
    { command: "bottle egress deny claude-1a2b3c api.anthropic.com", description: "Cut it off (`egress allow` gives the manifest's route back)" }
  ]),
  Command.withSubcommands([ls, allow, deny])
)
