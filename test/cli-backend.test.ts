/**
 * The backend choice, through the built CLI (as in cli.test.ts): --backend beats
 * $BOTTLE_BACKEND, which beats the manifest. A backend this version cannot launch still
 * plans (with a note), and `start` refuses it in one line before asking anything.
 */
import * as fs from "node:fs"
import * as path from "node:path"
import { assert, beforeAll, describe, it } from "@effect/vitest"
import { SmolvmCommandFailed, SmolvmDecodeFailed, SmolvmError, SmolvmMissing, SmolvmTooOld } from "../src/services/Smolvm.ts"
import { bottleSync, lines, NO_ENGINE, prepareCli, tmp } from "./support/cli.ts"

let cliDir = ""
/** The CLI with an unreachable engine by default; `env` is added last. */
const bottle = (args: ReadonlyArray<string>, env: Record<string, string> = {}) => bottleSync(cliDir, args, { ...NO_ENGINE, ...env })

beforeAll(() => {
  cliDir = prepareCli()
}, 180_000)

/** A manifest whose only bottle asks for `backend`. */
const manifestWith = (backend: "docker" | "smolmachines") => {
  const file = path.join(tmp("bb-backend-manifest-"), "bottle.yaml")
  fs.writeFileSync(file, `agents:
  claude: { bottle: box }
bottles:
  box:
    backend: ${backend}
    egress:
      routes:
        - host: api.anthropic.com
          auth: { header: authorization, scheme: Bearer, token_env: CLAUDE_CODE_OAUTH_TOKEN }
          roles: [claude_code_oauth]
`)
  return file
}

const plannedBackend = (args: ReadonlyArray<string>, env: Record<string, string> = {}) => {
  const r = bottle(["plan", "claude", "--json", ...args], env)
  assert.strictEqual(r.status, 0, r.stderr)
  return (JSON.parse(r.stdout) as { backend: string }).backend
}


describe("backend override order: --backend > $BOTTLE_BACKEND > manifest", () => {
  it("the manifest decides when nothing else does", () => {
    assert.strictEqual(plannedBackend(["--manifest", manifestWith("smolmachines")]), "smolmachines")
    assert.strictEqual(plannedBackend(["--manifest", manifestWith("docker")]), "docker")
  })

  it("$BOTTLE_BACKEND beats the manifest", () => {
    assert.strictEqual(plannedBackend(["--manifest", manifestWith("smolmachines")], { BOTTLE_BACKEND: "docker" }), "docker")
    assert.strictEqual(plannedBackend(["--manifest", manifestWith("docker")], { BOTTLE_BACKEND: "smolmachines" }), "smolmachines")
  })

  it("--backend beats both", () => {
    assert.strictEqual(plannedBackend(["--manifest", manifestWith("docker"), "--backend", "smolmachines"], { BOTTLE_BACKEND: "docker" }), "smolmachines")
    assert.strictEqual(plannedBackend(["--manifest", manifestWith("smolmachines"), "--backend", "docker"], { BOTTLE_BACKEND: "smolmachines" }), "docker")
  })

  it("the built-in default manifest follows the same order", () => {
    assert.strictEqual(plannedBackend([]), "docker")
    assert.strictEqual(plannedBackend([], { BOTTLE_BACKEND: "smolmachines" }), "smolmachines")
    assert.strictEqual(plannedBackend(["--backend", "docker"], { BOTTLE_BACKEND: "smolmachines" }), "docker")
  })
})

describe("the smolmachines backend without a usable smolvm", () => {
  it("plan still prints the plan, with no note (the backend is built)", () => {
    const human = bottle(["plan", "claude", "--backend", "smolmachines"])
    assert.strictEqual(human.status, 0, human.stderr)
    assert.include(human.stdout, "smolmachines")
    assert.notInclude(human.stderr, "not built")
  })

  it("start refuses it in one line naming smolvm, before the plan and before asking y/N, and leaves nothing behind", () => {
    for (const [args, env] of [
      [["--backend", "smolmachines"], {}],
      [[], { BOTTLE_BACKEND: "smolmachines" }],
      [["--manifest", manifestWith("smolmachines")], {}]
    ] as const) {
      // A credential, and no terminal and no --yes: were the prompt first, this would say "--yes".
      const r = bottle(["start", "claude", ...args], { CLAUDE_CODE_OAUTH_TOKEN: "placeholder-for-test", BOTTLE_SMOLVM: "/nonexistent/smolvm", ...env })
      assert.notStrictEqual(r.status, 0)
      assert.strictEqual(lines(r.stderr).length, 1, r.stderr)
      assert.match(r.stderr, /^bottle: smolvm is not installed or cannot run .*install smolvm ≥ 1\.9\.0 for --backend smolmachines/)
      assert.strictEqual(r.stdout, "")
      assert.deepStrictEqual(fs.readdirSync(r.stateDir), [])
    }
  })
})

describe("smolvm errors", () => {
  it("each says what went wrong (a failure never prints an empty `bottle: ` line)", () => {
    const errors = [
      new SmolvmError({ reason: new SmolvmCommandFailed({ argv: ["smolvm", "machine", "start", "--name", "x"], exitCode: 3, stderr: "boot failed\n" }) }),
      new SmolvmError({ reason: new SmolvmMissing({ message: "spawn smolvm ENOENT" }) }),
      new SmolvmError({ reason: new SmolvmTooOld({ version: "1.2.0", minimum: "1.8.0" }) }),
      new SmolvmError({ reason: new SmolvmDecodeFailed({ message: "expected an array" }) })
    ]
    assert.deepStrictEqual(errors.map((e) => e.message), [
      "smolvm machine start failed (exit 3): boot failed",
      "smolvm is not installed or cannot run (spawn smolvm ENOENT); install smolvm ≥ 1.9.0 for --backend smolmachines (`bottle doctor` checks it)",
      "smolvm 1.2.0 is too old: --backend smolmachines needs 1.8.0 or later (network allowlists were unreliable before); install smolvm 1.8.0 or later",
      "smolvm printed output we could not decode: expected an array"
    ])
  })
})
