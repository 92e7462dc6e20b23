import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { loadManifest, parseManifest } from "../src/programs/loadManifest.ts"
import { DEFAULT_MANIFEST_NAME } from "../src/schema/defaultManifest.ts"

const badDir = path.join(import.meta.dirname, "fixtures/manifests/bad")

/** Each bad manifest states what it must produce in its header comments. */
const expectations = (file: string) => {
  const text = fs.readFileSync(file, "utf8")
  const get = (k: string) => text.match(new RegExp(`^# expect-${k}: (.*)$`, "m"))?.[1]?.trim() ?? ""
  return { path: get("path"), line: Number(get("line")), message: get("message") }
}

describe("manifest: bad corpus", () => {
  const files = fs.readdirSync(badDir).filter((f) => f.endsWith(".yaml"))
  it("has a corpus", () => assert.isAtLeast(files.length, 15))
  for (const f of files) {
    it.effect(f, () =>
      Effect.gen(function*() {
        const file = path.join(badDir, f)
        const want = expectations(file)
        const err = yield* Effect.flip(loadManifest({ cwd: os.tmpdir(), manifestPath: file, env: {} }))
        assert.strictEqual(err._tag, "ManifestError")
        const lines = err.message.split("\n")
        assert.strictEqual(lines.length, 1, `one clear message, got:\n${err.message}`)
        const m = lines[0]!.match(/^(.*?):(\d+)(?::\d+)?: (.*)$/)
        assert.isNotNull(m, lines[0])
        assert.strictEqual(m![1], file, "names the file")
        assert.strictEqual(Number(m![2]), want.line, `line in: ${lines[0]}`)
        if (want.path) assert.isTrue(m![3]!.startsWith(`${want.path}: `), `key path ${want.path} in: ${lines[0]}`)
        assert.include(m![3]!, want.message)
      }))
  }
})

describe("manifest: discovery and default", () => {
  it.effect("walks up from a subdirectory to find bottle.yaml", () =>
    Effect.gen(function*() {
      const root = fs.mkdtempSync(path.join(os.tmpdir(), "bb-manifest-"))
      fs.writeFileSync(path.join(root, "bottle.yaml"), "agents:\n  dev:\n    bottle: box\nbottles:\n  box: { backend: smolmachines }\n")
      const deep = path.join(root, "a/b/c")
      fs.mkdirSync(deep, { recursive: true })
      const loaded = yield* loadManifest({ cwd: deep, env: {} })
      assert.strictEqual(loaded.file, path.join(root, "bottle.yaml"))
      assert.isFalse(loaded.isDefault)
      assert.strictEqual(loaded.manifest.bottles["box"]?.backend, "smolmachines")
    }))

  it.effect("uses the embedded default when none is found, following the host's credential", () =>
    Effect.gen(function*() {
      const empty = fs.mkdtempSync(path.join(os.tmpdir(), "bb-empty-"))
      const oauth = yield* loadManifest({ cwd: empty, env: {} })
      assert.isTrue(oauth.isDefault)
      assert.strictEqual(oauth.file, DEFAULT_MANIFEST_NAME)
      const route = oauth.manifest.bottles["default"]?.egress?.routes[0]
      assert.strictEqual(route?.host, "api.anthropic.com")
      assert.strictEqual(route?.auth?.token_env, "CLAUDE_CODE_OAUTH_TOKEN")
      assert.deepStrictEqual(route?.roles, ["claude_code_oauth"])
      const apiKey = yield* loadManifest({ cwd: empty, env: { ANTHROPIC_API_KEY: "x" } })
      const r2 = apiKey.manifest.bottles["default"]?.egress?.routes[0]
      assert.strictEqual(r2?.auth?.token_env, "ANTHROPIC_API_KEY")
      assert.strictEqual(r2?.auth?.header, "x-api-key")
    }))

  it.effect("token env-var names and paths are not mistaken for literal secrets", () =>
    Effect.gen(function*() {
      const loaded = yield* parseManifest(
        `agents:\n  a: { bottle: b, env: { API_TOKEN_FILE: /run/secrets/api-token-file-path } }\nbottles:\n  b:\n    env: { GITHUB_TOKEN_NAME: E2E_UPSTREAM_TOKEN_VALUE }\n    egress:\n      routes:\n        - host: api.example.com\n          auth: { token_env: E2E_UPSTREAM_TOKEN_2 }\n`,
        "inline.yaml",
        os.tmpdir()
      )
      assert.strictEqual(loaded.manifest.bottles["b"]?.egress?.routes[0]?.auth?.token_env, "E2E_UPSTREAM_TOKEN_2")
    }))

  it.effect("--manifest pointing nowhere is one clear error naming the file", () =>
    Effect.gen(function*() {
      const err = yield* Effect.flip(loadManifest({ cwd: os.tmpdir(), manifestPath: "/nonexistent/bottle.yaml", env: {} }))
      assert.include(err.message, "/nonexistent/bottle.yaml: cannot read the manifest")
    }))
})
