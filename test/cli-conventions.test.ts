/**
 * The CLI's conventions, on the built CLI as a user runs it (support/cli.ts), with no Docker
 * engine: a usage error is one line and a hint (never the help page); everything after exec's
 * bottle name is the command; `--json` on what lists or changes something, camelCase keys;
 * completion of bottle and agent names; an example in every command's help; route edits
 * that keep what the manifest said; a readable egress audit with `--json` beside it.
 */
import { spawnSync } from "node:child_process"
import * as fs from "node:fs"
import * as path from "node:path"
import { assert, beforeAll, describe, it } from "@effect/vitest"
import { execArgv } from "../src/cli/exec.ts"
import { relativeAge, renderPlan } from "../src/cli/render.ts"
import type { BottlePlan } from "../src/schema/BottlePlan.ts"
import { bottleSync, lines, NO_ENGINE, prepareCli, tmp } from "./support/cli.ts"

let cliDir = ""
const bottle = (args: ReadonlyArray<string>, env: Record<string, string> = {}) => bottleSync(cliDir, args, env)

beforeAll(() => {
  cliDir = prepareCli()
}, 180_000)

const TOKEN_ENV = { CLAUDE_CODE_OAUTH_TOKEN: "sk-test-not-a-real-token" }

/** A stopped bottle's state as a launch leaves it: plan.json and the egress routes file. */
const stoppedBottle = (name: string): { state: string; dir: string } => {
  const r = bottle(["plan", "claude", "--json", "--name", name], TOKEN_ENV)
  assert.strictEqual(r.status, 0, r.stderr)
  const plan = JSON.parse(r.stdout) as { egress: { routes: ReadonlyArray<unknown> } }
  const state = tmp("bb-conv-state-")
  const dir = path.join(state, "bottles", name)
  fs.mkdirSync(path.join(dir, "egress"), { recursive: true })
  fs.writeFileSync(path.join(dir, "plan.json"), r.stdout)
  fs.writeFileSync(path.join(dir, "egress", "routes.yaml"), JSON.stringify({ routes: plan.egress.routes }))
  fs.writeFileSync(path.join(dir, "meta.json"), JSON.stringify({ slug: name, backend: "docker", createdAt: new Date(Date.now() - 3 * 3600_000).toISOString(), deployKeys: [] }))
  return { state, dir }
}

const json = <A>(s: string): A => JSON.parse(s) as A

/** Every key of a JSON value, nested. */
const keysOf = (v: unknown): Array<string> =>
  Array.isArray(v) ? v.flatMap(keysOf) : v !== null && typeof v === "object" ? Object.entries(v).flatMap(([k, x]) => [k, ...keysOf(x)]) : []

describe("usage errors", () => {
  for (const args of [["sotp"], ["ls", "--bogus"], ["exec"], ["egress", "allow", "only-one-arg"], ["logs", "b", "--egres"]]) {
    it(`\`bottle ${args.join(" ")}\` prints one line and a hint, not the help`, () => {
      const r = bottle(args, NO_ENGINE)
      assert.strictEqual(r.status, 2)
      assert.strictEqual(r.stdout, "", "no help page")
      const got = lines(r.stderr)
      assert.lengthOf(got, 2, r.stderr)
      assert.match(got[0]!, /^bottle: /)
      assert.match(got[1]!, /^run `bottle.* --help` for usage$/)
    })
  }

  it("a typo names what was probably meant", () => {
    assert.include(bottle(["start", "claude", "--detatch"], NO_ENGINE).stderr, "(did you mean --detach?)")
    assert.include(bottle(["sotp"], NO_ENGINE).stderr, "(did you mean stop?)")
  })

  it("--help still prints the help, with an example, and the global flags on the top page only", () => {
    const top = bottle(["--help"])
    assert.include(top.stdout, "GLOBAL FLAGS")
    for (const l of top.stdout.split("\n")) assert.isAtMost(l.length, 120, l)
    for (const cmd of ["start", "run", "plan", "ls", "exec", "stop", "resume", "logs", "cleanup", "schema", "doctor", "egress", "daemon", "cp", "pull", "completion"]) {
      const r = bottle([cmd, "--help"])
      assert.strictEqual(r.status, 0, r.stderr)
      assert.include(r.stdout, "EXAMPLES", cmd)
      assert.notInclude(r.stdout, "GLOBAL FLAGS", cmd)
      assert.notInclude(r.stdout, "<slug>", cmd)
    }
    for (const sub of ["ls", "allow", "deny"]) {
      const r = bottle(["egress", sub, "--help"])
      assert.include(r.stdout, "EXAMPLES", sub)
      assert.include(r.stdout, "<bottle>", sub)
    }
  })
})

describe("exec", () => {
  it("takes everything after the bottle name as the command", () => {
    assert.deepStrictEqual(execArgv(["exec", "b", "ls", "-la"]), ["exec", "b", "--", "ls", "-la"])
    assert.deepStrictEqual(execArgv(["exec", "--root", "b", "ls", "-la"]), ["exec", "--root", "b", "--", "ls", "-la"])
    assert.deepStrictEqual(execArgv(["exec", "b", "--", "ls", "-la"]), ["exec", "b", "--", "ls", "-la"])
    assert.deepStrictEqual(execArgv(["--log-level", "debug", "exec", "b", "git", "log", "--oneline"]), ["--log-level", "debug", "exec", "b", "--", "git", "log", "--oneline"])
    assert.deepStrictEqual(execArgv(["ls", "-q"]), ["ls", "-q"])
    // exec's own flag after the bottle, with or without `--` after it; a command's own `--` is its own.
    assert.deepStrictEqual(execArgv(["exec", "b", "--root", "--", "sh", "-c", "id"]), ["exec", "b", "--root", "--", "sh", "-c", "id"])
    assert.deepStrictEqual(execArgv(["exec", "b", "--root", "id", "-u"]), ["exec", "b", "--root", "--", "id", "-u"])
    assert.deepStrictEqual(execArgv(["exec", "b", "grep", "--", "-x", "f"]), ["exec", "b", "--", "grep", "--", "-x", "f"])
    // As run: the command's flags never reach exec's parser; the bottle is looked up.
    const r = bottle(["exec", "nosuch", "ls", "-la"], NO_ENGINE)
    assert.notStrictEqual(r.status, 0)
    assert.notInclude(r.stderr, "Unrecognized flag")
    assert.include(r.stderr, 'no bottle named "nosuch"')
  })
})

describe("ls", () => {
  it("shows relative ages and the workspace; --quiet prints names only; --json has camelCase keys", () => {
    const { state } = stoppedBottle("aged-bottle")
    const env = { ...NO_ENGINE, BOTTLE_STATE_DIR: state }
    const table = bottle(["ls"], env)
    assert.strictEqual(table.status, 0, table.stderr)
    assert.match(table.stdout, /^NAME\s+AGENT\s+BACKEND\s+STATUS\s+VOLUMES\s+CREATED\s+WORKSPACE/)
    const row = table.stdout.split("\n").find((l) => l.startsWith("aged-bottle")) ?? ""
    assert.include(row, "3 hours ago")
    assert.notMatch(row, /\d{4}-\d\d-\d\dT/)
    assert.match(row, /bb-cli-cwd-/, "the workspace (the directory it was planned from)")
    assert.strictEqual(bottle(["ls", "--quiet"], env).stdout, "aged-bottle\n")
    assert.strictEqual(bottle(["ls", "-q"], env).stdout, "aged-bottle\n")
    const rows = json<Array<Record<string, unknown>>>(bottle(["ls", "--json"], env).stdout)
    assert.strictEqual(rows[0]!["slug"], "aged-bottle")
    for (const k of keysOf(rows)) assert.notInclude(k, "_", k)
  })

  it("relative ages read like docker's", () => {
    const now = Date.parse("2026-01-10T12:00:00Z")
    assert.strictEqual(relativeAge("2026-01-10T11:59:58Z", now), "just now")
    assert.strictEqual(relativeAge("2026-01-10T11:55:00Z", now), "5 minutes ago")
    assert.strictEqual(relativeAge("2026-01-10T11:00:00Z", now), "1 hour ago")
    assert.strictEqual(relativeAge("2026-01-07T12:00:00Z", now), "3 days ago")
    assert.strictEqual(relativeAge("", now), "?")
  })
})

describe("completion", () => {
  it("__complete lists bottle names and agent names; the scripts ask it", () => {
    const { state } = stoppedBottle("complete-me")
    const names = bottle(["__complete", "bottles"], { BOTTLE_STATE_DIR: state })
    assert.strictEqual(names.stdout, "complete-me\n")
    assert.strictEqual(bottle(["__complete", "agents"]).stdout, "claude\n")
    for (const shell of ["bash", "zsh", "fish"]) {
      const r = bottle(["completion", shell])
      assert.strictEqual(r.status, 0, r.stderr)
      assert.include(r.stdout, "bottle __complete")
    }
    assert.notInclude(bottle(["--help"]).stdout, "__complete", "hidden")
  })

  it("bash completes a bottle name after exec and an agent name after start", () => {
    const { state } = stoppedBottle("tab-bottle")
    const script = path.join(tmp("bb-conv-bash-"), "completion.bash")
    fs.writeFileSync(script, bottle(["completion", "bash"]).stdout)
    const bin = path.join(tmp("bb-conv-bin-"), "bottle")
    fs.writeFileSync(bin, `#!/bin/sh\nexec ${JSON.stringify(process.execPath)} ${JSON.stringify(path.join(cliDir, "bin", "bottle.js"))} "$@"\n`, { mode: 0o755 })
    const complete = (line: ReadonlyArray<string>) => {
      const words = line.map((w) => JSON.stringify(w)).join(" ")
      const sh = `source ${JSON.stringify(script)}; COMP_WORDS=(${words}); COMP_CWORD=${line.length - 1}; COMP_LINE=${JSON.stringify(line.join(" "))}; COMP_POINT=\${#COMP_LINE}; _bottle_dynamic; printf '%s\\n' "\${COMPREPLY[@]}"`
      const out = spawnSync("bash", ["-c", sh], {
        encoding: "utf8",
        env: { ...process.env, PATH: `${path.dirname(bin)}:${process.env["PATH"]}`, BOTTLE_STATE_DIR: state }
      })
      return out.stdout.split("\n").filter((l) => l !== "")
    }
    assert.deepStrictEqual(complete(["bottle", "exec", "tab"]), ["tab-bottle"])
    assert.deepStrictEqual(complete(["bottle", "egress", "ls", ""]), ["tab-bottle"])
    assert.deepStrictEqual(complete(["bottle", "start", "cl"]), ["claude"])
  })
})

describe("egress route edits keep what the manifest said", () => {
  it("ls shows the credential route; deny keeps it known; allow restores its credential; --json camelCase", () => {
    const { state, dir } = stoppedBottle("routes-bottle")
    const env = { ...NO_ENGINE, BOTTLE_STATE_DIR: state }
    const ls = () => json<{ routes: Array<{ host: string; state: string; rule: string | null; source: string; route: { credential: { tokenEnv: string } | null } }> }>(bottle(["egress", "ls", "routes-bottle", "--json"], env).stdout)
    const before = ls()
    const api = (o: ReturnType<typeof ls>) => o.routes.filter((r) => r.host === "api.anthropic.com")
    assert.deepStrictEqual(api(before).map((r) => [r.host, r.state, r.rule, r.source, r.route.credential?.tokenEnv]), [
      ["api.anthropic.com", "live", "routes[0] (api.anthropic.com)", "manifest", "CLAUDE_CODE_OAUTH_TOKEN"]
    ])
    assert.deepStrictEqual(before.routes.filter((r) => r.route.credential !== null).map((r) => r.host), ["api.anthropic.com"], "the credential goes to the API only")
    const human = bottle(["egress", "ls", "routes-bottle"], env)
    assert.match(human.stdout, /api\.anthropic\.com\s+live\s+authorization: Bearer \$CLAUDE_CODE_OAUTH_TOKEN/)

    const denied = bottle(["egress", "deny", "routes-bottle", "api.anthropic.com"], env)
    assert.strictEqual(denied.status, 0, denied.stderr)
    assert.include(denied.stdout, "`bottle egress allow routes-bottle api.anthropic.com` restores it")
    assert.notInclude(fs.readFileSync(path.join(dir, "egress", "routes.yaml"), "utf8"), "api.anthropic.com")
    assert.deepStrictEqual(api(ls()).map((r) => [r.host, r.state, r.rule]), [["api.anthropic.com", "denied", null]])

    const allowed = bottle(["egress", "allow", "routes-bottle", "api.anthropic.com", "--json"], env)
    assert.strictEqual(allowed.status, 0, allowed.stderr)
    const out = json<{ outcome: string; routes: Array<{ credential: { tokenEnv: string } | null }> }>(allowed.stdout)
    assert.strictEqual(out.outcome, "restored")
    assert.strictEqual(out.routes[0]?.credential?.tokenEnv, "CLAUDE_CODE_OAUTH_TOKEN")
    assert.deepStrictEqual(api(ls()).map((r) => [r.state, r.source, r.route]), api(before).map((r) => [r.state, r.source, r.route]), "exactly the manifest's route again")
    for (const k of keysOf(ls())) assert.notInclude(k, "_", k)

    // A host the manifest never named gets a bare route, said to be one.
    const bare = bottle(["egress", "allow", "routes-bottle", "registry.npmjs.org"], env)
    assert.include(bare.stdout, "no credential")
    assert.deepStrictEqual(ls().routes.filter((r) => r.source === "added").map((r) => [r.host, r.route.credential]), [["registry.npmjs.org", null]])
  })

  it("an unknown bottle is `no bottle named` for ls, allow and deny", () => {
    for (const args of [["egress", "ls", "nope-1"], ["egress", "allow", "nope-1", "a.example.com"], ["egress", "deny", "nope-1", "a.example.com"]]) {
      const r = bottle(args, NO_ENGINE)
      assert.strictEqual(r.status, 1, r.stderr)
      assert.lengthOf(lines(r.stderr), 1, r.stderr)
      assert.include(r.stderr, 'no bottle named "nope-1"')
      assert.notInclude(r.stderr, "ENOENT")
    }
  })
})

describe("logs --egress", () => {
  it("is a readable table (time, decision, method, host, path, status, reason); --json is one camelCase object a line", () => {
    const { state, dir } = stoppedBottle("audit-bottle")
    const line = (o: Record<string, unknown>) => JSON.stringify({ time: "2026-01-10T12:00:00.000Z", bottle: "audit-bottle", method: "GET", path: "/", status: 200, bytes_in: 0, bytes_out: 10, duration_ms: 1.5, rule: "routes[0] (api.anthropic.com)", host: "api.anthropic.com", decision: "allow", ...o })
    fs.writeFileSync(path.join(dir, "egress", "audit.log"), [
      line({}),
      line({ host: "nowhere.example.com", status: 502, decision: "error", reason: "DNS: nowhere.example.com did not resolve (ENOTFOUND)" }),
      line({ host: "evil.example.com\u001b[2J", status: 403, decision: "deny", rule: "default-deny", reason: "host evil.example.com is not routed" })
    ].join("\n") + "\n")
    const env = { ...NO_ENGINE, BOTTLE_STATE_DIR: state }
    const r = bottle(["logs", "audit-bottle", "--egress"], env)
    assert.strictEqual(r.status, 0, r.stderr)
    const rows = lines(r.stdout)
    assert.match(rows[0]!, /^TIME\s+DECISION\s+METHOD\s+HOST\s+PATH\s+STATUS\s+REASON$/)
    assert.match(rows[2]!, /error\s+GET\s+nowhere\.example\.com\s+\/\s+502\s+DNS: nowhere\.example\.com did not resolve \(ENOTFOUND\)/)
    assert.notInclude(r.stdout, "\u001b", "the agent's text cannot drive the terminal")
    const j = bottle(["logs", "audit-bottle", "--egress", "--json"], env)
    const objs = lines(j.stdout).map((l) => JSON.parse(l) as Record<string, unknown>)
    assert.lengthOf(objs, 3)
    assert.strictEqual(objs[1]!["reason"], "DNS: nowhere.example.com did not resolve (ENOTFOUND)")
    assert.strictEqual(objs[1]!["bytesOut"], 10)
    for (const k of keysOf(objs)) assert.notInclude(k, "_", k)
  })
})

describe("agent text the terminal would act on", () => {
  // An HTTP/2 :path reaches the audit log latin1-decoded (any of U+0080-U+00FF, so the C1 CSI
  // and OSC); a pushed branch name may hold UTF-8 C1 and bidirectional controls.
  const C1 = ["\u009b", "\u009d", "\u009c", "\u202e"]

  it("logs --egress (table and --json) and logs --git show C1 and bidirectional controls escaped", () => {
    const { state, dir } = stoppedBottle("c1-bottle")
    fs.writeFileSync(path.join(dir, "egress", "audit.log"), JSON.stringify({
      time: "2026-01-10T12:00:00.000Z", bottle: "c1-bottle", method: "GET", host: "api.anthropic.com", path: "/a\u009b2J\u009d52;c;aGk=\u009c", status: 502, bytes_in: 0,
      bytes_out: 10, duration_ms: 1.5, rule: "routes[0] (api.anthropic.com)", decision: "error", reason: "u\u202etxt.exe"
    }) + "\n")
    fs.mkdirSync(path.join(dir, "git-gate"))
    const push = { time: "2026-01-10T12:00:00.000Z", upstream: "origin", refs: [{ ref: "refs/heads/bottle/\u009d0;PWNED\u009c", old: "0", new: "1", verdict: "refused" }], verdict: "refused", answer: "u\u202etxt.exe \u009b2J" }
    fs.writeFileSync(path.join(dir, "git-gate", "audit.log"), JSON.stringify(push) + "\n")
    const env = { ...NO_ENGINE, BOTTLE_STATE_DIR: state }
    const table = bottle(["logs", "c1-bottle", "--egress"], env)
    const json = bottle(["logs", "c1-bottle", "--egress", "--json"], env)
    const git = bottle(["logs", "c1-bottle", "--git"], env)
    for (const r of [table, json, git]) {
      assert.strictEqual(r.status, 0, r.stderr)
      for (const c of C1) assert.notInclude(r.stdout, c, JSON.stringify(r.stdout))
    }
    assert.include(table.stdout, "/a\\x9b2J\\x9d52;c;aGk=\\x9c")
    assert.include(table.stdout, "u\\u202etxt.exe")
    assert.strictEqual((JSON.parse(json.stdout) as { path: string }).path, "/a\u009b2J\u009d52;c;aGk=\u009c", "the same value once parsed")
    assert.deepStrictEqual(JSON.parse(git.stdout), push)
  })

  it("a refusal that quotes the agent's text shows its controls escaped", () => {
    const r = bottle(["logs", "nope-\u009b2J\u202e"], NO_ENGINE)
    assert.strictEqual(r.status, 1)
    assert.notInclude(r.stderr, "\u009b")
    assert.notInclude(r.stderr, "\u202e")
    assert.include(r.stderr, "nope-\\x9b2J\\u202e")
  })
})

describe("--json on what lists or changes something", () => {
  it("doctor --json is JSON with camelCase keys (cleanup --json, which needs the engine: test/e2e/egress-debug.test.ts)", () => {
    const d = bottle(["doctor", "--json"], NO_ENGINE)
    const out = json<{ ok: boolean; checks: Array<{ name: string; status: string }> }>(d.stdout)
    assert.strictEqual(out.ok, false)
    assert.strictEqual(d.status, 1)
    assert.deepInclude(out.checks.map((c) => [c.name, c.status]), ["docker engine", "fail"])
    for (const k of keysOf(out)) assert.notInclude(k, "_", k)
  })

  it("start, stop, resume, cleanup, egress and logs accept --json", () => {
    for (const args of [["start", "--help"], ["cleanup", "--help"], ["stop", "--help"], ["resume", "--help"], ["logs", "--help"], ["egress", "ls", "--help"], ["egress", "allow", "--help"], ["egress", "deny", "--help"]]) {
      assert.include(bottle(args).stdout, "--json", args.join(" "))
    }
  })
})

describe("the default Claude bottle", () => {
  it("routes the hosts Claude Code calls, with the credential on the API only", () => {
    const r = bottle(["plan", "claude", "--json"], TOKEN_ENV)
    const plan = json<{ egress: { routes: Array<{ host: string; auth?: unknown }> } }>(r.stdout)
    assert.deepStrictEqual(plan.egress.routes.map((x) => [x.host, x.auth !== undefined]), [
      ["api.anthropic.com", true],
      ["platform.claude.com", false],
      ["claude.ai", false],
      ["statsig.anthropic.com", false],
      ["o1158394.ingest.us.sentry.io", false]
    ])
    for (const route of plan.egress.routes) assert.notInclude(route.host, "*", "no wildcard on a shared service")
  })

  it("a plan needing a daemon this version has not built marks it, before start refuses it", () => {
    const r = bottle(["plan", "claude", "--json"], TOKEN_ENV)
    const plan = { ...JSON.parse(r.stdout), daemons: ["egress", "not-a-daemon"] } as BottlePlan
    const text = renderPlan(plan, "bottle.yaml")
    assert.include(text.split("\n").find((l) => l.includes("daemons")) ?? "", "not-a-daemon (NOT BUILT YET in this version: start refuses this plan)")
    assert.notInclude(text, "egress (NOT BUILT")
  })
})
