/**
 * The mounted workspace's layout (what is laid read-only over the cwd, which placeholders are
 * made), read from real directories; and the refusal to mount home, / or bot-bottle's state,
 * compared by realpath (symlinked cwd, home or state root). The attacks themselves run from
 * inside a real bottle in test/e2e/mount-cwd.test.ts.
 */
import { spawnSync } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Layer } from "effect"
import { make } from "../src/layers/StateStore.ts"
import { findManifest, parseManifest } from "../src/programs/loadManifest.ts"
import { prepare } from "../src/programs/prepare.ts"
import { caseInsensitiveAt, gitlinksOf, GUARDED, hooksPathOf, inspectWorkspace, mountRefusal, releaseWorkspace, removePlaceholders, WORKSPACE_RECORD, workspaceLayout } from "../src/programs/workspace.ts"
import { StateStore } from "../src/services/StateStore.ts"

const tmp = (prefix: string) => fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), prefix)))
const git = (cwd: string, ...args: Array<string>) => {
  const r = spawnSync("git", args, { cwd, encoding: "utf8" })
  assert.strictEqual(r.status, 0, r.stderr)
}

const layoutOf = (cwd: string) => {
  const r = workspaceLayout(inspectWorkspace(cwd), "/workspace")
  if ("refusal" in r) throw new Error(r.refusal.message)
  return r.layout
}
const readonlyTargets = (cwd: string) => layoutOf(cwd).mounts.filter((m) => m.readonly).map((m) => m.target)

describe("workspace layout", () => {
  it("an empty cwd: the cwd read-write, every guarded name (and HEAD) read-only over a placeholder", () => {
    const cwd = tmp("bb-ws-")
    const { mounts, placeholders } = layoutOf(cwd)
    assert.deepStrictEqual(mounts[0], { source: cwd, target: "/workspace", readonly: false })
    const expected = [...GUARDED.map((g) => g.name), "HEAD"]
    assert.sameMembers(readonlyTargets(cwd), expected.map((n) => `/workspace/${n}`))
    assert.sameMembers([...placeholders], expected.map((n) => path.join(cwd, n)))
    for (const m of mounts.slice(1)) assert.strictEqual(m.source, path.join(cwd, path.basename(m.target)))
    // Editors and AI tools that run what their project config names, with no trust prompt.
    for (const n of [".helix", ".gemini", ".codex", ".cursor", ".kiro", ".roo", ".opencode", "opencode.json", ".mcp.json", ".claude"]) assert.include(readonlyTargets(cwd), `/workspace/${n}`)
  })

  it("mise.local.toml and the other trusted-by-path files are guarded when they exist, and only then", () => {
    const cwd = tmp("bb-ws-")
    assert.notInclude(readonlyTargets(cwd), "/workspace/mise.local.toml")
    fs.writeFileSync(path.join(cwd, "mise.local.toml"), "[tasks]\n")
    fs.writeFileSync(path.join(cwd, ".dir-locals.el"), "()\n")
    assert.includeMembers(readonlyTargets(cwd), ["/workspace/mise.local.toml", "/workspace/.dir-locals.el"])
    assert.notInclude(layoutOf(cwd).placeholders, path.join(cwd, "mise.local.toml"))
  })

  it("an existing repository: .git mounted whole from the host, no HEAD guard, no placeholder for what exists", () => {
    const cwd = tmp("bb-ws-")
    git(cwd, "init", "-q", ".")
    fs.writeFileSync(path.join(cwd, "bottle.yaml"), "agents: {}\n")
    fs.mkdirSync(path.join(cwd, ".vscode"))
    fs.writeFileSync(path.join(cwd, ".vscode", "settings.json"), "{}")
    fs.mkdirSync(path.join(cwd, ".idea"))
    const { placeholders } = layoutOf(cwd)
    // An empty one is shared as a placeholder (another bottle's, or a crash's leftover).
    assert.include(placeholders, path.join(cwd, ".idea"))
    assert.include(readonlyTargets(cwd), "/workspace/.git")
    assert.notInclude(readonlyTargets(cwd), "/workspace/HEAD")
    for (const n of [".git", "bottle.yaml", ".vscode"]) assert.notInclude(placeholders, path.join(cwd, n))
    assert.include(placeholders, path.join(cwd, ".envrc"))
  })

  it("a .git file: the git dir and common dir it names inside the cwd are read-only too", () => {
    const cwd = tmp("bb-ws-")
    fs.mkdirSync(path.join(cwd, "meta"))
    git(cwd, "init", "-q", "--separate-git-dir=meta/repo", ".")
    assert.include(readonlyTargets(cwd), "/workspace/meta/repo")
    // A linked worktree inside the cwd: .git → <main>/.git/worktrees/x, commondir → ../..
    const main = tmp("bb-ws-main-")
    git(main, "init", "-q", ".")
    git(main, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "--allow-empty", "-m", "x")
    const wt = path.join(main, "sub", "wt")
    git(main, "worktree", "add", "-q", wt)
    const inWt = readonlyTargets(wt)
    assert.include(inWt, "/workspace/.git")
    assert.isFalse(inWt.some((t) => t.includes("worktrees")), "the main repository's metadata is outside the cwd: not mounted at all")
    // The worktree mounted from the main repo's own dir: its .git is guarded whole.
    assert.include(readonlyTargets(main), "/workspace/.git")
  })

  it("core.hooksPath inside the cwd guards its top-level entry (husky's .husky/_), placeholder when missing", () => {
    const cwd = tmp("bb-ws-")
    git(cwd, "init", "-q", ".")
    git(cwd, "config", "core.hooksPath", ".husky/_")
    fs.mkdirSync(path.join(cwd, ".husky", "_"), { recursive: true })
    assert.include(readonlyTargets(cwd), "/workspace/.husky")
    git(cwd, "config", "core.hooksPath", "tools/hooks")
    const { placeholders } = layoutOf(cwd)
    assert.include(placeholders, path.join(cwd, "tools"))
  })

  it("a hook manager's config is guarded when its hook is installed, even before the file exists", () => {
    const cwd = tmp("bb-ws-")
    git(cwd, "init", "-q", ".")
    assert.notInclude(readonlyTargets(cwd), "/workspace/.pre-commit-config.yaml")
    fs.writeFileSync(path.join(cwd, ".git", "hooks", "pre-commit"), "#!/usr/bin/env bash\n# File generated by pre-commit: https://pre-commit.com\n")
    assert.include(layoutOf(cwd).placeholders, path.join(cwd, ".pre-commit-config.yaml"))
  })

  it("gitlinksOf finds the submodules of an index, versions 2, 3 (extended flags) and 4 (compressed paths)", () => {
    const sub = tmp("bb-ws-sub-")
    git(sub, "init", "-q", ".")
    git(sub, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "--allow-empty", "-m", "x")
    const head = spawnSync("git", ["rev-parse", "HEAD"], { cwd: sub, encoding: "utf8" }).stdout.trim()
    const cwd = tmp("bb-ws-")
    git(cwd, "init", "-q", ".")
    fs.mkdirSync(path.join(cwd, "deep", "er"), { recursive: true })
    for (const f of ["a.txt", "deep/er/b.txt", "deep/er/c.txt", "zz.txt"]) fs.writeFileSync(path.join(cwd, f), "x\n")
    git(cwd, "add", "-A")
    git(cwd, "update-index", "--add", "--cacheinfo", `160000,${head},deep/er/mod`)
    git(cwd, "update-index", "--add", "--cacheinfo", `160000,${head},lone`)
    for (const v of ["2", "3", "4"]) {
      if (v === "3") {
        // An intent-to-add entry carries extended flags (2 more bytes).
        fs.writeFileSync(path.join(cwd, "new.txt"), "x\n")
        git(cwd, "add", "-N", "new.txt")
      }
      git(cwd, "update-index", "--index-version", v)
      assert.deepStrictEqual(gitlinksOf(fs.readFileSync(path.join(cwd, ".git", "index"))), ["deep/er/mod", "lone"], `index v${v}`)
    }
    assert.deepStrictEqual(gitlinksOf(Buffer.from("not an index")), [])
  })

  it("nested .git: a gitlink's .git is guarded (placeholders for missing dirs, outermost first), existing nested ones are bound read-only", () => {
    const sub = tmp("bb-ws-sub-")
    git(sub, "init", "-q", ".")
    git(sub, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "--allow-empty", "-m", "x")
    const head = spawnSync("git", ["rev-parse", "HEAD"], { cwd: sub, encoding: "utf8" }).stdout.trim()
    const cwd = tmp("bb-ws-")
    git(cwd, "init", "-q", ".")
    git(cwd, "update-index", "--add", "--cacheinfo", `160000,${head},libs/mod`)
    fs.mkdirSync(path.join(cwd, "vendor", "dep", ".git"), { recursive: true })
    fs.writeFileSync(path.join(cwd, "vendor", "dep", ".git", "HEAD"), "ref: refs/heads/main\n")
    const { mounts, placeholders } = layoutOf(cwd)
    const ro = mounts.filter((m) => m.readonly).map((m) => m.target)
    assert.include(ro, "/workspace/libs/mod/.git")
    assert.include(ro, "/workspace/vendor/dep/.git")
    assert.deepStrictEqual(placeholders.filter((p) => p.includes("libs")), [path.join(cwd, "libs"), path.join(cwd, "libs", "mod"), path.join(cwd, "libs", "mod", ".git")])
    assert.notInclude(placeholders, path.join(cwd, "vendor", "dep", ".git"))
  })

  it("every directory above a nested guarded path is bound onto itself read-write before its read-only mount (so it cannot be renamed away)", () => {
    const sub = tmp("bb-ws-sub-")
    git(sub, "init", "-q", ".")
    git(sub, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "--allow-empty", "-m", "x")
    const head = spawnSync("git", ["rev-parse", "HEAD"], { cwd: sub, encoding: "utf8" }).stdout.trim()
    const cwd = tmp("bb-ws-")
    git(cwd, "init", "-q", ".")
    // Two submodules sharing a parent (not checked out), and a clone two levels down.
    git(cwd, "update-index", "--add", "--cacheinfo", `160000,${head},libs/a`)
    git(cwd, "update-index", "--add", "--cacheinfo", `160000,${head},libs/b`)
    fs.mkdirSync(path.join(cwd, "vendor", "dep"), { recursive: true })
    git(path.join(cwd, "vendor", "dep"), "init", "-q", ".")
    const { mounts, placeholders } = layoutOf(cwd)
    const at = (target: string, readonly: boolean) => {
      const i = mounts.findIndex((m) => m.target === target && m.readonly === readonly)
      assert.isAtLeast(i, 0, `${target} ${readonly ? "ro" : "rw"} in ${JSON.stringify(mounts)}`)
      assert.strictEqual(mounts[i]!.source, path.join(cwd, ...target.split("/").slice(2)))
      return i
    }
    assert.isBelow(at("/workspace/libs", false), at("/workspace/libs/a", false))
    assert.isBelow(at("/workspace/libs/a", false), at("/workspace/libs/a/.git", true))
    assert.isBelow(at("/workspace/libs", false), at("/workspace/libs/b", false))
    assert.isBelow(at("/workspace/libs/b", false), at("/workspace/libs/b/.git", true))
    assert.isBelow(at("/workspace/vendor", false), at("/workspace/vendor/dep", false))
    assert.isBelow(at("/workspace/vendor/dep", false), at("/workspace/vendor/dep/.git", true))
    // Each bound once (Docker refuses a duplicate mount point); the cwd itself is not rebound.
    const targets = mounts.map((m) => m.target)
    assert.strictEqual(new Set(targets).size, targets.length)
    // The missing ones are placeholders, each after its parent (removed innermost first).
    assert.deepStrictEqual(placeholders.filter((p) => p.includes("libs")), ["libs", "libs/a", "libs/a/.git", "libs/b", "libs/b/.git"].map((p) => path.join(cwd, p)))
  })

  it("a .git file's git dir below the top: the directories above it are pinned too, nothing inside it is rebound writable", () => {
    const cwd = tmp("bb-ws-")
    fs.mkdirSync(path.join(cwd, "meta"))
    git(cwd, "init", "-q", "--separate-git-dir=meta/repo.git", ".")
    const { mounts } = layoutOf(cwd)
    const i = mounts.findIndex((m) => m.target === "/workspace/meta" && !m.readonly)
    const j = mounts.findIndex((m) => m.target === "/workspace/meta/repo.git" && m.readonly)
    assert.isTrue(i > 0 && j > i, JSON.stringify(mounts))
    assert.isFalse(mounts.some((m) => !m.readonly && m.target.startsWith("/workspace/meta/repo.git")))
  })

  it("refuses a nested guarded path below a symbolic link, naming the link", () => {
    const sub = tmp("bb-ws-sub-")
    git(sub, "init", "-q", ".")
    git(sub, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "--allow-empty", "-m", "x")
    const head = spawnSync("git", ["rev-parse", "HEAD"], { cwd: sub, encoding: "utf8" }).stdout.trim()
    const cwd = tmp("bb-ws-")
    git(cwd, "init", "-q", ".")
    git(cwd, "update-index", "--add", "--cacheinfo", `160000,${head},lnk/mod`)
    fs.mkdirSync(path.join(cwd, "real", "mod"), { recursive: true })
    fs.symlinkSync("real", path.join(cwd, "lnk"))
    const r = workspaceLayout(inspectWorkspace(cwd), "/workspace")
    assert.isTrue("refusal" in r && r.refusal.path === path.join(cwd, "lnk") && r.refusal.message.includes("symbolic link"), JSON.stringify(r))
  })

  it("refuses a guarded name that is a symbolic link (a bind mount would follow it), naming it", () => {
    const cwd = tmp("bb-ws-")
    fs.writeFileSync(path.join(cwd, "real.yaml"), "agents: {}\n")
    fs.symlinkSync("real.yaml", path.join(cwd, "bottle.yaml"))
    const r = workspaceLayout(inspectWorkspace(cwd), "/workspace")
    assert.isTrue("refusal" in r && r.refusal.message.includes(path.join(cwd, "bottle.yaml")) && r.refusal.message.includes("symbolic link"))
  })

  it("a symlinked cwd is mounted by its realpath", () => {
    const real = tmp("bb-ws-")
    const link = path.join(tmp("bb-ws-link-"), "proj")
    fs.symlinkSync(real, link)
    assert.strictEqual(layoutOf(link).mounts[0]!.source, real)
    assert.include(layoutOf(link).placeholders, path.join(real, ".git"))
  })

  it("removePlaceholders removes only empty directories and says which it left", () => {
    const cwd = tmp("bb-ws-")
    const empty = path.join(cwd, ".git")
    const filled = path.join(cwd, ".vscode")
    fs.mkdirSync(empty)
    fs.mkdirSync(filled)
    fs.writeFileSync(path.join(filled, "settings.json"), "{}")
    assert.deepStrictEqual(removePlaceholders([empty, filled, path.join(cwd, "gone")]), [filled])
    assert.isFalse(fs.existsSync(empty))
    assert.isTrue(fs.existsSync(path.join(filled, "settings.json")))
    // Nested placeholders go innermost first, in whatever order they were recorded.
    const nested = ["libs", "libs/a", "libs/a/.git"].map((p) => path.join(cwd, p))
    fs.mkdirSync(nested[2]!, { recursive: true })
    assert.deepStrictEqual(removePlaceholders([nested[1]!, nested[0]!, nested[2]!]), [])
    assert.isFalse(fs.existsSync(nested[0]!))
  })

  it.effect("stop removes a placeholder only once no other bottle of the state root records it", () =>
    Effect.gen(function*() {
      const cwd = tmp("bb-ws-")
      const root = tmp("bb-ws-state-")
      const shared = path.join(cwd, ".git")
      const own = path.join(cwd, ".envrc")
      fs.mkdirSync(shared)
      fs.mkdirSync(own)
      const state = make(root)
      for (const [slug, ps] of [["a", [shared, own]], ["b", [shared]]] as const) {
        fs.mkdirSync(state.bottleDir(slug), { recursive: true })
        yield* state.writeJson(slug, WORKSPACE_RECORD, { placeholders: ps })
      }
      const release = (slug: string) => releaseWorkspace(slug).pipe(Effect.provide(Layer.succeed(StateStore, state)))
      yield* release("a")
      assert.isTrue(fs.existsSync(shared), "b still mounts it")
      assert.isFalse(fs.existsSync(own))
      yield* release("b")
      assert.isFalse(fs.existsSync(shared))
    }))

  it("caseInsensitiveAt: .GIT and .git the same entry means another spelling reaches it past the mount", () => {
    const cwd = tmp("bb-ws-")
    fs.mkdirSync(path.join(cwd, ".git"))
    assert.isFalse(caseInsensitiveAt(cwd))
    // No case-folding filesystem here: two names for one inode stand in for it (a .git file, hard-linked).
    const other = tmp("bb-ws-")
    fs.writeFileSync(path.join(other, ".git"), "gitdir: x\n")
    fs.linkSync(path.join(other, ".git"), path.join(other, ".GIT"))
    assert.isTrue(caseInsensitiveAt(other))
  })

  it("hooksPathOf reads core.hooksPath (any case, quoted, with comments), nothing from other sections", () => {
    assert.strictEqual(hooksPathOf("[core]\n\thooksPath = .husky/_\n"), ".husky/_")
    assert.strictEqual(hooksPathOf("[Core]\n  HOOKSPATH = \"my hooks\" ; comment\n"), "my hooks")
    assert.strictEqual(hooksPathOf("[alias]\n\thooksPath = x\n[core]\n\tbare = false\n"), undefined)
    assert.strictEqual(hooksPathOf("[core]\n\thooksPath = a\n[core]\n\thooksPath = b\n"), "b")
  })

  it("a directory named bottle.yaml (a placeholder) is not a manifest: the search goes on upwards", () => {
    const parent = tmp("bb-ws-")
    fs.writeFileSync(path.join(parent, "bottle.yaml"), "agents: {}\n")
    const cwd = path.join(parent, "proj")
    fs.mkdirSync(path.join(cwd, "bottle.yaml"), { recursive: true })
    assert.strictEqual(findManifest(cwd), path.join(parent, "bottle.yaml"))
  })
})

describe("mount_cwd refusal, by realpath", () => {
  it("a symlink to home, to /, or to a dir holding the state is refused; the state root behind a symlink too", () => {
    const base = tmp("bb-ws-real-")
    const home = path.join(base, "home")
    const state = path.join(home, ".local", "state", "bot-bottle")
    fs.mkdirSync(state, { recursive: true })
    const links = tmp("bb-ws-links-")
    fs.symlinkSync(home, path.join(links, "h"))
    fs.symlinkSync("/", path.join(links, "root"))
    fs.symlinkSync(path.join(home, ".local"), path.join(links, "local"))
    const elsewhere = tmp("bb-ws-else-")
    assert.strictEqual(mountRefusal(path.join(links, "h"), home, elsewhere), "your home directory")
    assert.strictEqual(mountRefusal(path.join(links, "root"), home, elsewhere), "the filesystem root")
    assert.include(mountRefusal(path.join(links, "local"), path.join(base, "other-home"), state) ?? "", "bot-bottle's state")
    // The state root given through a symlink (BOTTLE_STATE_DIR=~/link/state): still inside the cwd.
    const proj = tmp("bb-ws-proj-")
    fs.mkdirSync(path.join(proj, "state"))
    fs.symlinkSync(proj, path.join(links, "p"))
    assert.include(mountRefusal(proj, home, path.join(links, "p", "state", "not-yet")) ?? "", "bot-bottle's state")
    // A cwd inside the state root, and one holding the home directory.
    assert.include(mountRefusal(state, path.join(base, "other-home"), state) ?? "", "bot-bottle's state")
    assert.include(mountRefusal(base, home, elsewhere) ?? "", "holding your home directory")
    // A plain project dir beside them is fine.
    assert.strictEqual(mountRefusal(elsewhere, home, state), undefined)
  })

  it.effect("prepare refuses a cwd that is a symlink to a dir holding the state root", () =>
    Effect.gen(function*() {
      const real = tmp("bb-ws-real-")
      const stateRoot = path.join(real, "state")
      const link = path.join(tmp("bb-ws-links-"), "proj")
      fs.symlinkSync(real, link)
      const yaml = `agents:\n  a: { bottle: b }\nbottles:\n  b:\n    workspace: { mount_cwd: true }\n`
      const err = yield* Effect.flip(Effect.gen(function*() {
        const loaded = yield* parseManifest(yaml, path.join(link, "bottle.yaml"), link)
        return yield* prepare({ loaded, agent: "a", cwd: link, env: {} })
      }).pipe(Effect.provide(Layer.succeed(StateStore, make(stateRoot)))))
      assert.include(err.message, "bot-bottle's state")
      assert.include(err.message, "workspace.mount_cwd")
    }))
})
