/**
 * A bottle's state across its lifecycle, on a real engine, as a user drives it: the agent's work
 * (a file and a commit in the workspace, Claude Code's history in its home) survives `stop` and
 * `resume`; `bottle pull` brings the commit home under the bottle's own namespace and nothing
 * else in the host repository changes; `bottle cp` both ways; `stop --purge` removes the
 * volumes. And the copy-on-write workspace against a hostile agent: whatever it writes,
 * deletes, renames, or writes through links, the host's cwd is left exactly as it was, and
 * nothing lands in the state dir; a hostile repository in the workspace (hooks, fsmonitor,
 * a branch named like the host's) runs nothing on the host at `pull`, and a commit whose tree
 * plants `.git` is refused (fsck, in quarantine) with the host repository unchanged; its branch
 * names (C1, bidi controls) and its git's error text reach the host's terminal escaped.
 */
import { spawnSync } from "node:child_process"
import * as crypto from "node:crypto"
import * as fs from "node:fs"
import * as path from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { bottleNames } from "../../src/programs/bottleNames.ts"
import { baseEnv, cli, docker, ensureBuilt, labelled, runningParts, tempDir } from "./support.ts"

const manifest = `
agents:
  dev:
    bottle: box
    command: [bash, --norc, --noprofile]
bottles:
  box:
    workspace: { copy_cwd: true, workdir: /workspace }
`

let stateDir = ""
let env: NodeJS.ProcessEnv = {}
const started: Array<{ slug: string; cwd: string }> = []

/** Every entry under `dir` (lstat): kind, mode, owner and content, by relative path. */
const snapshot = (dir: string): Record<string, string> => {
  const out: Record<string, string> = {}
  const walk = (d: string) => {
    for (const name of fs.readdirSync(d)) {
      const p = path.join(d, name)
      const st = fs.lstatSync(p)
      const rel = path.relative(dir, p)
      const meta = `${(st.mode & 0o7777).toString(8)} ${st.uid}:${st.gid} ${st.mtimeMs}`
      if (st.isSymbolicLink()) out[rel] = `link ${fs.readlinkSync(p)}`
      else if (st.isDirectory()) {
        out[rel] = `dir ${meta}`
        walk(p)
      } else out[rel] = `file ${meta} ${crypto.createHash("sha256").update(fs.readFileSync(p)).digest("hex")}`
    }
  }
  walk(dir)
  return out
}

const git = (cwd: string, ...args: Array<string>) => {
  const r = spawnSync("git", ["-c", "user.name=host", "-c", "user.email=host@example.com", ...args], { cwd, encoding: "utf8" })
  expect(r.status, `git ${args.join(" ")}: ${r.stderr}`).toBe(0)
  return r.stdout.trim()
}

const run = (args: ReadonlyArray<string>, cwd: string) => {
  const r = cli(args, { cwd, env })
  expect(r.code, `bottle ${args.join(" ")}: ${r.stderr}`).toBe(0)
  return r
}

/** A script run in the agent as its user, in the workspace. */
const inAgent = (slug: string, cwd: string, script: string) => run(["exec", slug, "--", "sh", "-c", script], cwd)

/** A host repository with a commit, a file the agent will edit, a link pointing out of the tree. */
const hostRepo = (outside: string) => {
  const cwd = tempDir("bb-life-cwd-")
  fs.writeFileSync(path.join(cwd, "bottle.yaml"), manifest)
  fs.mkdirSync(path.join(cwd, "src"))
  fs.writeFileSync(path.join(cwd, "src", "main.txt"), "host version\n")
  fs.writeFileSync(path.join(cwd, "README.md"), "hello\n")
  fs.symlinkSync(outside, path.join(cwd, "escape"))
  git(cwd, "init", "-q", "-b", "main")
  git(cwd, "add", "-A")
  git(cwd, "commit", "-q", "-m", "host commit")
  return cwd
}

/** The host repository as a user sees it: refs, HEAD, index, config, working tree (not objects). */
const repoView = (cwd: string, namespace: string) => ({
  refs: git(cwd, "for-each-ref", "--format=%(refname) %(objectname)").split("\n").filter((l) => !l.startsWith(namespace)),
  head: fs.readFileSync(path.join(cwd, ".git", "HEAD"), "utf8"),
  index: crypto.createHash("sha256").update(fs.readFileSync(path.join(cwd, ".git", "index"))).digest("hex"),
  config: fs.readFileSync(path.join(cwd, ".git", "config"), "utf8"),
  status: git(cwd, "status", "--porcelain", "--ignored"),
  tree: Object.fromEntries(Object.entries(snapshot(cwd)).filter(([rel]) => !rel.startsWith(".git/") && rel !== ".git")),
  gitFiles: Object.keys(snapshot(path.join(cwd, ".git"))).filter((rel) => !rel.startsWith("objects") && !rel.startsWith("refs/remotes") && !rel.startsWith("logs/refs/remotes")).sort()
})

beforeAll(() => {
  ensureBuilt()
  stateDir = tempDir("bb-life-state-")
  env = baseEnv({ BOTTLE_STATE_DIR: stateDir })
}, 600_000)

afterAll(() => {
  for (const { slug, cwd } of started) if (labelled(slug).length > 0) cli(["stop", slug, "--purge"], { cwd, env })
})

describe("a stopped bottle whose cwd was moved away", () => {
  it("resume says the cwd is gone and how to reach the agent's changes, leaving them and running nothing; with the directory back, resume brings them back", () => {
    const outsideDir = tempDir("bb-life-outside-")
    const cwd = hostRepo(path.join(outsideDir, "target.txt"))
    const real = fs.realpathSync(cwd)
    const slug = `life-gone-${crypto.randomBytes(3).toString("hex")}`
    run(["start", "dev", "--yes", "--detach", "--name", slug], cwd)
    started.push({ slug, cwd })
    inAgent(slug, cwd, "echo new work > agent-work.txt")
    run(["stop", slug], cwd)
    const moved = `${cwd}-moved`
    fs.renameSync(cwd, moved)
    const r = cli(["resume", slug, "--detach"], { cwd: moved, env })
    expect(r.code).not.toBe(0)
    expect(r.stderr).toContain(`${real} is gone (moved or deleted since the bottle started)`)
    expect(r.stderr).toContain(`put the directory back at ${real}`)
    expect(r.stderr).not.toContain("docker run --help")
    expect(runningParts(slug), "a failed resume runs nothing").toEqual([])
    expect(labelled(slug).filter((l) => l.startsWith("volume ")).length, "the agent's changes are kept").toBe(4)
    fs.renameSync(moved, cwd)
    run(["resume", slug, "--detach"], cwd)
    expect(inAgent(slug, cwd, "cat agent-work.txt").stdout).toBe("new work\n")
    run(["stop", slug, "--purge"], cwd)
  })
})

describe("a bottle's state across stop and resume", () => {
  it("keeps the workspace (a file, a commit) and the agent's home; pull brings the commit home in its own namespace; cp both ways; purge removes the volumes", () => {
    const outsideDir = tempDir("bb-life-outside-")
    const outside = path.join(outsideDir, "target.txt")
    fs.writeFileSync(outside, "outside the tree\n")
    const cwd = hostRepo(outside)
    const slug = `life-${crypto.randomBytes(3).toString("hex")}`
    const names = bottleNames(stateDir, slug)
    const before = snapshot(cwd)
    const outsideBefore = snapshot(outsideDir)

    run(["start", "dev", "--yes", "--detach", "--name", slug], cwd)
    started.push({ slug, cwd })
    // The agent sees the cwd at once, its files its own to edit.
    const first = inAgent(slug, cwd, `cat src/main.txt && git log --format=%s && stat -c %U src/main.txt`)
    expect(first.stdout).toBe("host version\nhost commit\nnode\n")

    // The agent's work: edits, a delete, a rename, a commit on a branch; writes through the link
    // (out of the tree on the host, into the sandbox's own /tmp here); its history in its home.
    inAgent(slug, cwd, `set -e
echo "agent version" > src/main.txt
echo "new work" > agent-work.txt
rm README.md
mv src src-renamed
mkdir -p "$(dirname ${outside})" && echo pwned > escape
git -c user.name=agent -c user.email=agent@example.com checkout -q -b feature
git add -A
git -c user.name=agent -c user.email=agent@example.com commit -q -m "agent commit"
mkdir -p ~/.claude && echo '{"display":"hello"}' >> ~/.claude/history.jsonl`)
    const commit = inAgent(slug, cwd, "git rev-parse HEAD").stdout.trim()

    // The host's cwd and the file the link points at are exactly as they were; nothing of the
    // agent's landed in the state dir.
    expect(snapshot(cwd)).toEqual(before)
    expect(snapshot(outsideDir)).toEqual(outsideBefore)
    const stateFiles = Object.keys(snapshot(stateDir))
    expect(stateFiles.filter((f) => /agent-work|history\.jsonl|src-renamed/.test(f))).toEqual([])

    // ls shows the kept volumes.
    const ls = JSON.parse(run(["ls", "--json"], cwd).stdout) as Array<{ slug: string; volumes: Array<string> }>
    expect(ls.find((b) => b.slug === slug)?.volumes.sort()).toEqual(Object.values(names.volumes).sort())

    run(["stop", slug], cwd)
    const afterStop = labelled(slug)
    expect(afterStop.filter((l) => !l.startsWith("volume ")), "containers and networks are gone").toEqual([])
    expect(afterStop.filter((l) => l.startsWith("volume ")).length, "the volumes stay").toBe(4)
    run(["resume", slug, "--detach"], cwd)
    const back = inAgent(slug, cwd, `cat agent-work.txt src-renamed/main.txt; git log --format=%s; git rev-parse --abbrev-ref HEAD; cat ~/.claude/history.jsonl; ls README.md 2>&1 || true`)
    expect(back.stdout).toContain("new work\nagent version\nagent commit\nhost commit\nfeature\n")
    expect(back.stdout).toContain(`{"display":"hello"}`)
    expect(back.stdout).toMatch(/No such file/)

    // bottle cp: out (a new host path; an existing one is refused) and in (owned by the agent).
    const out = path.join(tempDir("bb-life-cp-"), "work.txt")
    run(["cp", `${slug}:agent-work.txt`, out], cwd)
    expect(fs.readFileSync(out, "utf8")).toBe("new work\n")
    const again = cli(["cp", `${slug}:agent-work.txt`, out], { cwd, env })
    expect(again.code).not.toBe(0)
    expect(again.stderr.trim().split("\n")).toHaveLength(1)
    expect(again.stderr).toContain("exists")
    const input = path.join(tempDir("bb-life-cp-in-"), "notes.txt")
    fs.writeFileSync(input, "from the host\n")
    run(["cp", input, `${slug}:notes.txt`], cwd)
    expect(inAgent(slug, cwd, "cat notes.txt && stat -c %U notes.txt").stdout).toBe("from the host\nnode\n")

    // pull: the agent's branches under refs/remotes/bottle/<slug>/, nothing else changes.
    const namespace = `refs/remotes/bottle/${slug}/`
    const repoBefore = repoView(cwd, namespace)
    const pulled = JSON.parse(run(["pull", slug, "--json"], cwd).stdout) as { refs: Array<{ ref: string; commit: string }>; fetched: boolean }
    expect(pulled.fetched).toBe(true)
    // The branches holding commits the host lacks (main still is the host's own commit).
    expect(pulled.refs).toEqual([{ ref: `${namespace}feature`, commit }])
    expect(git(cwd, "log", "--format=%s", `${namespace}feature`)).toBe("agent commit\nhost commit")
    expect(repoView(cwd, namespace)).toEqual(repoBefore)

    run(["stop", slug, "--purge"], cwd)
    expect(labelled(slug)).toEqual([])
    expect(docker(["volume", "ls", "--filter", `label=bot-bottle.slug=${slug}`, "--format", "{{.Name}}"]).stdout.trim()).toBe("")
  })

  it("a cwd owned by a host user (uid 1500): the agent runs as 1500, writes the cwd's files with no ownership walk, its new files are 1500; the host cwd is untouched; resume keeps its home", () => {
    const cwd = hostRepo(path.join(tempDir("bb-life-outside-"), "target.txt"))
    const chown = spawnSync("chown", ["-R", "-h", "1500:1500", cwd], { encoding: "utf8" })
    expect(chown.status, chown.stderr).toBe(0)
    const slug = `life-uid-${crypto.randomBytes(3).toString("hex")}`
    const before = snapshot(cwd)

    run(["start", "dev", "--yes", "--detach", "--name", slug], cwd)
    started.push({ slug, cwd })
    // The agent is uid/gid 1500 by the name node; the cwd's files are its own as they are (no
    // copy-up: the upper layer holds nothing but what the agent writes).
    const names = bottleNames(stateDir, slug)
    const upper = docker(["volume", "inspect", "--format", "{{.Mountpoint}}", names.volumes.upper]).stdout.trim()
    expect(fs.readdirSync(upper)).toEqual([])
    const who = inAgent(slug, cwd, `set -e
id -u; id -g; id -un; stat -c '%u:%g' src/main.txt ~ ~/.bottle
echo "agent version" >> src/main.txt
echo "new work" > agent-work.txt
git -c user.name=agent -c user.email=agent@example.com commit -q -am "agent commit"
stat -c '%u:%g' agent-work.txt src/main.txt`)
    expect(who.stdout).toBe("1500\n1500\nnode\n1500:1500\n1500:1500\n1500:1500\n1500:1500\n1500:1500\n")
    // What bottle cp brings in belongs to the agent's user: 1500.
    const input = path.join(tempDir("bb-life-cp-in-"), "notes.txt")
    fs.writeFileSync(input, "from the host\n")
    run(["cp", input, `${slug}:notes.txt`], cwd)
    expect(inAgent(slug, cwd, "stat -c '%u:%g' notes.txt").stdout).toBe("1500:1500\n")
    const out = path.join(tempDir("bb-life-cp-"), "work.txt")
    run(["cp", `${slug}:agent-work.txt`, out], cwd)
    expect(fs.readFileSync(out, "utf8")).toBe("new work\n")
    expect(snapshot(cwd)).toEqual(before)

    // Resume: a new container (the image's node is 1000 again) takes 1500 again; the kept home is 1500's.
    run(["stop", slug], cwd)
    run(["resume", slug, "--detach"], cwd)
    expect(inAgent(slug, cwd, "id -u && stat -c '%u:%g' ~ ~/.bottle agent-work.txt && touch ~/x && cat src/main.txt").stdout)
      .toBe("1500\n1500:1500\n1500:1500\n1500:1500\nhost version\nagent version\n")
    expect(snapshot(cwd)).toEqual(before)
    run(["stop", slug, "--purge"], cwd)
  })

  it("a hostile repository in the workspace runs nothing on the host at pull; a commit planting .git is refused and the host repository is unchanged", () => {
    const cwd = hostRepo("/nonexistent")
    const slug = `pull-${crypto.randomBytes(3).toString("hex")}`
    const mark = path.join(tempDir("bb-life-mark-"), "ran")
    run(["start", "dev", "--yes", "--detach", "--name", slug], cwd)
    started.push({ slug, cwd })
    const namespace = `refs/remotes/bottle/${slug}/`
    const hostMain = git(cwd, "rev-parse", "main")
    // Everything a repository can make its reader run, aimed at the host; and the agent's
    // "main" moved: it must land in the namespace only.
    inAgent(slug, cwd, `set -e
echo evil > evil.txt && git add evil.txt && git -c user.name=a -c user.email=a@a commit -q -m evil
for k in core.fsmonitor core.sshCommand core.pager core.editor uploadpack.packObjectsHook core.hooksPath; do git config $k "touch ${mark}; false"; done
git config core.hooksPath .git/hooks
for h in pre-commit post-checkout reference-transaction post-merge pre-auto-gc; do printf '#!/bin/sh\\ntouch ${mark} 2>/dev/null; exit 0\\n' > .git/hooks/$h; chmod +x .git/hooks/$h; done`)
    const before = repoView(cwd, namespace)
    const pulled = JSON.parse(run(["pull", slug, "--json"], cwd).stdout) as { refs: Array<{ ref: string }> }
    expect(pulled.refs.map((r) => r.ref)).toEqual([`${namespace}main`])
    expect(git(cwd, "rev-parse", "main")).toBe(hostMain)
    expect(repoView(cwd, namespace)).toEqual(before)
    expect(fs.existsSync(mark), "the host ran something from the agent's repository").toBe(false)

    // A commit whose tree plants `.git/hooks/post-checkout` (a checkout of it would write into
    // the host's .git where names fold case): refused by the strict check, nothing changes.
    inAgent(slug, cwd, `set -e
b=$(echo 'touch ${mark}' | git hash-object -w --stdin)
t1=$(printf "100755 blob $b\\tpost-checkout\\n" | git mktree)
t2=$(printf "040000 tree $t1\\thooks\\n" | git mktree)
t3=$(printf "040000 tree $t2\\t.git\\n" | git mktree)
c=$(git -c user.name=a -c user.email=a@a commit-tree -m planted -p HEAD $t3)
git update-ref refs/heads/planted $c`)
    const refsBefore = git(cwd, "for-each-ref", "--format=%(refname) %(objectname)")
    const objectsBefore = Object.keys(snapshot(path.join(cwd, ".git", "objects"))).sort()
    const refused = cli(["pull", slug], { cwd, env })
    expect(refused.code).not.toBe(0)
    expect(refused.stderr.trim().split("\n")).toHaveLength(1)
    expect(refused.stderr).toContain("refused (fsck)")
    expect(refused.stderr).toContain("hasDotgit")
    expect(git(cwd, "for-each-ref", "--format=%(refname) %(objectname)")).toBe(refsBefore)
    expect(Object.keys(snapshot(path.join(cwd, ".git", "objects"))).sort()).toEqual(objectsBefore)
    expect(fs.existsSync(mark)).toBe(false)
    run(["stop", slug, "--purge"], cwd)
  })

  it("branch names and git's errors from the agent's repository reach the host's terminal escaped (C1 and bidirectional controls)", () => {
    const cwd = hostRepo("/nonexistent")
    const slug = `pullesc-${crypto.randomBytes(3).toString("hex")}`
    run(["start", "dev", "--yes", "--detach", "--name", slug], cwd)
    started.push({ slug, cwd })
    // git lets a ref name hold UTF-8 C1 controls (OSC, CSI) and bidi overrides; the agent's own
    // config puts any bytes in its git's error message.
    inAgent(slug, cwd, `set -e
git -c user.name=a -c user.email=a@a commit -q --allow-empty -m x
git branch "$(printf 't\\302\\2350;PWNED\\302\\234')"
git branch "$(printf 'u\\342\\200\\256txt.exe')"
git config pack.window "$(printf '1\\302\\2332J\\342\\200\\256')"`)
    const refused = cli(["pull", slug], { cwd, env })
    expect(refused.code).not.toBe(0)
    expect(refused.stderr).toContain("pack.window")
    for (const c of ["\u009b", "\u202e"]) expect(refused.stderr).not.toContain(c)
    inAgent(slug, cwd, "git config --unset pack.window")
    const pulled = run(["pull", slug], cwd)
    const out = pulled.stdout + pulled.stderr
    for (const c of ["\u009d", "\u009c", "\u202e"]) expect(out).not.toContain(c)
    expect(pulled.stdout).toContain(`refs/remotes/bottle/${slug}/t\\x9d0;PWNED\\x9c`)
    expect(pulled.stdout).toContain(`refs/remotes/bottle/${slug}/u\\u202etxt.exe`)
    const json = run(["pull", slug, "--json"], cwd).stdout
    for (const c of ["\u009d", "\u202e"]) expect(json).not.toContain(c)
    expect((JSON.parse(json) as { refs: Array<{ ref: string }> }).refs.map((r) => r.ref)).toContain(`refs/remotes/bottle/${slug}/u\u202etxt.exe`)
    run(["stop", slug, "--purge"], cwd)
  })
})
