/**
 * The mounted workspace (`workspace.mount_cwd`): the user's cwd bind-mounted read-write into
 * the agent, with every path under it that a host tool later *executes* on its own, or that
 * changes bot-bottle's policy, made impossible for the agent to create, change or replace.
 *
 * Guarantee (top level of the cwd): each guarded name below is, inside the agent, a read-only
 * bind mount — of the host's own file or directory when it exists, else of an empty directory
 * we create on the host for the time the bottle runs (a placeholder). A mount point cannot be
 * renamed, removed or replaced (EBUSY), and nothing can be created or written inside a
 * read-only mount (EROFS), whatever the agent's user or capabilities in the container. So
 * `git init`, `mv .git .git2 && git init`, a `.git` file with `gitdir:`, a new `bottle.yaml`,
 * `.envrc` or `.vscode/tasks.json` all fail, and the host tree is left as it was.
 *
 * Placeholders are empty directories: harmless to the host while they exist (git skips an
 * empty `.git` and walks up; a directory named `bottle.yaml` is not a manifest; a directory
 * named `HEAD` stops git from taking the cwd for a bare repository). Each one is recorded in the
 * bottle's state (workspace.json) before it is made and removed at teardown with rmdir, which
 * only removes it while it is still empty: a placeholder the host user filled in meanwhile is
 * left alone.
 *
 * Nested, guarded the same way: each submodule's `<path>/.git` (gitlinks in the index) and
 * every `.git` already below the top (bounded walk), the git dir a `.git` file or `commondir`
 * names inside the cwd, and the top-level entry holding a `core.hooksPath` inside it. Every
 * directory between the top and a nested guarded path is bound onto itself read-write, so it
 * is a mount point too: it cannot be renamed away with the read-only mount inside it (a
 * directory *holding* a mount point can be renamed), while what is in it stays editable.
 *
 * Refused: a guarded name that is a symbolic link, or one below a symbolic link; a cwd on a case-insensitive filesystem
 * (`.GIT` would reach the real `.git` past its mount). Not defended (see README, "Mounted
 * workspace"): *new* nested paths (`sub/.git` outside a submodule — host git at the top runs
 * its config once `git add -A` records it —, `sub/.envrc`, a bare repository planted in a
 * subdirectory); nested `.git` entries past the walk's limit; files that are the project's own
 * code or data (package.json scripts, Makefile, `.env`, `.tool-versions`, CLAUDE.md ...), which
 * run when you run the project's tooling yourself.
 */
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { Effect, Option, Schema, type Scope } from "effect"
import type { BottlePlan } from "../schema/BottlePlan.ts"
import { StateStore } from "../services/StateStore.ts"
import { canonicalPath } from "./canonicalPath.ts"
import { MANIFEST_FILE } from "./loadManifest.ts"

/** Top-level names guarded whether or not they exist (a placeholder stands in when missing), and why. */
export const GUARDED: ReadonlyArray<{ readonly name: string; readonly why: string }> = [
  { name: ".git", why: "git metadata: config (core.fsmonitor, aliases, filters), hooks, submodule configs run at your next git command" },
  { name: MANIFEST_FILE, why: "bot-bottle's manifest: routes and the tokens they get at the next `bottle start` here" },
  { name: ".envrc", why: "direnv runs it when your shell enters the directory" },
  { name: ".vscode", why: "VS Code: tasks.json runOn folderOpen, settings that name programs (git.path, terminal env)" },
  { name: ".idea", why: "JetBrains IDEs: run configurations and startup tasks" },
  { name: ".devcontainer", why: "Dev Containers: initializeCommand runs on the host" },
  { name: ".devcontainer.json", why: "Dev Containers: initializeCommand runs on the host" },
  { name: ".zed", why: "Zed: settings name language-server binaries it starts on open" },
  { name: ".claude", why: "Claude Code on the host: project settings hooks run commands" },
  { name: ".mcp.json", why: "Claude Code and other MCP clients on the host: servers are commands" },
  { name: ".nvim.lua", why: "Neovim exrc" },
  { name: ".nvimrc", why: "Neovim/Vim exrc" },
  { name: ".exrc", why: "Vim exrc" },
  { name: ".helix", why: "Helix: languages.toml names language servers it starts, with no trust prompt" },
  { name: ".gemini", why: "Gemini CLI: project settings name MCP servers (commands)" },
  { name: ".codex", why: "Codex CLI: project config names MCP servers (commands)" },
  { name: ".cursor", why: "Cursor: mcp.json servers are commands" },
  { name: ".kiro", why: "Kiro: settings/mcp.json servers are commands, hooks" },
  { name: ".roo", why: "Roo Code: mcp.json servers are commands" },
  { name: ".opencode", why: "opencode: project config, plugins and MCP servers (commands)" },
  { name: "opencode.json", why: "opencode: MCP servers are commands" }
]

/**
 * Hook managers' configuration: what their installed git hook runs. Guarded when the file
 * exists, and also (placeholder) when a hook in the repository's hooks dir names the manager.
 */
export const HOOK_MANAGERS: ReadonlyArray<{ readonly signature: RegExp; readonly names: ReadonlyArray<string> }> = [
  { signature: /generated by pre-commit/i, names: [".pre-commit-config.yaml", ".pre-commit-config.yml"] },
  {
    signature: /lefthook/,
    names: ["lefthook.yml", ".lefthook.yml", "lefthook.yaml", ".lefthook.yaml", "lefthook.toml", ".lefthook.toml", "lefthook.json", ".lefthook.json", "lefthook-local.yml", ".lefthook-local.yml", "lefthook-local.yaml", ".lefthook-local.yaml"]
  }
]

/** Guarded when they exist (tools that trust a file by its path: an edit would run unasked). */
export const GUARDED_IF_PRESENT: ReadonlyArray<string> = [".husky", "mise.toml", ".mise.toml", "mise.local.toml", ".mise.local.toml", ".mise", ".dir-locals.el"]

export class WorkspaceError extends Schema.TaggedError<WorkspaceError>()("WorkspaceError", {
  path: Schema.String,
  message: Schema.String
}) {}

type Kind = "file" | "dir" | "empty-dir" | "symlink" | "other"

/** What launch needs to know about the cwd, read from the host once (see `inspectWorkspace`). */
export interface WorkspaceFacts {
  /** realpath of the cwd: what is mounted. */
  readonly root: string
  /** Kind of each candidate name at the top of root (absent: missing). */
  readonly kinds: Readonly<Record<string, Kind>>
  /** Does `.git` (dir with HEAD, or gitfile) make git stop at root, so it never asks whether root is a bare repository? */
  readonly gitRepoAtRoot: boolean
  /** Paths (relative to root) git reads as metadata of the cwd's repository, found through a `.git` file or `commondir`. */
  readonly gitMetadataInside: ReadonlyArray<string>
  /** core.hooksPath of the repository the cwd belongs to, when it resolves inside root (relative). */
  readonly hooksPathInside?: string | undefined
  /** Text of the installed hooks (to see which hook manager they call). */
  readonly hooksText: string
  /**
   * Nested `.git` entries to guard (relative): each gitlink's `<path>/.git` (git status at the
   * top looks into it) and every `.git` that exists below the top (a bounded walk). `missing`
   * lists, outermost first, the directories to create for one that does not exist.
   */
  readonly nestedGit: ReadonlyArray<{ readonly rel: string; readonly kind: Kind | undefined; readonly missing: ReadonlyArray<string> }>
  /** Kind of each directory between root and a nested guarded path (relative; absent: missing). */
  readonly ancestorKinds: Readonly<Record<string, Kind>>
}

/** At most this many directories are looked at for nested `.git` entries (node_modules trees are large). */
export const NESTED_WALK_LIMIT = 20_000

export interface WorkspaceBind {
  readonly source: string
  readonly target: string
  readonly readonly: boolean
}

export interface WorkspaceLayout {
  /** In mount order: the cwd first, then the read-only binds over it. */
  readonly mounts: ReadonlyArray<WorkspaceBind>
  /** Host paths of empty directories to create before the container, and rmdir after it. */
  readonly placeholders: ReadonlyArray<string>
}

const kindOf = (p: string): Kind | undefined => {
  try {
    const st = fs.lstatSync(p)
    if (st.isDirectory()) {
      const d = fs.opendirSync(p)
      try {
        return d.readSync() === null ? "empty-dir" : "dir"
      } finally {
        d.closeSync()
      }
    }
    return st.isSymbolicLink() ? "symlink" : st.isFile() ? "file" : "other"
  } catch {
    return undefined
  }
}

const inside = (root: string, p: string) => p === root || p.startsWith(root.endsWith(path.sep) ? root : root + path.sep)

/** The value of core.hooksPath in a git config file (includes are not followed), if set. */
export const hooksPathOf = (configText: string): string | undefined => {
  let section = ""
  let value: string | undefined
  for (const raw of configText.split(/\r?\n/)) {
    const line = raw.trim()
    const header = /^\[\s*([A-Za-z0-9.-]+)(?:\s+"[^"]*")?\s*\](.*)$/.exec(line)
    if (header) {
      section = header[1]!.toLowerCase()
      const rest = header[2]!.trim()
      if (rest === "" || rest.startsWith("#") || rest.startsWith(";")) continue
      // `[core] hooksPath = x` on one line
      const kv = /^hookspath\s*=\s*(.*)$/i.exec(rest)
      if (section === "core" && kv) value = unquote(kv[1]!)
      continue
    }
    const kv = /^hookspath\s*=\s*(.*)$/i.exec(line)
    if (section === "core" && kv) value = unquote(kv[1]!)
  }
  return value
}

const unquote = (v: string): string => {
  let out = ""
  let quoted = false
  for (let i = 0; i < v.length; i++) {
    const c = v[i]!
    if (c === "\\" && i + 1 < v.length) {
      const n = v[++i]!
      out += n === "n" ? "\n" : n === "t" ? "\t" : n
    } else if (c === "\"") quoted = !quoted
    else if (!quoted && (c === "#" || c === ";")) break
    else out += c
  }
  return out.trim()
}

const readIf = (p: string): string | undefined => {
  try {
    return fs.readFileSync(p, "utf8")
  } catch {
    return undefined
  }
}

/** The git dir a `.git` file points at (`gitdir: <path>`, relative to the file's directory). */
const gitfileTarget = (gitfile: string): string | undefined => {
  const m = /^gitdir:\s*(.*?)\s*$/m.exec(readIf(gitfile) ?? "")
  return m ? path.resolve(path.dirname(gitfile), m[1]!) : undefined
}

/** The common dir a git dir shares with its main repository (`commondir`), else the git dir itself. */
const commonDirOf = (gitDir: string): string => {
  const c = readIf(path.join(gitDir, "commondir"))?.trim()
  return c ? path.resolve(gitDir, c) : gitDir
}

/** The git dir of the repository `dir` belongs to (walking up, as git does), and its worktree top. */
const enclosingRepo = (dir: string): { readonly gitDir: string; readonly top: string } | undefined => {
  for (let d = dir; ; d = path.dirname(d)) {
    const dotGit = path.join(d, ".git")
    const k = kindOf(dotGit)
    if (k === "dir" && kindOf(path.join(dotGit, "HEAD")) !== undefined) return { gitDir: dotGit, top: d }
    if (k === "file") {
      const t = gitfileTarget(dotGit)
      if (t) return { gitDir: t, top: d }
    }
    if (path.dirname(d) === d) return undefined
  }
}

/**
 * Paths of the gitlinks (submodules, mode 160000) in a git index file: `git status` run at the
 * top looks into each one that has a `.git`, and runs what that repository's config says.
 * Index versions 2-4, SHA-1 or SHA-256 ids; anything unreadable yields what was read so far.
 */
export const gitlinksOf = (index: Buffer, hashSize: 20 | 32 = 20): ReadonlyArray<string> => {
  const out: Array<string> = []
  if (index.length < 12 || index.toString("latin1", 0, 4) !== "DIRC") return out
  const version = index.readUInt32BE(4)
  const count = index.readUInt32BE(8)
  if (version < 2 || version > 4) return out
  let at = 12
  let previous = ""
  for (let i = 0; i < count; i++) {
    const start = at
    if (at + 40 + hashSize + 2 > index.length) return out
    const mode = index.readUInt32BE(at + 24)
    const flags = index.readUInt16BE(at + 40 + hashSize)
    at += 40 + hashSize + 2
    if (version >= 3 && flags & 0x4000) at += 2
    let name: string
    if (version === 4) {
      // The path is the previous one less N trailing bytes, plus a NUL-terminated suffix.
      let strip = 0
      let b = index[at++]!
      strip = b & 0x7f
      while (b & 0x80) {
        b = index[at++]!
        strip = ((strip + 1) << 7) | (b & 0x7f)
      }
      const end = index.indexOf(0, at)
      if (end < 0) return out
      const prev = Buffer.from(previous, "utf8")
      name = Buffer.concat([prev.subarray(0, prev.length - strip), index.subarray(at, end)]).toString("utf8")
      at = end + 1
    } else {
      const end = index.indexOf(0, at)
      if (end < 0) return out
      name = index.toString("utf8", at, end)
      // Entries are padded with 1-8 NULs to a multiple of 8 bytes.
      at = start + Math.floor((end - start + 8) / 8) * 8
    }
    previous = name
    if ((mode & 0o170000) === 0o160000) out.push(name)
  }
  return out
}

/** The directories strictly between the root and `rel` (relative, outermost first): `a/b/c` → `a`, `a/b`. */
const ancestorsOf = (rel: string): Array<string> => {
  const parts = rel.split(path.sep)
  return parts.slice(1).map((_, i) => parts.slice(0, i + 1).join(path.sep))
}

/** Reads what `workspaceLayout` needs from the host. Reads only; follows no link it guards. */
export const inspectWorkspace = (cwd: string): WorkspaceFacts => {
  const root = fs.realpathSync(cwd)
  const names = [...GUARDED.map((g) => g.name), "HEAD", ...HOOK_MANAGERS.flatMap((h) => h.names), ...GUARDED_IF_PRESENT]
  const kinds: Record<string, Kind> = {}
  for (const n of names) {
    const k = kindOf(path.join(root, n))
    if (k) kinds[n] = k
  }
  const dotGit = path.join(root, ".git")
  const gitRepoAtRoot = kinds[".git"] === "file" || (kinds[".git"] === "dir" && kindOf(path.join(dotGit, "HEAD")) !== undefined)

  const metadata = new Set<string>()
  const addInside = (p: string | undefined) => {
    if (!p) return
    const real = canonicalPath(p)
    if (inside(root, real) && real !== root && !inside(dotGit, real) && kindOf(real) !== undefined) metadata.add(path.relative(root, real))
  }
  const repo = enclosingRepo(root)
  if (kinds[".git"] === "file" && repo) {
    addInside(repo.gitDir)
    addInside(commonDirOf(repo.gitDir))
  }

  let hooksPathInside: string | undefined
  let hooksText = ""
  if (repo) {
    const common = commonDirOf(repo.gitDir)
    const configs = [path.join(common, "config"), path.join(repo.gitDir, "config.worktree")]
    let hp: string | undefined
    for (const c of configs) hp = hooksPathOf(readIf(c) ?? "") ?? hp
    const hooksDir = hp === undefined
      ? path.join(common, "hooks")
      : hp.startsWith("~/") ? path.join(os.homedir(), hp.slice(2)) : path.resolve(repo.top, hp)
    if (hp !== undefined) {
      const real = canonicalPath(hooksDir)
      if (inside(root, real) && real !== root) hooksPathInside = path.relative(root, real)
    }
    try {
      // git runs hooks by their name; the samples git init writes are not hooks.
      for (const f of fs.readdirSync(hooksDir).filter((f) => !f.endsWith(".sample")).slice(0, 200)) {
        const text = readIf(path.join(hooksDir, f))
        if (text !== undefined) hooksText += text.slice(0, 64 * 1024) + "\n"
      }
    } catch {
      // no hooks dir: no hook manager installed
    }
  }
  const nested = new Map<string, WorkspaceFacts["nestedGit"][number]>()
  const addNested = (abs: string) => {
    if (!inside(root, abs) || path.dirname(abs) === root) return
    const rel = path.relative(root, abs)
    if (nested.has(rel)) return
    const missing: Array<string> = []
    for (let d = abs; d !== root && kindOf(d) === undefined; d = path.dirname(d)) missing.unshift(path.relative(root, d))
    nested.set(rel, { rel, kind: kindOf(abs), missing })
  }
  if (repo) {
    const index = (() => {
      try {
        return fs.readFileSync(path.join(repo.gitDir, "index"))
      } catch {
        return undefined
      }
    })()
    const sha256 = /objectformat\s*=\s*sha256/i.test(readIf(path.join(commonDirOf(repo.gitDir), "config")) ?? "")
    if (index) for (const link of gitlinksOf(index, sha256 ? 32 : 20)) addNested(path.join(repo.top, link, ".git"))
  }
  // Existing nested .git entries (clones inside the tree, checked-out submodules), breadth first.
  const queue = [root]
  for (let next = 0; next < queue.length && next < NESTED_WALK_LIMIT; next++) {
    const dir = queue[next]!
    let entries: Array<fs.Dirent>
    try {
      entries = fs.readdirSync(dir, { withFileTypes: true })
    } catch {
      continue
    }
    for (const e of entries) {
      if (e.name === ".git") {
        if (dir !== root) addNested(path.join(dir, e.name))
      } else if (e.isDirectory()) queue.push(path.join(dir, e.name))
    }
  }
  const ancestorKinds: Record<string, Kind> = {}
  for (const rel of [...nested.keys(), ...metadata]) {
    for (const a of ancestorsOf(rel)) {
      const k = kindOf(path.join(root, a))
      if (k) ancestorKinds[a] = k
    }
  }
  return { root, kinds, gitRepoAtRoot, gitMetadataInside: [...metadata].sort(), hooksPathInside, hooksText, nestedGit: [...nested.values()], ancestorKinds }
}

const symlinkRefusal = (source: string) =>
  new WorkspaceError({ path: source, message: `${source} is a symbolic link: mount_cwd cannot lay a read-only mount over a link (or below one) without following it, so the agent could replace it; replace the link with what it points to, or use copy_cwd` })

/**
 * Pure: the mounts for a mounted workspace, and the placeholders to create for guarded names
 * that do not exist. Fails (a message naming the path) when a guarded name is a symbolic link:
 * a bind mount follows the link, so the link itself could still be replaced.
 */
export const workspaceLayout = (facts: WorkspaceFacts, workdir: string): { readonly layout: WorkspaceLayout } | { readonly refusal: WorkspaceError } => {
  const guarded = new Map<string, "always" | "if-present">()
  for (const g of GUARDED) guarded.set(g.name, "always")
  // With no repository at the root, git asks whether the root itself is a bare repository
  // (HEAD, objects/, refs/, config right there): HEAD guarded (a placeholder directory, which
  // git cannot read as a HEAD) makes the answer no.
  if (!facts.gitRepoAtRoot) guarded.set("HEAD", "always")
  for (const h of HOOK_MANAGERS) {
    const installed = h.signature.test(facts.hooksText)
    for (const n of h.names) guarded.set(n, installed ? "always" : "if-present")
  }
  for (const n of GUARDED_IF_PRESENT) if (!guarded.has(n)) guarded.set(n, "if-present")
  // A hooks dir inside the cwd is guarded from its top-level entry (husky: `.husky/_` calls `.husky/<hook>`).
  if (facts.hooksPathInside !== undefined) guarded.set(facts.hooksPathInside.split(path.sep)[0]!, "always")

  const mounts: Array<WorkspaceBind> = [{ source: facts.root, target: workdir, readonly: false }]
  const placeholders: Array<string> = []
  for (const [name, when] of guarded) {
    const kind = facts.kinds[name]
    const source = path.join(facts.root, name)
    if (kind === "symlink") return { refusal: symlinkRefusal(source) }
    if (kind === undefined && when === "if-present") continue
    // An empty directory (another bottle's placeholder on this directory, or one a crash left)
    // is shared as one: recorded, and removed by the last bottle that records it.
    if (kind === undefined || (kind === "empty-dir" && when === "always")) placeholders.push(source)
    mounts.push({ source, target: path.posix.join(workdir, name), readonly: true })
  }
  // Nested guarded paths (below a top-level name not guarded already); one inside another is
  // covered by the outer one's read-only mount.
  const nested = new Map<string, WorkspaceFacts["nestedGit"][number] | undefined>()
  for (const n of facts.nestedGit) nested.set(n.rel, n)
  for (const rel of facts.gitMetadataInside) if (!nested.has(rel)) nested.set(rel, undefined)
  for (const rel of nested.keys()) if (guarded.has(rel.split(path.sep)[0]!)) nested.delete(rel)
  const rels = [...nested.keys()]
  const coveredBy = (rel: string) => rels.some((o) => o !== rel && rel.startsWith(o + path.sep))
  const selfBound = new Set<string>()
  const target = (rel: string) => path.posix.join(workdir, ...rel.split(path.sep))
  for (const [rel, n] of nested) {
    if (coveredBy(rel)) continue
    const source = path.join(facts.root, rel)
    // Linux refuses to rename or remove a mount point (EBUSY) but not a directory holding one:
    // `mv libs libs2` would carry the read-only `libs/mod/.git` away and leave `libs/mod/.git`
    // free to plant. So each directory above it is bound onto itself read-write (its contents
    // stay editable), before the read-only mount, which pins it in place.
    for (const a of ancestorsOf(rel)) {
      const abs = path.join(facts.root, a)
      if (facts.ancestorKinds[a] === "symlink") return { refusal: symlinkRefusal(abs) }
      if (selfBound.has(a)) continue
      selfBound.add(a)
      mounts.push({ source: abs, target: target(a), readonly: false })
    }
    if (n?.kind === "symlink") return { refusal: symlinkRefusal(source) }
    if (n !== undefined && (n.kind === undefined || n.kind === "empty-dir")) placeholders.push(...n.missing.map((m) => path.join(facts.root, m)), ...(n.kind === "empty-dir" ? [source] : []))
    mounts.push({ source, target: target(rel), readonly: true })
  }
  return { layout: { mounts, placeholders: [...new Set(placeholders)] } }
}

/**
 * Whether names under `root` are looked up case-insensitively (macOS and Windows defaults): a
 * mount guards one spelling only. `.git` always exists once the placeholders are made.
 */
export const caseInsensitiveAt = (root: string): boolean => {
  try {
    const a = fs.lstatSync(path.join(root, ".git"))
    const b = fs.lstatSync(path.join(root, ".GIT"))
    return a.ino === b.ino && a.dev === b.dev
  } catch {
    return false
  }
}

/** Recorded in the bottle's state dir: the placeholders this bottle made (removed at teardown). */
export const WorkspaceRecord = Schema.Struct({ placeholders: Schema.Array(Schema.String) })
export const WORKSPACE_RECORD = "workspace.json"

/**
 * Removes placeholders with rmdir: gone only when still an empty directory (ours, untouched).
 * Returns the ones left (filled in by the host user meanwhile, or still mounted).
 */
export const removePlaceholders = (placeholders: ReadonlyArray<string>): ReadonlyArray<string> => {
  const left: Array<string> = []
  // Innermost first (deepest path first), so a placeholder made for a missing parent is empty
  // again by the time its turn comes.
  const depth = (p: string) => p.split(path.sep).length
  for (const p of [...placeholders].reverse().sort((a, b) => depth(b) - depth(a))) {
    try {
      fs.rmdirSync(p)
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "ENOENT") left.push(p)
    }
  }
  return left
}

/** Teardown (`bottle stop`): removes the placeholders the bottle recorded; logs, never fails. */
export const releaseWorkspace = Effect.fn("releaseWorkspace")(function*(slug: string) {
  const state = yield* StateStore
  const record = yield* state.readJsonIfAny(slug, WORKSPACE_RECORD, WorkspaceRecord)
  if (Option.isNone(record) || record.value.placeholders.length === 0) return
  // Another bottle of this state root mounting the same directory still relies on them.
  const others = new Set<string>()
  for (const other of yield* state.list) {
    if (other === slug) continue
    const r = yield* state.readJsonIfAny(other, WORKSPACE_RECORD, WorkspaceRecord).pipe(Effect.orElseSucceed(() => Option.none()))
    if (Option.isSome(r)) for (const p of r.value.placeholders) others.add(p)
  }
  const left = removePlaceholders(record.value.placeholders.filter((p) => !others.has(p)))
  if (left.length > 0) yield* Effect.logWarning(`mount_cwd placeholders left in place (no longer empty, or still mounted): ${left.join(", ")}`)
  yield* state.writeJson(slug, WORKSPACE_RECORD, { placeholders: [] })
}, Effect.catchCause((c) => Effect.logError("could not remove the mount_cwd placeholders", c)))

/**
 * Launch: the mounts for the agent container. Scoped: the placeholders are recorded, then
 * made, and removed again when the scope closes, after the container that mounts them is gone.
 * `stillHeld` says whether that container is still there (its removal failed): the
 * placeholders then stay (a removed one would lift the guard on that name), for `bottle stop`.
 */
export const mountWorkspace = (
  plan: BottlePlan,
  stillHeld: Effect.Effect<boolean> = Effect.succeed(false)
): Effect.Effect<ReadonlyArray<WorkspaceBind>, WorkspaceError, StateStore | Scope.Scope> =>
  Effect.gen(function*() {
    const state = yield* StateStore
    const facts = yield* Effect.try({
      try: () => inspectWorkspace(plan.cwd),
      catch: (e) => new WorkspaceError({ path: plan.cwd, message: (e as Error).message })
    })
    const result = workspaceLayout(facts, plan.workdir)
    if ("refusal" in result) return yield* result.refusal
    const { mounts, placeholders } = result.layout
    const record = (ps: ReadonlyArray<string>) =>
      state.writeJson(plan.slug, WORKSPACE_RECORD, { placeholders: ps }).pipe(
        Effect.mapError((e) => new WorkspaceError({ path: plan.cwd, message: e.message }))
      )
    yield* record(placeholders)
    yield* Effect.acquireRelease(
      Effect.try({
        try: () => {
          const made: Array<string> = []
          for (const p of placeholders) {
            try {
              fs.mkdirSync(p, { mode: 0o755 })
              made.push(p)
            } catch (e) {
              // There already (shared, or made by someone else in between): mounted all the same.
              if ((e as NodeJS.ErrnoException).code === "EEXIST") continue
              removePlaceholders(made)
              throw new WorkspaceError({ path: p, message: (e as Error).message })
            }
          }
          if (caseInsensitiveAt(facts.root)) {
            removePlaceholders(made)
            throw new WorkspaceError({
              path: facts.root,
              message: `${facts.root} is on a case-insensitive filesystem: the agent could reach .git, bottle.yaml and the other guarded names by another spelling (.GIT) past their read-only mounts; use copy_cwd here, or a case-sensitive volume`
            })
          }
        },
        catch: (e) => e instanceof WorkspaceError ? e : new WorkspaceError({ path: plan.cwd, message: String(e) })
      }),
      () =>
        stillHeld.pipe(Effect.flatMap((held) =>
          held
            ? Effect.logWarning(`the agent container of ${plan.slug} is still there: its mount_cwd placeholders stay until \`bottle stop ${plan.slug}\``)
            : releaseWorkspace(plan.slug)
        ))
    )
    return mounts
  })

/**
 * Why `cwd` must not be mounted read-write into the agent, if it must not: the filesystem root,
 * a directory holding the home directory, or one holding (or inside) bot-bottle's state
 * (routes, CA keys). Compared by realpath, so a symlinked cwd, home or state root changes nothing.
 */
export const mountRefusal = (cwd: string, home: string, stateRoot: string): string | undefined => {
  const dir = canonicalPath(cwd)
  const realHome = canonicalPath(home)
  const state = canonicalPath(stateRoot)
  if (dir === path.parse(dir).root) return "the filesystem root"
  if (inside(dir, realHome)) return dir === realHome ? "your home directory" : `a directory holding your home directory (${realHome})`
  if (inside(dir, state) || inside(state, dir)) return `a directory holding bot-bottle's state (${stateRoot})`
  return undefined
}
