/**
 * Credential grants: which hosts a token may be injected into. A route with `auth` sends one of
 * your tokens to its host, and a manifest comes with the repository you are working in, so a
 * hostile one could route your Anthropic token to a host of its own and let the agent call it.
 *
 * A token goes, without asking, only to its known home (its provider's API hosts, below). Any
 * other (token, host) pair is a grant you approve once, interactively: `bottle start` shows it
 * and asks; `--yes` never approves one. Approved grants are remembered in
 * `<state root>/grants.json` (0600), so later starts, with `--yes` too, pass.
 *
 * At home, a route that limits neither `paths` nor `methods` hands the agent the token's whole
 * power there. For a model API token (Anthropic, OpenAI) that is what the agent is for: the
 * plan flags it, nothing asks (the default Claude route keeps working with `--yes`). For an
 * account token (GitHub, GitLab, npm: every repository, package and setting the account
 * reaches) it is a grant of its own, `unrestricted`, approved once like any other; a route
 * with `paths` or `methods` needs none.
 */
import { Effect, Option, Schema } from "effect"
import { hostMatches, HttpMethod } from "../schema/Route.ts"
import type { BottlePlan } from "../schema/BottlePlan.ts"
import { StateCorrupt, StateError, StateStore } from "../services/StateStore.ts"

/** Token env names whose home is known: injected there, a route needs no approval. */
export const KNOWN_HOMES: Readonly<Record<string, ReadonlyArray<string>>> = {
  CLAUDE_CODE_OAUTH_TOKEN: ["api.anthropic.com"],
  ANTHROPIC_API_KEY: ["api.anthropic.com"],
  OPENAI_API_KEY: ["api.openai.com"],
  GITHUB_TOKEN: ["api.github.com", "github.com", "uploads.github.com"],
  GH_TOKEN: ["api.github.com", "github.com", "uploads.github.com"],
  GITLAB_TOKEN: ["gitlab.com"],
  NPM_TOKEN: ["registry.npmjs.org"]
}

/** Tokens whose home is a model API: an unrestricted route there is flagged, not a grant. */
export const MODEL_API_TOKENS: ReadonlySet<string> = new Set(["CLAUDE_CODE_OAUTH_TOKEN", "ANTHROPIC_API_KEY", "OPENAI_API_KEY"])

export interface Grant {
  readonly token_env: string
  /** The route's host as written (`*.example.com` included). */
  readonly host: string
  /** At the token's home, any path and method (an account token's whole power). */
  readonly unrestricted?: true
}

const GrantRecord = Schema.Struct({
  token_env: Schema.String,
  host: Schema.String,
  unrestricted: Schema.optionalKey(Schema.Literal(true)),
  approved_at: Schema.String,
  manifest: Schema.String
})
const GrantsFile = Schema.Struct({ grants: Schema.Array(GrantRecord) })
type GrantsFile = typeof GrantsFile.Type

export const GRANTS_FILE = "grants.json"

const sameGrant = (a: Grant, b: Grant) => a.token_env === b.token_env && a.host === b.host && (a.unrestricted ?? false) === (b.unrestricted ?? false)

/**
 * A credential route that in effect limits neither paths nor methods: none listed, or a list
 * that lets everything through (`paths: ["/"]` is a prefix of every path; `methods` naming all
 * seven), so a manifest cannot dodge the grant by spelling "anything" out.
 */
export const isUnrestricted = (r: { readonly auth?: unknown; readonly paths?: ReadonlyArray<string>; readonly methods?: ReadonlyArray<string> }): boolean =>
  r.auth !== undefined &&
  (r.paths === undefined || r.paths.includes("/")) &&
  (r.methods === undefined || HttpMethod.literals.every((m) => r.methods!.includes(m)))

/** Is `host` (a route's host, possibly `*.suffix`) inside the token's known home? */
const atHome = (g: Grant): boolean => {
  const homes = KNOWN_HOMES[g.token_env]
  // A wildcard route reaches names the home does not list: never "at home".
  return homes !== undefined && !g.host.startsWith("*.") && homes.some((h) => hostMatches(h, g.host))
}

/**
 * The plan's credential grants: one per (token, host) a route injects into, and one more,
 * `unrestricted`, for an account token's home reached by a route without paths or methods.
 */
export const grantsOf = (plan: BottlePlan): ReadonlyArray<Grant> => {
  const out: Array<Grant> = []
  for (const r of plan.egress.routes) {
    if (!r.auth) continue
    const base: Grant = { token_env: r.auth.token_env, host: r.host }
    const g: Grant = isUnrestricted(r) && !MODEL_API_TOKENS.has(base.token_env) && atHome(base) ? { ...base, unrestricted: true } : base
    if (!out.some((x) => sameGrant(x, g))) out.push(g)
  }
  return out
}

/** The approved grants; a file that is not a grants file is Corrupt, saying so. */
const readGrants = Effect.gen(function*() {
  const state = yield* StateStore
  const file = yield* state.readRootJson(GRANTS_FILE, GrantsFile).pipe(
    Effect.mapError((e) =>
      e.reason._tag === "Corrupt"
        ? new StateError({ reason: new StateCorrupt({ path: e.reason.path, message: `not a grants file (${e.reason.message.split("\n")[0]}); fix or delete it` }) })
        : e
    )
  )
  return Option.getOrElse(file, (): GrantsFile => ({ grants: [] }))
})

/** The plan's grants that are neither at home nor approved before: what start must ask about. */
export const pendingGrants = (plan: BottlePlan): Effect.Effect<ReadonlyArray<Grant>, StateError, StateStore> =>
  Effect.gen(function*() {
    const needed = grantsOf(plan).filter((g) => g.unrestricted === true || !atHome(g))
    if (needed.length === 0) return []
    const approved = (yield* readGrants).grants
    return needed.filter((g) => !approved.some((a) => sameGrant(a, g)))
  })

/** Remembers approved grants (in the state root: atomic replace, 0600). */
export const approveGrants = (grants: ReadonlyArray<Grant>, manifest: string): Effect.Effect<void, StateError, StateStore> =>
  Effect.gen(function*() {
    const current = yield* readGrants
    const now = new Date().toISOString()
    const next: GrantsFile = {
      grants: [...current.grants, ...grants.filter((g) => !current.grants.some((a) => sameGrant(a, g))).map((g) => ({ ...g, approved_at: now, manifest }))]
    }
    yield* (yield* StateStore).writeRootJson(GRANTS_FILE, next)
  })

export const describeGrant = (g: Grant): string => `$${g.token_env} → ${g.host}${g.unrestricted ? " (its home, but any path and method)" : ""}`
