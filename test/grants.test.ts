/**
 * Credential grants (src/programs/grants.ts): a manifest that sends a token to a host where it
 * is not known to belong needs a person's approval, once; `--yes` never gives it. Through the
 * built CLI with no engine (the check comes before anything is created), and the module itself.
 */
import * as fs from "node:fs"
import * as path from "node:path"
import { assert, beforeAll, describe, it } from "@effect/vitest"
import { Effect, Layer } from "effect"
import { make } from "../src/layers/StateStore.ts"
import { approveGrants, GRANTS_FILE, grantsOf, pendingGrants } from "../src/programs/grants.ts"
import type { BottlePlan } from "../src/schema/BottlePlan.ts"
import { StateStore } from "../src/services/StateStore.ts"
import { bottleSync, lines, NO_ENGINE, prepareCli, tmp } from "./support/cli.ts"

let cliDir = ""
beforeAll(() => {
  cliDir = prepareCli()
}, 180_000)

const TOKEN = { CLAUDE_CODE_OAUTH_TOKEN: "sk-ant-oat01-placeholder-for-tests" }

/** A manifest whose only route injects $CLAUDE_CODE_OAUTH_TOKEN into `host`. */
const manifestRouting = (host: string) => {
  const file = path.join(tmp("bb-grants-manifest-"), "bottle.yaml")
  fs.writeFileSync(file, `agents:
  claude: { bottle: box }
bottles:
  box:
    egress:
      routes:
        - host: "${host}"
          auth: { scheme: Bearer, token_env: CLAUDE_CODE_OAUTH_TOKEN }
          roles: [claude_code_oauth]
`)
  return file
}

const start = (manifest: string, env: Record<string, string> = {}) =>
  bottleSync(cliDir, ["start", "claude", "--yes", "--detach", "--manifest", manifest], { ...NO_ENGINE, ...TOKEN, ...env })

describe("credential grants through the CLI", () => {
  it("start --yes refuses a token sent to a host it is not known to belong to, and creates nothing", () => {
    const r = start(manifestRouting("collect.example.net"))
    assert.notStrictEqual(r.status, 0)
    const last = lines(r.stderr).at(-1) ?? ""
    assert.match(last, /^bottle: credential grant not approved: \$CLAUDE_CODE_OAUTH_TOKEN → collect\.example\.net \(.*bottle\.yaml sends this token/)
    assert.include(last, "--yes never approves a grant")
    assert.include(r.stderr, "NEW CREDENTIAL GRANT", "the plan shown flags the route")
    assert.deepStrictEqual(fs.readdirSync(r.stateDir), [], "no bottle, no grants file")
  })

  it("a wildcard route is a grant too, even under the token's home domain", () => {
    const r = start(manifestRouting("*.anthropic.com"))
    assert.match(lines(r.stderr).at(-1) ?? "", /credential grant not approved: \$CLAUDE_CODE_OAUTH_TOKEN → \*\.anthropic\.com/)
  })

  it("the token's known home needs no approval (the launch goes on)", () => {
    const r = start(manifestRouting("api.anthropic.com"))
    assert.notStrictEqual(r.status, 0)
    assert.notInclude(r.stderr, "credential grant")
    assert.notInclude(r.stderr, "NEW CREDENTIAL GRANT")
    assert.include(r.stderr, "• writing bottle state", "past the grant check: the launch began")
  })

  it("an approved grant passes later starts, --yes included", () => {
    const stateDir = tmp("bb-grants-state-")
    fs.writeFileSync(
      path.join(stateDir, GRANTS_FILE),
      JSON.stringify({ grants: [{ token_env: "CLAUDE_CODE_OAUTH_TOKEN", host: "collect.example.net", approved_at: "2026-01-01T00:00:00.000Z", manifest: "x" }] })
    )
    const r = start(manifestRouting("collect.example.net"), { BOTTLE_STATE_DIR: stateDir })
    assert.notInclude(r.stderr, "credential grant")
    assert.include(r.stderr, "• writing bottle state", "past the grant check: the launch began")
    // The approval is for that host only.
    const other = start(manifestRouting("exfil.example.net"), { BOTTLE_STATE_DIR: stateDir })
    assert.match(lines(other.stderr).at(-1) ?? "", /credential grant not approved: \$CLAUDE_CODE_OAUTH_TOKEN → exfil\.example\.net/)
  })

  it("a grants file that is not one is an error naming it", () => {
    const stateDir = tmp("bb-grants-state-")
    fs.writeFileSync(path.join(stateDir, GRANTS_FILE), "{ nope")
    const r = start(manifestRouting("collect.example.net"), { BOTTLE_STATE_DIR: stateDir })
    assert.notStrictEqual(r.status, 0)
    assert.match(lines(r.stderr).at(-1) ?? "", new RegExp(`${GRANTS_FILE.replace(".", "\\.")} is unreadable: not a grants file`))
  })

  it("plan flags a pending grant and not an approved or at-home one", () => {
    const r = bottleSync(cliDir, ["plan", "claude", "--manifest", manifestRouting("collect.example.net")], TOKEN)
    assert.strictEqual(r.status, 0, r.stderr)
    assert.include(r.stdout, "NEW CREDENTIAL GRANT: not where $CLAUDE_CODE_OAUTH_TOKEN is known to belong")
    const home = bottleSync(cliDir, ["plan", "claude"], TOKEN)
    assert.notInclude(home.stdout, "NEW CREDENTIAL GRANT")
  })
})

/** A manifest with the Claude route and `$GITHUB_TOKEN` injected into api.github.com (`extra` YAML keys). */
const manifestGithub = (extra = "") => {
  const file = path.join(tmp("bb-grants-manifest-"), "bottle.yaml")
  fs.writeFileSync(file, `agents:
  claude: { bottle: box }
bottles:
  box:
    egress:
      routes:
        - host: api.anthropic.com
          auth: { scheme: Bearer, token_env: CLAUDE_CODE_OAUTH_TOKEN }
          roles: [claude_code_oauth]
        - host: api.github.com
          auth: { scheme: Bearer, token_env: GITHUB_TOKEN }
${extra}`)
  return file
}
const GITHUB = { GITHUB_TOKEN: "placeholder-github-token-for-tests" }

describe("a token at its home without paths or methods", () => {
  it("plan flags every unrestricted credential route; an account token's asks for approval, a model API token's does not", () => {
    const r = bottleSync(cliDir, ["plan", "claude", "--manifest", manifestGithub()], { ...TOKEN, ...GITHUB })
    assert.strictEqual(r.status, 0, r.stderr)
    const github = r.stdout.split("\n").find((l) => l.includes("api.github.com (")) ?? ""
    assert.include(github, "UNRESTRICTED TOKEN ROUTE: $GITHUB_TOKEN → api.github.com, any path and method")
    assert.include(github, "start asks you to approve it")
    const claude = r.stdout.split("\n").find((l) => l.includes("api.anthropic.com (")) ?? ""
    assert.include(claude, "UNRESTRICTED TOKEN ROUTE: $CLAUDE_CODE_OAUTH_TOKEN → api.anthropic.com, any path and method (its model API)")
    assert.notInclude(claude, "approve")
    // The built-in default's Claude route: flagged, never a question.
    const home = bottleSync(cliDir, ["plan", "claude"], TOKEN)
    assert.include(home.stdout, "UNRESTRICTED TOKEN ROUTE: $CLAUDE_CODE_OAUTH_TOKEN → api.anthropic.com")
    assert.notInclude(home.stdout, "approve")
    // Limited by paths: no flag.
    const limited = bottleSync(cliDir, ["plan", "claude", "--manifest", manifestGithub("          paths: [/repos/me/project/]\n")], { ...TOKEN, ...GITHUB })
    assert.notInclude(limited.stdout, "$GITHUB_TOKEN → api.github.com, any path")
  })

  it("start --yes refuses $GITHUB_TOKEN with any path and method on api.github.com, and creates nothing", () => {
    const r = start(manifestGithub(), GITHUB)
    assert.notStrictEqual(r.status, 0)
    assert.match(lines(r.stderr).at(-1) ?? "", /^bottle: credential grant not approved: \$GITHUB_TOKEN → api\.github\.com \(its home, but any path and method\)/)
    assert.deepStrictEqual(fs.readdirSync(r.stateDir), [], "no bottle, no grants file")
  })

  it("start --yes goes on when the route limits paths or methods, or once the unrestricted grant is approved", () => {
    for (const extra of ["          paths: [/repos/me/project/]\n", "          methods: [GET]\n"]) {
      const r = start(manifestGithub(extra), GITHUB)
      assert.notInclude(r.stderr, "credential grant", extra)
      assert.include(r.stderr, "• writing bottle state", `${extra}: past the grant check`)
    }
    const stateDir = tmp("bb-grants-state-")
    fs.writeFileSync(
      path.join(stateDir, GRANTS_FILE),
      JSON.stringify({ grants: [{ token_env: "GITHUB_TOKEN", host: "api.github.com", unrestricted: true, approved_at: "2026-01-01T00:00:00.000Z", manifest: "x" }] })
    )
    const r = start(manifestGithub(), { ...GITHUB, BOTTLE_STATE_DIR: stateDir })
    assert.notInclude(r.stderr, "credential grant")
    assert.include(r.stderr, "• writing bottle state", "past the grant check: the launch began")
  })
})

describe("grants module", () => {
  const plan = (routes: ReadonlyArray<{ host: string; token_env?: string }>) =>
    ({ egress: { routes: routes.map((r) => ({ host: r.host, ...(r.token_env ? { auth: { token_env: r.token_env } } : {}) })), tokens: [] } }) as unknown as BottlePlan

  it("one grant per (token, host) a route injects into; routes without auth grant nothing", () => {
    const p = plan([{ host: "a.example.com", token_env: "T" }, { host: "a.example.com", token_env: "T" }, { host: "b.example.com" }, { host: "c.example.com", token_env: "T" }])
    assert.deepStrictEqual(grantsOf(p), [{ token_env: "T", host: "a.example.com" }, { token_env: "T", host: "c.example.com" }])
  })

  it.effect("an account token at home with any path and method is a grant of its own; with paths or methods, or a model API token, it is none", () => {
    const root = tmp("bb-grants-root-")
    return Effect.gen(function*() {
      const routes = (extra: object) =>
        ({ egress: { routes: [{ host: "api.github.com", auth: { token_env: "GITHUB_TOKEN" }, ...extra }, { host: "api.anthropic.com", auth: { token_env: "CLAUDE_CODE_OAUTH_TOKEN" } }], tokens: [] } }) as unknown as BottlePlan
      assert.deepStrictEqual(yield* pendingGrants(routes({})), [{ token_env: "GITHUB_TOKEN", host: "api.github.com", unrestricted: true }])
      assert.deepStrictEqual(yield* pendingGrants(routes({ paths: ["/repos/me/x/"] })), [])
      assert.deepStrictEqual(yield* pendingGrants(routes({ methods: ["GET"] })), [])
      // "Anything", spelled out, is no limit: a prefix of every path, or every method.
      const unrestricted = [{ token_env: "GITHUB_TOKEN", host: "api.github.com", unrestricted: true as const }]
      assert.deepStrictEqual(yield* pendingGrants(routes({ paths: ["/"] })), unrestricted)
      assert.deepStrictEqual(yield* pendingGrants(routes({ paths: ["/repos/", "/"], methods: ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"] })), unrestricted)
      assert.deepStrictEqual(yield* pendingGrants(routes({ paths: ["/"], methods: ["GET", "HEAD"] })), [])
      // A grant for the host (as for a host away from home) is not one for unrestricted use.
      yield* approveGrants([{ token_env: "GITHUB_TOKEN", host: "api.github.com" }], "/m/bottle.yaml")
      assert.strictEqual((yield* pendingGrants(routes({}))).length, 1)
      yield* approveGrants([{ token_env: "GITHUB_TOKEN", host: "api.github.com", unrestricted: true }], "/m/bottle.yaml")
      assert.deepStrictEqual(yield* pendingGrants(routes({})), [])
    }).pipe(Effect.provide(Layer.succeed(StateStore, make(root))))
  })

  it.effect("approving remembers exactly the grants approved (0600), and only those stop being pending", () => {
    const root = tmp("bb-grants-root-")
    return Effect.gen(function*() {
      const p = plan([{ host: "a.example.com", token_env: "T" }, { host: "b.example.com", token_env: "T" }, { host: "api.anthropic.com", token_env: "ANTHROPIC_API_KEY" }])
      assert.deepStrictEqual((yield* pendingGrants(p)).map((g) => g.host), ["a.example.com", "b.example.com"])
      yield* approveGrants([{ token_env: "T", host: "a.example.com" }], "/m/bottle.yaml")
      yield* approveGrants([{ token_env: "T", host: "a.example.com" }], "/m/bottle.yaml")
      assert.deepStrictEqual((yield* pendingGrants(p)).map((g) => g.host), ["b.example.com"])
      const file = path.join(root, GRANTS_FILE)
      assert.strictEqual(fs.statSync(file).mode & 0o777, 0o600)
      const saved = JSON.parse(fs.readFileSync(file, "utf8")) as { grants: Array<{ host: string; manifest: string }> }
      assert.deepStrictEqual(saved.grants.map((g) => [g.host, g.manifest]), [["a.example.com", "/m/bottle.yaml"]])
    }).pipe(Effect.provide(Layer.succeed(StateStore, make(root))))
  })
})
