/** prepare: pure resolution, and the refusals that must happen before anything is shown or run. */
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Layer } from "effect"
import { make } from "../src/layers/StateStore.ts"
import { parseManifest } from "../src/programs/loadManifest.ts"
import { isPromptPath, prepare } from "../src/programs/prepare.ts"
import { StateStore } from "../src/services/StateStore.ts"

const mounted = `agents:\n  a: { bottle: b, prompt: "Be careful." }\nbottles:\n  b:\n    workspace: { mount_cwd: true }\n`

const planIn = (cwd: string, stateRoot: string, yaml = mounted) =>
  Effect.gen(function*() {
    const loaded = yield* parseManifest(yaml, path.join(cwd, "bottle.yaml"), cwd)
    return yield* prepare({ loaded, agent: "a", cwd, env: {} })
  }).pipe(Effect.provide(Layer.succeed(StateStore, make(stateRoot))))

describe("prepare", () => {
  it.effect("passes a non-empty prompt to Claude Code by file, and writes nothing", () =>
    Effect.gen(function*() {
      const cwd = fs.mkdtempSync(path.join(os.tmpdir(), "bb-prep-"))
      const root = fs.mkdtempSync(path.join(os.tmpdir(), "bb-prep-state-"))
      const plan = yield* planIn(cwd, root)
      assert.deepStrictEqual(plan.command, ["claude", "--append-system-prompt-file", "/home/node/.bottle/prompt.md"])
      assert.strictEqual(plan.mountCwd, true)
      assert.deepStrictEqual(fs.readdirSync(root), [], "prepare writes nothing")
    }))

  it.effect("refuses to mount a directory that holds bot-bottle's state", () =>
    Effect.gen(function*() {
      const cwd = fs.mkdtempSync(path.join(os.tmpdir(), "bb-prep-"))
      const err = yield* Effect.flip(planIn(cwd, path.join(cwd, ".local", "state", "bot-bottle")))
      assert.include(err.message, "refusing to mount")
      assert.include(err.message, "bot-bottle's state")
      assert.include(err.message, "workspace.mount_cwd")
    }))

  it.effect("refuses to mount the home directory or the filesystem root", () =>
    Effect.gen(function*() {
      const root = fs.mkdtempSync(path.join(os.tmpdir(), "bb-prep-state-"))
      assert.include((yield* Effect.flip(planIn(os.homedir(), root))).message, "your home directory")
      assert.include((yield* Effect.flip(planIn("/", root))).message, "the filesystem root")
    }))
})

describe("prepare: the prompt", () => {
  /** A project dir with bottle.yaml (agent `a`, the given prompt line) and the given files. */
  const project = (promptLine: string, files: Record<string, string> = {}) => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "bb-prompt-"))
    for (const [name, text] of Object.entries(files)) {
      fs.mkdirSync(path.dirname(path.join(dir, name)), { recursive: true })
      fs.writeFileSync(path.join(dir, name), text)
    }
    return { dir, yaml: `agents:\n  a:\n    bottle: b\n    prompt: ${promptLine}\nbottles:\n  b: {}\n` }
  }
  const planOf = (p: { dir: string; yaml: string }) =>
    planIn(p.dir, fs.mkdtempSync(path.join(os.tmpdir(), "bb-prep-state-")), p.yaml)

  it("is a file path only when it is one word ending in .md or holding a /", () => {
    for (const p of ["prompts/dev.md", "dev.MD", "./prompts/dev", "../shared/prompt.txt", "/etc/bottle/prompt", "~/prompts/dev.md", "  dev.md  ", "docs/agent-prompt.txt", "prompts/dev"]) {
      assert.isTrue(isPromptPath(p), p)
    }
    for (const p of ["Always read CONTRIBUTING.md", "Read ./docs/README.md first", "notes\nsee x.md", "Be careful.", "", "README", "agent-prompt.txt"]) {
      assert.isFalse(isPromptPath(p), JSON.stringify(p))
    }
  })

  it.effect("that mentions a .md file is inline markdown, not a path", () =>
    Effect.gen(function*() {
      const plan = yield* planOf(project("Always read CONTRIBUTING.md"))
      assert.strictEqual(plan.prompt, "Always read CONTRIBUTING.md")
    }))

  it.effect("read from a file loses its front matter, which is checked", () =>
    Effect.gen(function*() {
      const md = "---\nname: dev\ndescription: Writes code.\n---\nYou write code.\n"
      assert.strictEqual((yield* planOf(project("prompts/dev.md", { "prompts/dev.md": md }))).prompt, "You write code.\n")
      assert.strictEqual((yield* planOf(project("./prompts/dev", { "prompts/dev": "No front matter.\n" }))).prompt, "No front matter.\n")
      assert.strictEqual((yield* planOf(project("p.md", { "p.md": "---\n---\nEmpty front matter.\n" }))).prompt, "Empty front matter.\n")
    }))

  it.effect("with malformed front matter fails naming the prompt file, its line and the manifest key", () =>
    Effect.gen(function*() {
      const cases: Array<[string, number, string]> = [
        ["---\nname: dev\ndescription: [unclosed\n---\nBody.\n", 3, "front matter: YAML syntax error"],
        ["---\nname: dev\nname: other\n---\nBody.\n", 3, 'front matter: duplicate key "name"'],
        ["---\nname: dev\nBody without a closing line.\n", 1, "front matter opened with --- is never closed"],
        ["---\n- a list\n---\nBody.\n", 2, "front matter: expected a mapping"]
      ]
      for (const [md, line, message] of cases) {
        const p = project("prompts/dev.md", { "prompts/dev.md": md })
        const err = yield* Effect.flip(planOf(p))
        assert.strictEqual(err.message.split("\n").length, 1, err.message)
        assert.match(err.message, new RegExp(`^${path.join(p.dir, "prompts/dev.md")}:${line}(?::\\d+)?: agents\\.a\\.prompt: `), err.message)
        assert.include(err.message, message)
      }
    }))

  it.effect("holding a credential, in the body or the front matter, is refused naming the file and line", () =>
    Effect.gen(function*() {
      const token = "ghp_aB3dE5fG7hI9jK1lM3nO5pQ7rS9tU1vW3xY5"
      for (const [md, line] of [[`---\nname: dev\ntoken: ${token}\n---\nBody.\n`, 3], [`Body.\n\nUse ${token} to push.\n`, 3]] as const) {
        const p = project("prompts/dev.md", { "prompts/dev.md": md })
        const err = yield* Effect.flip(planOf(p))
        assert.include(err.message, `${path.join(p.dir, "prompts/dev.md")}:${line}: agents.a.prompt: looks like a literal secret (GitHub token)`)
        assert.notInclude(err.message, token)
      }
    }))

  it.effect("naming a missing file fails naming the file and the manifest line", () =>
    Effect.gen(function*() {
      for (const missing of ["prompts/missing.md", "docs/agent-prompt.txt"]) {
        const p = project(missing)
        const err = yield* Effect.flip(planOf(p))
        assert.include(err.message, `${path.join(p.dir, "bottle.yaml")}:4:`)
        assert.include(err.message, `prompt file ${path.join(p.dir, missing)} cannot be read`)
      }
    }))

  it.effect("one word holding a / is read from that file, whatever its extension", () =>
    Effect.gen(function*() {
      const plan = yield* planOf(project("docs/agent-prompt.txt", { "docs/agent-prompt.txt": "From the file.\n" }))
      assert.strictEqual(plan.prompt, "From the file.\n")
    }))
})

describe("prepare: skills", () => {
  const withSkill = (skill: string, files: Record<string, string> = {}) => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "bb-skill-"))
    for (const [name, text] of Object.entries(files)) {
      fs.mkdirSync(path.dirname(path.join(dir, name)), { recursive: true })
      fs.writeFileSync(path.join(dir, name), text)
    }
    return planIn(dir, fs.mkdtempSync(path.join(os.tmpdir(), "bb-prep-state-")), `agents:\n  a: { bottle: b, skills: ["${skill}"] }\nbottles:\n  b: {}\n`)
  }

  it.effect("a skill directory is copied as it is named", () =>
    Effect.gen(function*() {
      const plan = yield* withSkill("./skills/review", { "skills/review/SKILL.md": "---\nname: review\n---\nReview carefully.\n" })
      assert.deepStrictEqual(plan.skills.map((s) => s.name), ["review"])
    }))

  it.effect("a skill directory holding something that looks like a credential is refused, naming the file and line", () =>
    Effect.gen(function*() {
      const err = yield* Effect.flip(withSkill("./keys", { "keys/SKILL.md": "# notes\n", "keys/id_ed25519": "-----BEGIN OPENSSH PRIVATE KEY-----\nAAAA\n-----END OPENSSH PRIVATE KEY-----\n" }))
      assert.match(err.message, /agents\.a\.skills\[0\]: refusing to copy .*keys into the sandbox as a skill: .*id_ed25519:1 looks like a credential \(private key block\)/)
    }))

  it.effect("the home directory, or a directory holding it, is never a skill", () =>
    Effect.gen(function*() {
      assert.include((yield* Effect.flip(withSkill("~/"))).message, "your home directory or holds it")
      assert.include((yield* Effect.flip(withSkill("/"))).message, "the filesystem root")
    }))
})
