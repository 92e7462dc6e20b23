/**
 * The built CLI (`node bin/bottle.js`, bundled by `npm run build`) as a user runs it: from an
 * empty directory, with its own state dir and no Anthropic credential (support/cli.ts). Human
 * output by default, `--json` for scripts, and every failure is a non-zero exit with one clear
 * line on stderr.
 */
import * as fs from "node:fs"
import * as path from "node:path"
import { assert, beforeAll, describe, it } from "@effect/vitest"
import { manifestJsonSchema } from "../src/cli/schema.ts"
import { bottleSync, lines, prepareCli, repo, tmp } from "./support/cli.ts"

const version = (JSON.parse(fs.readFileSync(path.join(repo, "package.json"), "utf8")) as { version: string }).version
const SUBCOMMANDS = ["start", "plan", "ls", "exec", "stop", "resume", "logs", "cleanup", "schema", "doctor", "egress", "daemon", "completion"]

let cliDir = ""
const bottle = (args: ReadonlyArray<string>, env: Record<string, string> = {}) => bottleSync(cliDir, args, env)

beforeAll(() => {
  cliDir = prepareCli()
}, 180_000)

describe("bottle plan", () => {
  it("shows a manifest's control characters as escapes: its text cannot move the cursor or hide a warning", () => {
    const file = path.join(tmp("bb-cli-esc-"), "bottle.yaml")
    fs.writeFileSync(file, 'agents:\n  claude: { bottle: box }\nbottles:\n  box:\n    env: { FOO: "x\\e[3A\\e[2Kgone" }\n')
    const r = bottle(["plan", "claude", "--manifest", file])
    assert.strictEqual(r.status, 0, r.stderr)
    assert.notInclude(r.stdout, "\u001b")
    assert.include(r.stdout, "FOO=x\\x1b[3A\\x1b[2Kgone")
  })

  it("shows what each route may do, including a route allowed to reach private addresses", () => {
    const r = bottle(["plan", "coder", "--manifest", path.join(repo, "examples/full.yaml")])
    assert.strictEqual(r.status, 0, r.stderr)
    const routeLine = (host: string) => r.stdout.split("\n").find((l) => l.includes(`${host} (`)) ?? ""
    assert.include(routeLine("ci.example.com"), "MAY RESOLVE TO PRIVATE ADDRESSES (allow_private_ips)")
    assert.notInclude(routeLine("api.anthropic.com"), "PRIVATE")
    assert.include(routeLine("api.anthropic.com"), "injects authorization: Bearer $CLAUDE_CODE_OAUTH_TOKEN")
  })

  it("with no manifest and no credential shows the built-in default plan", () => {
    const r = bottle(["plan", "claude"])
    assert.strictEqual(r.status, 0, r.stderr)
    assert.include(r.stdout, "api.anthropic.com")
    assert.include(r.stdout, "CLAUDE_CODE_OAUTH_TOKEN=egress-placeholder")
    assert.include(r.stdout, "<built-in default manifest>")
    assert.notInclude(r.stdout, "undefined")
    assert.deepStrictEqual(fs.readdirSync(r.stateDir), [], "a plan writes nothing")
  })

  it("--json is a machine-readable plan", () => {
    const r = bottle(["plan", "claude", "--json"])
    assert.strictEqual(r.status, 0, r.stderr)
    const plan = JSON.parse(r.stdout) as { slug: string; backend: string; agent: string; manifestFile: string }
    assert.match(plan.slug, /^claude-[0-9a-f]{6}$/)
    assert.strictEqual(plan.backend, "docker")
    assert.strictEqual(plan.agent, "claude")
    assert.strictEqual(plan.manifestFile, "<built-in default manifest>")
  })

  it("an unknown agent is one line on stderr naming it", () => {
    const r = bottle(["plan", "nope"])
    assert.notStrictEqual(r.status, 0)
    assert.lengthOf(lines(r.stderr), 1, r.stderr)
    assert.include(r.stderr, '"nope"')
    assert.strictEqual(r.stdout, "")
  })

  it("a bad manifest is one line with file, line and the offending key", () => {
    const file = path.join(repo, "test/fixtures/manifests/bad/unknown-key.yaml")
    const r = bottle(["plan", "claude", "--manifest", file])
    assert.notStrictEqual(r.status, 0)
    assert.lengthOf(lines(r.stderr), 1, r.stderr)
    assert.include(r.stderr, `${file}:7:`)
    assert.include(r.stderr, "routs")
  })

  it("an unknown $BOTTLE_BACKEND fails clearly", () => {
    const r = bottle(["plan", "claude"], { BOTTLE_BACKEND: "kvm" })
    assert.notStrictEqual(r.status, 0)
    assert.lengthOf(lines(r.stderr), 1, r.stderr)
    assert.include(r.stderr, "BOTTLE_BACKEND")
    assert.include(r.stderr, "kvm")
  })
})

describe("bottle (other commands)", () => {
  it("--version prints the package version", () => {
    const r = bottle(["--version"])
    assert.strictEqual(r.status, 0, r.stderr)
    assert.include(r.stdout, version)
  })

  for (const cmd of SUBCOMMANDS) {
    it(`${cmd} --help prints its usage`, () => {
      const r = bottle([cmd, "--help"])
      assert.strictEqual(r.status, 0, r.stderr)
      assert.include(r.stdout, "USAGE")
      assert.include(r.stdout, `bottle ${cmd}`)
    })
  }

  it("schema prints the manifest's JSON Schema", () => {
    const r = bottle(["schema"])
    assert.strictEqual(r.status, 0, r.stderr)
    const printed = JSON.parse(r.stdout) as Record<string, unknown>
    assert.strictEqual(printed["$schema"], "https://json-schema.org/draft/2020-12/schema")
    assert.deepStrictEqual(printed, JSON.parse(JSON.stringify(manifestJsonSchema())))
  })

  it("stop of an unknown bottle fails naming it, whether or not the engine is reachable", () => {
    for (const env of [{}, { DOCKER_HOST: "unix:///nonexistent/bb-docker.sock" }]) {
      const r = bottle(["stop", "nosuch"], env)
      assert.notStrictEqual(r.status, 0)
      assert.lengthOf(lines(r.stderr), 1, r.stderr)
      assert.include(r.stderr, 'no bottle named "nosuch"')
    }
  })

  it("stop of a known bottle with the engine unreachable fails naming the bottle and the engine, and keeps its state", () => {
    const state = tmp("bb-cli-state-")
    fs.mkdirSync(path.join(state, "bottles", "kept-bottle"), { recursive: true })
    const r = bottle(["stop", "kept-bottle"], { DOCKER_HOST: "unix:///nonexistent/bb-docker.sock", BOTTLE_STATE_DIR: state })
    assert.notStrictEqual(r.status, 0)
    assert.lengthOf(lines(r.stderr), 1, r.stderr)
    assert.include(r.stderr, "cannot stop bottle kept-bottle: the Docker engine is not reachable")
    assert.isTrue(fs.existsSync(path.join(state, "bottles", "kept-bottle")))
  })

  it("start without a credential fails and leaves nothing behind", () => {
    const r = bottle(["start", "claude"])
    assert.notStrictEqual(r.status, 0)
    assert.include(lines(r.stderr).at(-1) ?? "", "CLAUDE_CODE_OAUTH_TOKEN")
    assert.deepStrictEqual(fs.readdirSync(r.stateDir), [])
  })

  it("start without --yes and without a terminal refuses (even with a credential) and leaves nothing behind", () => {
    const r = bottle(["start", "claude"], { CLAUDE_CODE_OAUTH_TOKEN: "placeholder-for-test" })
    assert.notStrictEqual(r.status, 0)
    assert.include(lines(r.stderr).at(-1) ?? "", "--yes")
    assert.deepStrictEqual(fs.readdirSync(r.stateDir), [])
  })

  it("ls --json without a reachable Docker engine still lists bottles, with status unknown", () => {
    const unreachable = { DOCKER_HOST: "unix:///nonexistent/bb-docker.sock" }
    const empty = bottle(["ls", "--json"], unreachable)
    assert.strictEqual(empty.status, 0, empty.stderr)
    assert.deepStrictEqual(JSON.parse(empty.stdout), [])
    const state = tmp("bb-cli-state-")
    fs.mkdirSync(path.join(state, "bottles", "ghost-bottle"), { recursive: true })
    const r = bottle(["ls", "--json"], { ...unreachable, BOTTLE_STATE_DIR: state })
    assert.strictEqual(r.status, 0, r.stderr)
    const rows = JSON.parse(r.stdout) as Array<{ slug: string; status: string }>
    assert.deepStrictEqual(rows.map((x) => [x.slug, x.status]), [["ghost-bottle", "unknown"]])
  })
})
