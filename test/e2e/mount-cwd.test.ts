/**
 * mount_cwd against a hostile agent, from inside real bottles: as the agent's user, with its
 * own tools (sh, git), it tries to plant what the host later runs — a new `.git` with an
 * fsmonitor and a hook, a swapped `.git`, a `.git` file pointing elsewhere, a bare repository
 * at the root, the directory above a guarded nested `.git` or git dir renamed away and a new one
 * planted, a `bottle.yaml` beside a manifest that lives in a parent directory, `.envrc`,
 * `.vscode/tasks.json`, `.idea/`. Each must fail; the host tree must be as it was (once the
 * bottle is stopped, no placeholder is left either); host git run in the directory afterwards
 * must run nothing the agent wrote. Positive control: ordinary files are edited in place and
 * the edits are on the host.
 *
 * The host tree is owned by uid 1000 (the agent's user), as it is for a typical single-user
 * Linux host: file permissions alone would not stop any of these attacks.
 */
import { spawnSync } from "node:child_process"
import * as crypto from "node:crypto"
import * as fs from "node:fs"
import * as path from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { baseEnv, cli, ensureBuilt, labelled, tempDir } from "./support.ts"

const manifest = `
agents:
  dev:
    bottle: mounted
bottles:
  mounted:
    workspace: { mount_cwd: true, workdir: /workspace }
`

let stateDir = ""
let env: NodeJS.ProcessEnv = {}
const started: Array<{ slug: string; cwd: string }> = []

/** Every entry under `dir` (lstat): kind, mode and content, by relative path. */
const snapshot = (dir: string): Record<string, string> => {
  const out: Record<string, string> = {}
  const walk = (d: string) => {
    for (const name of fs.readdirSync(d)) {
      const p = path.join(d, name)
      const st = fs.lstatSync(p)
      const rel = path.relative(dir, p)
      if (st.isSymbolicLink()) out[rel] = `link ${fs.readlinkSync(p)}`
      else if (st.isDirectory()) {
        out[rel] = `dir ${(st.mode & 0o7777).toString(8)}`
        walk(p)
      } else out[rel] = `file ${(st.mode & 0o7777).toString(8)} ${crypto.createHash("sha256").update(fs.readFileSync(p)).digest("hex")}`
    }
  }
  walk(dir)
  return out
}

const chownTree = (dir: string) => {
  const r = spawnSync("chown", ["-R", "1000:1000", dir], { encoding: "utf8" })
  expect(r.status, r.stderr).toBe(0)
}

/** git on the host, as the user would run it there (the files are theirs: no ownership check). */
const hostGit = (cwd: string, ...args: Array<string>) =>
  spawnSync("git", ["-c", "safe.directory=*", ...args], { cwd, encoding: "utf8", env: { PATH: process.env["PATH"] ?? "", HOME: stateDir } })

const start = (cwd: string) => {
  const slug = `mnt-${crypto.randomBytes(3).toString("hex")}`
  const r = cli(["start", "dev", "--yes", "--detach", "--name", slug], { cwd, env })
  started.push({ slug, cwd })
  expect(r.code, r.stderr).toBe(0)
  return slug
}

const stop = (slug: string, cwd: string) => {
  const r = cli(["stop", slug, "--purge"], { cwd, env })
  expect(r.code, r.stderr).toBe(0)
  expect(labelled(slug)).toEqual([])
}

/** Runs a script in the agent as its user; each attack prints `<name>: ok|refused`. */
const inAgent = (slug: string, cwd: string, script: string) => {
  const r = cli(["exec", slug, "--", "sh", "-c", script], { cwd, env })
  return { ...r, outcomes: Object.fromEntries([...r.stdout.matchAll(/^([\w.-]+): (ok|refused)$/gm)].map((m) => [m[1]!, m[2]!])) }
}

/** `attempt NAME CMD`: runs CMD in a subshell, prints NAME: ok (exit 0) or NAME: refused. */
const PRELUDE = `cd /workspace
attempt() { n="$1"; shift; if ( "$@" ) >/dev/null 2>&1; then echo "$n: ok"; else echo "$n: refused"; fi; }
`

beforeAll(() => {
  ensureBuilt()
  stateDir = tempDir("bb-mount-state-")
  env = baseEnv({ BOTTLE_STATE_DIR: stateDir })
}, 600_000)

afterAll(() => {
  for (const { slug, cwd } of started) if (labelled(slug).length > 0) cli(["stop", slug, "--purge"], { cwd, env })
})

describe("mount_cwd: the agent cannot plant what the host runs", () => {
  it("no .git, manifest in a parent dir: git init, a bare repo at the root, .git file, bottle.yaml, .envrc, .vscode, .idea all fail; edits to ordinary files reach the host", async () => {
    const parent = tempDir("bb-mount-parent-")
    fs.writeFileSync(path.join(parent, "bottle.yaml"), manifest)
    const cwd = path.join(parent, "proj")
    fs.mkdirSync(path.join(cwd, "src"), { recursive: true })
    fs.writeFileSync(path.join(cwd, "src", "main.txt"), "host version\n")
    chownTree(cwd)
    const mark = path.join(tempDir("bb-mount-mark-"), "ran")
    const before = snapshot(cwd)

    const slug = start(cwd)
    const run = inAgent(slug, cwd, `${PRELUDE}
attempt git-init sh -c 'git init -q . && git config core.fsmonitor "touch ${mark}; false;" && printf "#!/bin/sh\\ntouch ${mark}\\n" > .git/hooks/pre-commit && chmod +x .git/hooks/pre-commit'
attempt gitfile sh -c 'mkdir -p evil && git init -q --bare evil && git -C evil config core.fsmonitor "touch ${mark}; false;" && git -C evil config core.worktree /workspace; rm -rf .git 2>/dev/null; printf "gitdir: evil\\n" > .git'
attempt bare-root sh -c 'git init -q --bare /tmp/b && cp -r /tmp/b/objects /tmp/b/refs . && printf "[core]\\n\\tbare = false\\n\\tworktree = .\\n\\tfsmonitor = touch ${mark}; false;\\n" > config && printf "ref: refs/heads/main\\n" > HEAD'
attempt manifest sh -c 'printf "agents: {}\\n" > bottle.yaml'
attempt manifest-rm sh -c 'rmdir bottle.yaml || rm -rf bottle.yaml; printf "agents: {}\\n" > bottle.yaml'
attempt envrc sh -c 'echo "touch ${mark}" > .envrc'
attempt vscode sh -c 'mkdir -p .vscode && echo "{}" > .vscode/tasks.json'
attempt vscode-mv sh -c 'mv .vscode .vscode-old && mkdir .vscode && echo "{}" > .vscode/tasks.json'
attempt idea sh -c 'mkdir -p .idea && echo x > .idea/workspace.xml'
attempt edit sh -c 'echo "agent version" > src/main.txt && echo new > src/new.txt'
`)
    expect(run.code, run.stderr).toBe(0)
    // Positive control first: the agent does write the workspace, and the host sees it.
    expect(run.outcomes["edit"]).toBe("ok")
    expect(fs.readFileSync(path.join(cwd, "src", "main.txt"), "utf8")).toBe("agent version\n")
    expect(fs.readFileSync(path.join(cwd, "src", "new.txt"), "utf8")).toBe("new\n")
    for (const a of ["git-init", "gitfile", "bare-root", "manifest", "manifest-rm", "envrc", "vscode", "vscode-mv", "idea"]) expect(run.outcomes[a], `${a} in:\n${run.stdout}`).toBe("refused")

    // While it runs: host git in the directory finds no repository the agent made, runs nothing.
    const gitDir = hostGit(cwd, "rev-parse", "--absolute-git-dir")
    expect(gitDir.stdout.trim().startsWith(cwd)).toBe(false)
    hostGit(cwd, "status")
    // And the next `bottle start` here still reads the parent's manifest.
    const plan = cli(["plan", "dev", "--json"], { cwd, env })
    expect(plan.code, plan.stderr).toBe(0)
    expect(JSON.parse(plan.stdout).manifestFile).toBe(path.join(parent, "bottle.yaml"))

    stop(slug, cwd)
    expect(fs.existsSync(mark), "host git ran something the agent wrote").toBe(false)
    hostGit(cwd, "status")
    expect(fs.existsSync(mark), "host git ran something the agent wrote").toBe(false)
    // Exactly the control's edits (and the inert leftovers of the bare-repo attempt); no placeholder left.
    const after = snapshot(cwd)
    const inert = (rel: string) => /^(src|evil|objects|refs|config)(\/|$)/.test(rel)
    expect(Object.fromEntries(Object.entries(after).filter(([rel]) => !inert(rel)))).toEqual(Object.fromEntries(Object.entries(before).filter(([rel]) => !inert(rel))))
    expect(after["HEAD"]).toBeUndefined()
  }, 600_000)

  it("an existing .git: swapping it, rewriting it, replacing it with a gitdir file, planting a submodule's or a nested clone's .git fails, and host git runs nothing", async () => {
    const cwd = tempDir("bb-mount-repo-")
    fs.writeFileSync(path.join(cwd, "bottle.yaml"), manifest)
    fs.writeFileSync(path.join(cwd, "README.md"), "hello\n")
    // A submodule that is not checked out (a gitlink: `git status` at the top looks into
    // libs/mod/.git once it exists) and a repository cloned inside the tree (vendor/dep).
    const sub = tempDir("bb-mount-sub-")
    const init = spawnSync("sh", ["-c", `git init -q ${sub} && git -C ${sub} -c user.name=t -c user.email=t@t commit -q --allow-empty -m sub && git init -q . && git add -A && git update-index --add --cacheinfo 160000,$(git -C ${sub} rev-parse HEAD),libs/mod && git -c user.name=t -c user.email=t@t commit -q -m init && mkdir vendor && git init -q vendor/dep`], { cwd, encoding: "utf8" })
    expect(init.status, init.stderr).toBe(0)
    chownTree(cwd)
    const mark = path.join(tempDir("bb-mount-mark-"), "ran")
    const before = snapshot(cwd)

    const slug = start(cwd)
    const run = inAgent(slug, cwd, `${PRELUDE}
attempt mv-git sh -c 'mv .git .git2'
attempt swap-git sh -c 'cp -r .git /tmp/g && rm -rf .git; git init -q . && git config core.fsmonitor "touch ${mark}; false;"'
attempt config sh -c 'git config core.fsmonitor "touch ${mark}; false;"'
attempt hook sh -c 'printf "#!/bin/sh\\ntouch ${mark}\\n" > .git/hooks/post-checkout'
attempt module sh -c 'mkdir -p .git/modules/x && echo "[core]" > .git/modules/x/config'
attempt head sh -c 'echo "ref: refs/heads/evil" > .git/HEAD'
attempt gitfile sh -c 'rm -rf .git; printf "gitdir: /workspace/evil\\n" > .git'
attempt submodule sh -c 'mkdir -p libs/mod && git init -q libs/mod && git -C libs/mod config core.fsmonitor "touch ${mark}; false;"'
attempt nested-config sh -c 'git -C vendor/dep config core.fsmonitor "touch ${mark}; false;"'
attempt nested-swap sh -c 'mv vendor/dep/.git vendor/dep/old-git || rm -rf vendor/dep/.git; git init -q vendor/dep && git -C vendor/dep config core.fsmonitor "touch ${mark}; false;"'
attempt mv-parent sh -c 'mv libs libs2 && mkdir -p libs/mod/.git/objects libs/mod/.git/refs/heads && echo "ref: refs/heads/master" > libs/mod/.git/HEAD && printf "[core]\\n\\trepositoryformatversion=0\\n\\tfsmonitor=\\"touch ${mark}; false #\\"\\n" > libs/mod/.git/config'
attempt mv-module sh -c 'mv libs/mod libs/mod2 && mkdir -p libs/mod && git init -q libs/mod && git -C libs/mod config core.fsmonitor "touch ${mark}; false;"'
attempt nested-mv-parent sh -c 'mv vendor vendor2 && mkdir vendor && git init -q vendor/dep && git -C vendor/dep config core.fsmonitor "touch ${mark}; false;"'
attempt manifest sh -c 'echo "# agent" >> bottle.yaml'
attempt manifest-mv sh -c 'mv bottle.yaml b.yaml'
attempt edit sh -c 'echo "agent" >> README.md'
`)
    expect(run.code, run.stderr).toBe(0)
    expect(run.outcomes["edit"]).toBe("ok")
    for (const a of ["mv-git", "swap-git", "config", "hook", "module", "head", "gitfile", "submodule", "nested-config", "nested-swap", "mv-parent", "mv-module", "nested-mv-parent", "manifest", "manifest-mv"]) expect(run.outcomes[a], `${a} in:\n${run.stdout}`).toBe("refused")
    // The agent can still read the history.
    const log = inAgent(slug, cwd, "cd /workspace && git -c safe.directory='*' log --format=%s")
    expect(log.stdout.trim()).toBe("init")

    stop(slug, cwd)
    // Before host git touches anything (`git status` refreshes the index).
    const after = snapshot(cwd)
    hostGit(cwd, "status")
    hostGit(path.join(cwd, "vendor", "dep"), "status")
    expect(fs.existsSync(mark), "host git ran something the agent wrote").toBe(false)
    expect(fs.readFileSync(path.join(cwd, "README.md"), "utf8")).toBe("hello\nagent\n")
    delete after["README.md"]
    delete before["README.md"]
    expect(after).toEqual(before)
  }, 600_000)

  it("a .git file pointing inside the cwd (gitdir:, commondir): the metadata it names is read-only too", async () => {
    const cwd = tempDir("bb-mount-gitfile-")
    fs.writeFileSync(path.join(cwd, "bottle.yaml"), manifest)
    const init = spawnSync("sh", ["-c", "mkdir meta && git init -q --separate-git-dir=meta/repo . && git add -A && git -c user.name=t -c user.email=t@t commit -q -m init"], { cwd, encoding: "utf8" })
    expect(init.status, init.stderr).toBe(0)
    // Relative, as a checkout moved between machines (or a submodule) has it: git in the agent finds it.
    fs.writeFileSync(path.join(cwd, ".git"), "gitdir: meta/repo\n")
    chownTree(cwd)
    const mark = path.join(tempDir("bb-mount-mark-"), "ran")
    const before = snapshot(cwd)

    const slug = start(cwd)
    const run = inAgent(slug, cwd, `${PRELUDE}
attempt config sh -c 'git config core.fsmonitor "touch ${mark}; false;"'
attempt meta-config sh -c 'printf "[core]\\n\\tfsmonitor = touch ${mark}; false;\\n" >> meta/repo/config'
attempt meta-mv sh -c 'mv meta/repo meta/old && mkdir meta/repo'
attempt meta-mv-parent sh -c 'mv meta meta2 && mkdir -p meta/repo/objects meta/repo/refs/heads && echo "ref: refs/heads/master" > meta/repo/HEAD && printf "[core]\\n\\trepositoryformatversion=0\\n\\tfsmonitor=\\"touch ${mark}; false #\\"\\n" > meta/repo/config'
attempt gitfile sh -c 'printf "gitdir: /tmp/x\\n" > .git'
attempt edit sh -c 'echo new > notes.txt'
`)
    expect(run.code, run.stderr).toBe(0)
    expect(run.outcomes["edit"]).toBe("ok")
    for (const a of ["config", "meta-config", "meta-mv", "meta-mv-parent", "gitfile"]) expect(run.outcomes[a], `${a} in:\n${run.stdout}`).toBe("refused")

    stop(slug, cwd)
    const after = snapshot(cwd)
    hostGit(cwd, "status")
    expect(fs.existsSync(mark), "host git ran something the agent wrote").toBe(false)
    delete after["notes.txt"]
    expect(after).toEqual(before)
  }, 600_000)
})
