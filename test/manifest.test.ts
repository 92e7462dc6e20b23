import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Layer } from "effect"
import { make } from "../src/layers/StateStore.ts"
import { loadManifest, parseManifest } from "../src/programs/loadManifest.ts"
import { prepare } from "../src/programs/prepare.ts"
import { DEFAULT_MANIFEST_NAME } from "../src/schema/defaultManifest.ts"
import { findSecret, isFlagValue, isSecretReference, looksLikeLiteralSecret, namesSecret, secretPatterns } from "../src/schema/SecretPatterns.ts"
import { StateStore } from "../src/services/StateStore.ts"
import { badManifests, goodManifests } from "./fixtures/manifests/corpus.ts"

const examplesDir = path.join(import.meta.dirname, "../examples")

/** What `bottle plan <agent>` does before showing anything: load, then prepare. */
const planFor = (file: string, agent: string) =>
  Effect.gen(function*() {
    const loaded = yield* loadManifest({ cwd: os.tmpdir(), manifestPath: file, env: {} })
    return yield* prepare({ loaded, agent, cwd: fs.mkdtempSync(path.join(os.tmpdir(), "bb-manifest-cwd-")), env: {} })
  }).pipe(Effect.provide(Layer.succeed(StateStore, make(fs.mkdtempSync(path.join(os.tmpdir(), "bb-manifest-state-"))))))

describe("manifest: bad corpus", () => {
  const corpus = badManifests()
  it("has a corpus", () => assert.isAtLeast(corpus.length, 30))
  for (const c of corpus) {
    it.effect(c.name, () =>
      Effect.gen(function*() {
        const err = yield* Effect.flip(planFor(c.file, c.agent))
        assert.strictEqual(err._tag, "ManifestError")
        const lines = err.message.split("\n")
        assert.strictEqual(lines.length, 1, `one clear message, got:\n${err.message}`)
        const m = lines[0]!.match(/^(.*?):(\d+)(?::\d+)?: (.*)$/)
        assert.isNotNull(m, lines[0])
        assert.strictEqual(m![1], c.expect.file, "names the file")
        assert.strictEqual(Number(m![2]), c.expect.line, `line in: ${lines[0]}`)
        if (c.expect.path) assert.isTrue(m![3]!.startsWith(`${c.expect.path}: `), `key path ${c.expect.path} in: ${lines[0]}`)
        assert.include(m![3]!, c.expect.message)
        assert.notInclude(m![3]!, "parseAllDocuments", "no parser advice")
      }))
  }
})

describe("manifest: what must still load", () => {
  const examples = fs.readdirSync(examplesDir).filter((f) => f.endsWith(".yaml"))
  it("has examples", () => assert.isAtLeast(examples.length, 3))
  for (const f of examples) {
    it.effect(`examples/${f} loads and plans every agent`, () =>
      Effect.gen(function*() {
        const file = path.join(examplesDir, f)
        const loaded = yield* loadManifest({ cwd: os.tmpdir(), manifestPath: file, env: {} })
        for (const agent of Object.keys(loaded.manifest.agents)) {
          const plan = yield* planFor(file, agent)
          assert.strictEqual(plan.agent, agent)
        }
      }))
  }

  const good = goodManifests()
  it("has a good corpus", () => assert.isAtLeast(good.length, 5))
  for (const g of good) {
    it.effect(`good/${g.name} loads and plans every agent`, () =>
      Effect.gen(function*() {
        const loaded = yield* loadManifest({ cwd: os.tmpdir(), manifestPath: g.file, env: {} })
        assert.isAtLeast(Object.keys(loaded.manifest.agents).length, 1)
        for (const agent of Object.keys(loaded.manifest.agents)) {
          const plan = yield* planFor(g.file, agent)
          assert.strictEqual(plan.agent, agent)
        }
      }))
  }

  it.effect("references under secret-named keys, and keys that only mention a secret, are not literal secrets", () =>
    Effect.gen(function*() {
      const loaded = yield* parseManifest(
        [
          "# Tokens: token_env names the host variable; see https://example.com/docs#token",
          "agents:",
          "  a:",
          "    bottle: b",
          "    env:",
          "      DB_PASSWORD: ${DB_PASSWORD}",
          "      PGPASSWORD: $PGPASSWORD",
          "      API_KEY: MY_API_KEY",
          "      CLIENT_SECRET: \"\"",
          "      SSH_PRIVATE_KEY: ~/.ssh/id_ed25519",
          "      NPM_TOKEN: /run/secrets/npm",
          "      DB_PASSWORD_FILE: ./secrets/db",
          "      GIT_CREDENTIAL_HELPER: store",
          "      TOKEN_TYPE: bearer",
          "      SECRET_BACKEND: vault",
          "      CLAUDE_MAX_OUTPUT_TOKENS: \"4096\"",
          "bottles:",
          "  b:",
          "    git:",
          "      upstreams:",
          "        - { name: origin, url: \"git@github.com:acme/app.git\", identity_file: ~/.ssh/id }",
          "    egress:",
          "      routes:",
          "        - host: api.anthropic.com",
          "          auth: { header: x-api-key, token_env: ANTHROPIC_API_KEY }",
          "        - host: api.github.com",
          "          auth: { scheme: token, token_env: GITHUB_TOKEN }",
          ""
        ].join("\n"),
        "inline.yaml",
        os.tmpdir()
      )
      assert.strictEqual(loaded.manifest.agents["a"]?.env?.["GIT_CREDENTIAL_HELPER"], "store")
      assert.strictEqual(loaded.manifest.bottles["b"]?.git?.upstreams[0]?.identity_file, "~/.ssh/id")
    }))

  it("the secret-key rules, directly", () => {
    for (const k of ["DB_PASSWORD", "PGPASSWORD", "password", "GITHUB_TOKEN", "apiKey", "SERVICE_API_KEY", "AWS_SECRET_ACCESS_KEY", "client_secret", "GCP_CREDENTIALS", "SSH_PRIVATE_KEY"]) {
      assert.isTrue(namesSecret(k), k)
    }
    for (const k of ["token_env", "TOKEN_TYPE", "GIT_CREDENTIAL_HELPER", "API_TOKEN_FILE", "identity_file", "MAX_TOKENS", "PWD", "deploy_key"]) {
      assert.isFalse(namesSecret(k), k)
    }
    for (const v of ["", "  ", "DB_PASSWORD", "$DB_PASSWORD", "${DB_PASSWORD}", "/run/secrets/db", "~/.pgpass", "./db.txt", "../db.txt"]) {
      assert.isTrue(isSecretReference(v), JSON.stringify(v))
    }
    for (const v of ["hunter2", "hunter2hunter2hunter2", "Password1", "${DB_PASSWORD", "~root", "db_password"]) {
      assert.isFalse(isSecretReference(v), JSON.stringify(v))
      assert.isTrue(looksLikeLiteralSecret("DB_PASSWORD", v), JSON.stringify(v))
    }
    assert.isFalse(looksLikeLiteralSecret("token_env", "hunter2"), "an _env key holds a name; the Schema checks its shape")
    assert.isFalse(looksLikeLiteralSecret("GITHUB_TOKEN_NAME", "hunter2hunter2hunter2"), "a key that only mentions a secret keeps the entropy rule")
    assert.isTrue(looksLikeLiteralSecret("GITHUB_TOKEN_NAME", "q8Z!r2LmX9vT4pWk7Yd3"))
  })

  it("flags under a secret-named key are not secrets; plain passwords still are", () => {
    for (const v of ["1", "0", "4096", "-1", "true", "FALSE", "Yes", "no", "on", "OFF", " true "]) {
      assert.isTrue(isFlagValue(v), v)
      assert.isFalse(looksLikeLiteralSecret("HF_HUB_DISABLE_IMPLICIT_TOKEN", v), v)
    }
    for (const v of ["12345", "1.5", "yess", "enabled", "postgres", "hunter2", "0x1f"]) assert.isFalse(isFlagValue(v), v)
    assert.isTrue(looksLikeLiteralSecret("POSTGRES_PASSWORD", "postgres"))
    assert.isTrue(looksLikeLiteralSecret("DB_PASSWORD", "hunter2"))
    assert.isTrue(looksLikeLiteralSecret("PIN_SECRET", "12345"), "five digits is no longer a flag")
  })

  it("an all-capitals value is an env-var name only with an underscore or when short", () => {
    for (const v of ["GITHUB_TOKEN", "MY_API_KEY", "HFTOKEN", "ABCDEF012345678"]) assert.isTrue(isSecretReference(v), v)
    for (const v of ["ABCDEF0123456789ABCDEF0123456789ABCD", "ABCDEFGHIJKLMNOP"]) {
      assert.isFalse(isSecretReference(v), v)
      assert.isTrue(looksLikeLiteralSecret("SECRET_KEY", v), v)
    }
    assert.isTrue(looksLikeLiteralSecret("GITHUB_TOKEN_NAME", "ABCDEF0123456789ABCDEF0123456789ABCD"), "hex key material under a key that mentions a secret")
    assert.isFalse(looksLikeLiteralSecret("GITHUB_TOKEN_NAME", "E2E_UPSTREAM_TOKEN_VALUE"))
  })

  it("credentials in a URL are a secret in the manifest, but not for egress DLP", () => {
    const hit = [
      "https://deploy:Sup3rS3cretPassw0rd@pypi.example.com/simple",
      "postgres://app:postgres@db:5432/app",
      "PIP_INDEX_URL=https://:tok3n@pypi.example.com",
      "redis://default:p@ss:word@cache.internal",
      "# old: git+https://me:hunter2@git.example.com/app.git"
    ]
    for (const v of hit) {
      assert.strictEqual(findSecret(v)?.name, "password in a URL", v)
      assert.isUndefined(secretPatterns.find((p) => p.regex.test(v)), `DLP keeps its own list: ${v}`)
    }
    const miss = [
      "https://pypi.example.com/simple",
      "https://user@example.com/repo.git",
      "ssh://git@git.example.com:2222/acme/app.git",
      "git@github.com:acme/app.git",
      "https://${PIP_USER}:${PIP_PASSWORD}@pypi.example.com/simple",
      "https://user:$PASSWORD@pypi.example.com",
      "https://user:<password>@pypi.example.com",
      "https://user:***@pypi.example.com",
      "https://user:@pypi.example.com",
      "https://registry.example.com:8443/@scope/pkg",
      "http://[::1]:8080/path",
      "see https://docs.example.com/a:b@c"
    ]
    for (const v of miss) assert.isUndefined(findSecret(v), v)
  })
})

describe("manifest: YAML problems in our words", () => {
  const problem = (yaml: string) =>
    Effect.gen(function*() {
      const err = yield* Effect.flip(parseManifest(yaml, "m.yaml", os.tmpdir()))
      assert.lengthOf(err.problems, 1, err.message)
      return err.problems[0]!
    })

  it.effect("a duplicate key is reported with its key path and the line of the second one", () =>
    Effect.gen(function*() {
      const p = yield* problem("agents:\n  a: { bottle: b }\nbottles:\n  b:\n    env:\n      X: one\n      X: two\n")
      assert.deepStrictEqual([p.line, p.path, p.message], [7, "bottles.b.env.X", 'duplicate key "X"'])
    }))

  it.effect("a second document is named, with its line, and no parser advice", () =>
    Effect.gen(function*() {
      const p = yield* problem("agents: {}\nbottles: {}\n---\nagents: {}\n")
      assert.strictEqual(p.line, 3)
      assert.strictEqual(p.message, "a manifest is one YAML document; found a second document at line 3")
    }))

  it.effect("empty, blank and comment-only manifests are one problem at line 1", () =>
    Effect.gen(function*() {
      for (const yaml of ["", "\n\n", "# nothing yet\n", "---\n", "~\n"]) {
        const p = yield* problem(yaml)
        assert.deepStrictEqual([p.line, p.path, p.message], [1, "", "empty manifest: expected a mapping with the keys agents and bottles"], JSON.stringify(yaml))
      }
    }))

  it.effect("a secret in a comment is found even when the YAML is broken or empty", () =>
    Effect.gen(function*() {
      const token = "ghp_aB3dE5fG7hI9jK1lM3nO5pQ7rS9tU1vW3xY5"
      for (const yaml of [`# ${token}\n`, `agents:\n  - oops: [\n# ${token}\n`]) {
        const err = yield* Effect.flip(parseManifest(yaml, "m.yaml", os.tmpdir()))
        assert.include(err.message, "GitHub token", yaml)
        assert.notInclude(err.message, token, "the secret itself is never echoed")
      }
    }))

  it.effect("a secret value and a secret comment on other lines are each reported once", () =>
    Effect.gen(function*() {
      const err = yield* Effect.flip(parseManifest(
        "agents:\n  a:\n    bottle: b\n    prompt: |\n      -----BEGIN RSA PRIVATE KEY-----\n      abc\n# AKIAIOSFODNN7EXAMPLE\nbottles: { b: {} }\n",
        "m.yaml",
        os.tmpdir()
      ))
      assert.deepStrictEqual(err.problems.map((p) => [p.line, p.path]), [[4, "agents.a.prompt"], [7, ""]])
    }))
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
