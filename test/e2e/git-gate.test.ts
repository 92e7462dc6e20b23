/**
 * The git gate end to end, on a real Docker engine against the git host rig
 * (test/support/git-rig: real sshd + git, keys from a fake GitHub/Gitea API): a bottle gets a
 * deploy key on the repository, its agent clones, fetches and pushes through the gate under the
 * branch policy, and once the bottle stops the key is gone from the API and ssh refuses it.
 */
import { spawn, spawnSync } from "node:child_process"
import * as crypto from "node:crypto"
import * as fs from "node:fs"
import * as path from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { bottleNames } from "../../src/programs/bottleNames.ts"
import { type GitRig, startRig } from "../support/git-rig.ts"
import { baseEnv, BIN, cli, docker, ensureBuilt, tempDir, waitFor } from "./support.ts"

const slug = `gg-${crypto.randomBytes(3).toString("hex")}`
let rig: GitRig
let cwd = ""
let stateDir = ""
let env: NodeJS.ProcessEnv = {}
let privateKey = ""

const manifest = (r: GitRig) => `
agents:
  dev:
    bottle: box
  solo:
    bottle: one
  sleeper:
    bottle: one
    command: [sleep, "1000"]
bottles:
  one:
    git:
      upstreams:
        - name: widgets
          url: ${r.sshUrl("acme/widgets")}
          known_hosts_file: ./known_hosts
          deploy_key: { provider: github, api_url: ${r.apiUrl}, repo: acme/widgets, token_env: E2E_GIT_TOKEN }
  box:
    git:
      upstreams:
        - name: widgets
          url: ${r.sshUrl("acme/widgets")}
          known_hosts_file: ./known_hosts
          deploy_key: { provider: github, api_url: ${r.apiUrl}, repo: acme/widgets, token_env: E2E_GIT_TOKEN }
        - name: gadgets
          url: ${r.sshUrl("acme/gadgets")}
          known_hosts_file: ./known_hosts
          deploy_key: { provider: gitea, api_url: ${r.apiUrl}/api/v1, repo: acme/gadgets, token_env: E2E_GIT_TOKEN }
          push: { allow: ["refs/heads/feature/*"], tags: true }
        - name: unpinned
          url: ${r.sshUrl("acme/unpinned")}
          deploy_key: { provider: github, api_url: ${r.apiUrl}, repo: acme/unpinned, token_env: E2E_GIT_TOKEN }
    workspace: { copy_cwd: true, workdir: /workspace }
`

const inAgent = (script: string, opts: { root?: boolean } = {}) => cli(["exec", slug, ...(opts.root ? ["--root"] : []), "--", "sh", "-c", script], { cwd, env })
const agentOk = (script: string) => {
  const r = inAgent(script)
  expect(r.code, `${script}\n${r.stdout}\n${r.stderr}`).toBe(0)
  return r.stdout
}
const upstreamRef = (repo: string, ref: string) => spawnSync("docker", ["exec", "-u", "git", rig.container, "git", "--git-dir", `/srv/git/${repo}.git`, "rev-parse", "--verify", "-q", ref], { encoding: "utf8" }).stdout.trim()

beforeAll(() => {
  ensureBuilt()
  rig = startRig({ repos: ["acme/widgets", "acme/gadgets", "acme/unpinned"] })
  cwd = tempDir("bb-gg-cwd-")
  stateDir = tempDir("bb-gg-state-")
  fs.writeFileSync(path.join(cwd, "bottle.yaml"), manifest(rig))
  fs.writeFileSync(path.join(cwd, "known_hosts"), rig.knownHosts)
  // A workspace that is a clone of the upstream: its origin must end up at the gate.
  const git = (...args: Array<string>) => spawnSync("git", ["-C", cwd, ...args], { encoding: "utf8" })
  git("init", "-q", "-b", "main")
  git("remote", "add", "origin", rig.sshUrl("acme/widgets"))
  env = baseEnv({ BOTTLE_STATE_DIR: stateDir, E2E_GIT_TOKEN: rig.token })
  const started = cli(["start", "dev", "--yes", "--detach", "--name", slug], { cwd, env })
  expect(started.code, started.stderr).toBe(0)
  privateKey = fs.readFileSync(path.join(stateDir, "bottles", slug, "git-gate", "keys", "widgets"), "utf8")
}, 900_000)

const others: Array<string> = []
const sessions: Array<string> = []
afterAll(() => {
  for (const s of sessions) spawnSync("tmux", ["kill-session", "-t", s])
  if (cwd) for (const s of [slug, ...others]) cli(["stop", s, "--purge"], { cwd, env })
  rig?.stop()
})

/** ssh (git ls-remote) to the rig's widgets repository with `privateKey`: exit status and stderr. */
const sshWith = (key: string) => {
  const dir = tempDir("bb-gg-key-")
  fs.writeFileSync(path.join(dir, "key"), key, { mode: 0o600 })
  fs.writeFileSync(path.join(dir, "known_hosts"), rig.knownHosts)
  return spawnSync("git", ["ls-remote", `ssh://git@127.0.0.1:${rig.sshPort}/acme/widgets.git`], {
    encoding: "utf8",
    env: { ...process.env, GIT_SSH_COMMAND: `ssh -F /dev/null -i ${path.join(dir, "key")} -o IdentitiesOnly=yes -o BatchMode=yes -o UserKnownHostsFile=${path.join(dir, "known_hosts")}` }
  })
}
const keyOf = (s: string, upstream = "widgets") => fs.readFileSync(path.join(stateDir, "bottles", s, "git-gate", "keys", upstream), "utf8")
const keysOf = (s: string) => rig.keys("acme/widgets").filter((k) => k.title.startsWith(`bot-bottle ${s} `))

describe("git gate: a running bottle with upstreams", () => {
  it("the API shows one key per upstream, titled for the bottle, with write access", () => {
    const keys = rig.keys("acme/widgets")
    expect(keys).toHaveLength(1)
    expect(keys[0]!.title).toMatch(new RegExp(`^bot-bottle ${slug} widgets [0-9a-f]+$`))
    expect(keys[0]!.read_only).toBe(false)
    expect(rig.keys("acme/gadgets").map((k) => k.title)).toEqual([expect.stringMatching(new RegExp(`^bot-bottle ${slug} gadgets `))])
    // The Gitea-style upstream's key went through Gitea's paths.
    expect(rig.requests().some((r) => r.method === "POST" && r.path === "/api/v1/repos/acme/gadgets/keys" && r.tokenOk)).toBe(true)
  })

  it("the agent's git reaches the gate by the upstream's own URL; the workspace's origin points at the gate", () => {
    const gate = agentOk("echo $GIT_GATE_URL").trim()
    expect(gate).toMatch(/^http:\/\/10\.213\.\d+\.2:9418\/widgets\.git$/)
    expect(agentOk("git -C /workspace remote get-url origin").trim()).toBe(gate)
    agentOk(`git clone -q ${rig.sshUrl("acme/widgets")} /tmp/w && git -C /tmp/w log --oneline`)
    expect(agentOk("git -C /tmp/w remote get-url --push origin").trim()).toBe(gate)
  })

  it("a push to an allowed branch lands on the upstream, with the gate's answer", () => {
    const r = inAgent("cd /tmp/w && git -c user.name=a -c user.email=a@a commit -q --allow-empty -m from-agent && git push origin HEAD:refs/heads/bottle/x 2>&1; git rev-parse HEAD")
    expect(r.code, r.stderr).toBe(0)
    const head = r.stdout.trim().split("\n").pop()!
    expect(r.stdout).toContain("forwarded to widgets")
    expect(upstreamRef("acme/widgets", "refs/heads/bottle/x")).toBe(head)
  })

  it("refuses pushes to main, force pushes, deletions and tags, naming the rule; nothing reaches the upstream", () => {
    const before = rig.git("acme/widgets", ["for-each-ref"])
    const main = inAgent("cd /tmp/w && git push origin HEAD:refs/heads/main 2>&1")
    expect(main.code).not.toBe(0)
    expect(main.stdout).toContain("refused refs/heads/main: push.allow (refs/heads/bottle/*) does not match it")
    const force = inAgent("cd /tmp/w && git reset -q --hard HEAD~1 && git -c user.name=a -c user.email=a@a commit -q --allow-empty -m rewritten && git push -f origin HEAD:refs/heads/bottle/x 2>&1")
    expect(force.code).not.toBe(0)
    expect(force.stdout).toContain("refused refs/heads/bottle/x: push.force is false")
    const del = inAgent("cd /tmp/w && git push origin :refs/heads/bottle/x 2>&1")
    expect(del.code).not.toBe(0)
    expect(del.stdout).toContain("refused refs/heads/bottle/x: push.delete is false")
    const tag = inAgent("cd /tmp/w && git tag v1 && git push origin v1 2>&1")
    expect(tag.code).not.toBe(0)
    expect(tag.stdout).toContain("refused refs/tags/v1: push.tags is false")
    expect(rig.git("acme/widgets", ["for-each-ref"])).toBe(before)
  })

  it("a commit made upstream after start is fetched", () => {
    const id = rig.commitUpstream("acme/widgets", "main", "made upstream").trim()
    agentOk("git -C /tmp/w fetch -q origin")
    expect(agentOk("git -C /tmp/w rev-parse origin/main").trim()).toBe(id)
  })

  it("a Gitea-style upstream works the same way, under its own policy", () => {
    agentOk(`git clone -q ${rig.sshUrl("acme/gadgets")} /tmp/g`)
    const ok = inAgent("cd /tmp/g && git -c user.name=a -c user.email=a@a commit -q --allow-empty -m g && git push origin HEAD:refs/heads/feature/a 2>&1 && git tag t1 && git push origin t1 2>&1")
    expect(ok.code, ok.stdout + ok.stderr).toBe(0)
    expect(upstreamRef("acme/gadgets", "refs/tags/t1")).not.toBe("")
    const refused = inAgent("cd /tmp/g && git push origin HEAD:refs/heads/bottle/x 2>&1")
    expect(refused.stdout).toContain("refused refs/heads/bottle/x: push.allow (refs/heads/feature/*) does not match it")
  })

  it("an upstream whose host key is not pinned fails, saying how to pin it", () => {
    const r = inAgent(`git clone -q ${rig.sshUrl("acme/unpinned")} /tmp/u 2>&1`)
    expect(r.code).not.toBe(0)
    expect(r.stdout).toContain(`the SSH host key of [${rig.sshHost}]:${rig.sshPort} is not pinned for upstream unpinned`)
    expect(r.stdout).toContain(`ssh-keyscan -p ${rig.sshPort} ${rig.sshHost}`)
    expect(r.stdout).toContain("known_hosts_file")
  })

  it("the gate survives what a hostile agent sends it, and still serves and refuses as before", () => {
    // Garbage, bad paths and methods, the dumb protocol, path tricks, a truncated pack, a
    // flood of connections, slow headers: each gets an answer or a closed socket.
    const attack = `
const net = require("net"), http = require("http")
const [host, port] = process.env.GIT_GATE_URL.replace("http://", "").split("/")[0].split(":")
const raw = (data) => new Promise((r) => { const s = net.connect(+port, host, () => s.end(data)); s.on("data", () => {}); s.on("error", r); s.on("close", r); setTimeout(() => { s.destroy(); r() }, 3000) })
const req = (method, path, body, headers = {}) => new Promise((r) => { const q = http.request({ host, port: +port, method, path, headers }, (res) => { res.resume(); res.on("end", () => r(res.statusCode)) }); q.on("error", () => r("error")); q.end(body) })
;(async () => {
  const out = []
  await raw("\\x00\\xff garbage\\r\\n\\r\\n")
  await raw("GET /" + "a".repeat(100000) + " HTTP/1.1\\r\\nHost: x\\r\\n\\r\\n")
  out.push(await req("GET", "/widgets.git/HEAD"))
  out.push(await req("GET", "/widgets.git/objects/info/packs"))
  out.push(await req("GET", "/widgets.git/../gadgets.git/info/refs?service=git-upload-pack"))
  out.push(await req("GET", "/widgets.git/info/refs?service=git-frobnicate"))
  out.push(await req("PUT", "/widgets.git/git-receive-pack", "x"))
  out.push(await req("POST", "/widgets.git/git-receive-pack", "0000garbage-pack", { "content-type": "application/x-git-receive-pack-request" }))
  out.push(await req("POST", "/widgets.git/git-upload-pack", Buffer.alloc(200000, 7), { "content-type": "application/x-git-upload-pack-request", "content-encoding": "gzip" }))
  await Promise.all(Array.from({ length: 200 }, () => raw("GET /widgets.git/info/refs?service=git-upload-pack HTTP/1.1\\r\\nHost: x\\r\\n")))
  console.log(JSON.stringify(out))
})()`
    const r = cli(["exec", slug, "--", "node", "-e", attack], { cwd, env })
    expect(r.code, r.stderr).toBe(0)
    const statuses = JSON.parse(r.stdout.trim()) as Array<number | string>
    expect(statuses.slice(0, 5)).toEqual([404, 404, 404, 404, 404])
    agentOk(`rm -rf /tmp/h && git clone -q ${rig.sshUrl("acme/widgets")} /tmp/h`)
    expect(agentOk("git -C /tmp/h ls-remote origin")).toMatch(/refs\/heads\/main/)
    const refused = inAgent("cd /tmp/h && git -c user.name=a -c user.email=a@a commit -q --allow-empty -m h && git push origin HEAD:refs/heads/main 2>&1")
    expect(refused.stdout).toContain("refused refs/heads/main")
    const ls = JSON.parse(cli(["ls", "--json"], { cwd, env }).stdout) as Array<{ slug: string; status: string }>
    expect(ls.find((x) => x.slug === slug)?.status, "the bundle is healthy: no daemon died").toBe("running")
  })

  it("a push of 1001 refs is refused whole, and its audit line is a count, not the list (the log is on the host)", () => {
    const audit = path.join(stateDir, "bottles", slug, "git-gate", "audit.log")
    const before = fs.statSync(audit).size
    const r = inAgent(
      `rm -rf /tmp/many && git clone -q ${rig.sshUrl("acme/widgets")} /tmp/many && cd /tmp/many && h=$(git rev-parse HEAD) && ` +
        `seq 1 1001 | sed "s|.*|create refs/heads/bottle/many-&-$(printf %0100d 0) $h|" | git update-ref --stdin && ` +
        `git push origin "refs/heads/bottle/many-*:refs/heads/bottle/many-*" 2>&1`
    )
    expect(r.code).not.toBe(0)
    expect(r.stdout).toContain("at most 1000 ref updates per push (this one has 1001)")
    expect(fs.statSync(audit).size - before).toBeLessThan(1000)
    expect(rig.git("acme/widgets", ["for-each-ref", "refs/heads/bottle/"])).not.toContain("many-")
  })

  it("`bottle logs --git` shows each push: refs, ids, verdict, the upstream's answer", () => {
    const r = cli(["logs", slug, "--git"], { cwd, env })
    expect(r.code, r.stderr).toBe(0)
    const lines = r.stdout.trim().split("\n").map((l) => JSON.parse(l) as { upstream: string; verdict: string; refs: Array<{ ref: string; rule?: string }> })
    expect(lines.find((l) => l.verdict === "pushed" && l.refs[0]!.ref === "refs/heads/bottle/x")).toBeDefined()
    expect(lines.find((l) => l.verdict === "refused" && l.refs[0]!.ref === "refs/heads/main")?.refs[0]!.rule).toContain("push.allow")
  })

  it("the deploy key's private half and the admin token are nowhere in the agent; the token is not in the bundle", () => {
    const keyLine = privateKey.split("\n").find((l) => l.length > 40 && !l.startsWith("-----"))!
    const needles = [rig.token, keyLine]
    // env, every file (but /proc and /sys), every process's environ and command line. The
    // needles come in on stdin, in unexported variables: no command line or environ holds them.
    const script = `read -r a; read -r b; env; grep -rIl -F -e "$a" -e "$b" / --exclude-dir=proc --exclude-dir=sys 2>/dev/null; cat /proc/[0-9]*/environ /proc/[0-9]*/cmdline 2>/dev/null | tr '\\0' '\\n'`
    for (const root of [false, true]) {
      const r = cli(["exec", slug, ...(root ? ["--root"] : []), "--", "sh", "-c", script], { cwd, env, input: needles.join("\n") + "\n" })
      expect(r.code, r.stderr).toBe(0)
      expect(r.stdout).toContain("HOME=")
      for (const n of needles) expect(r.stdout.includes(n), `agent (${root ? "root" : "user"}) holds a secret:\n${r.stdout.split("\n").filter((l) => l.includes(n)).join("\n").slice(0, 500)}`).toBe(false)
    }
    const bundle = bottleNames(stateDir, slug).bundle
    const inspect = docker(["inspect", bundle]).stdout
    expect(inspect.includes(rig.token)).toBe(false)
    const inBundle = docker(["exec", "-i", bundle, "sh", "-c", script], `${rig.token}\n${rig.token}\n`)
    expect(inBundle.stdout).toContain("BOTTLE_SLUG=")
    expect(inBundle.stdout.includes(rig.token)).toBe(false)
  })
})

describe("git gate: teardown", () => {
  it("after `bottle stop` the key is gone from the API and ssh with the old private key is refused", () => {
    expect(sshWith(privateKey).status, "the key works while the bottle runs").toBe(0)
    const r = cli(["stop", slug], { cwd, env })
    expect(r.code, r.stderr).toBe(0)
    expect(keysOf(slug)).toEqual([])
    expect(rig.keys("acme/gadgets")).toEqual([])
    const after = sshWith(privateKey)
    expect(after.status).not.toBe(0)
    expect(after.stderr).toContain("Permission denied")
  })

  it("`bottle resume` gets a new key (the old one stays revoked), and a clone the agent kept in its home pushes through the gate again", () => {
    const s = `${slug}-r`
    others.push(s)
    const inS = (script: string) => cli(["exec", s, "--", "sh", "-c", script], { cwd, env })
    expect(cli(["start", "solo", "--yes", "--detach", "--name", s], { cwd, env }).code).toBe(0)
    const [first] = keysOf(s)
    expect(first).toBeDefined()
    const oldKey = keyOf(s)
    const cloned = inS(`git clone -q ${rig.sshUrl("acme/widgets")} ~/w && cd ~/w && git -c user.name=a -c user.email=a@a commit -q --allow-empty -m before-stop && git push -q origin HEAD:refs/heads/bottle/r1 2>&1`)
    expect(cloned.code, cloned.stdout + cloned.stderr).toBe(0)
    expect(cli(["stop", s], { cwd, env }).code).toBe(0)
    expect(keysOf(s)).toEqual([])

    const resumed = cli(["resume", s, "--detach"], { cwd, env })
    expect(resumed.code, resumed.stderr).toBe(0)
    const keys = keysOf(s)
    expect(keys).toHaveLength(1)
    expect(keys[0]!.id).not.toBe(first!.id)
    expect(keyOf(s)).not.toBe(oldKey)
    expect(sshWith(oldKey).status, "the old key stays revoked").not.toBe(0)
    const pushed = inS("cd ~/w && git -c user.name=a -c user.email=a@a commit -q --allow-empty -m after-resume && git push origin HEAD:refs/heads/bottle/r2 2>&1; git rev-parse HEAD")
    expect(pushed.code, pushed.stdout + pushed.stderr).toBe(0)
    expect(upstreamRef("acme/widgets", "refs/heads/bottle/r2")).toBe(pushed.stdout.trim().split("\n").pop())
    expect(cli(["stop", s], { cwd, env }).code).toBe(0)
    expect(keysOf(s)).toEqual([])
  })

  it("DELETE answering 500: stop names the key and repo in one line and keeps the record; a later stop revokes it", () => {
    const s = `${slug}-f`
    others.push(s)
    expect(cli(["start", "solo", "--yes", "--detach", "--name", s], { cwd, env }).code).toBe(0)
    const [key] = keysOf(s)
    expect(key).toBeDefined()
    rig.fault({ method: "DELETE", status: 500 })
    try {
      const failed = cli(["stop", s], { cwd, env })
      expect(failed.code).not.toBe(0)
      const line = failed.stderr.split("\n").find((l) => l.includes("REVOCATION FAILED"))
      expect(line).toContain(`acme/widgets key ${key!.id}`)
      expect(line).toContain("answered 500")
      expect(keysOf(s)).toHaveLength(1)
      const meta = JSON.parse(fs.readFileSync(path.join(stateDir, "bottles", s, "meta.json"), "utf8")) as { deployKeys: Array<{ id: number }> }
      expect(meta.deployKeys.map((k) => k.id)).toEqual([key!.id])
    } finally {
      rig.fault({})
    }
    const again = cli(["stop", s], { cwd, env })
    expect(again.code, again.stderr).toBe(0)
    expect(again.stderr).toContain(`revoked deploy key acme/widgets#${key!.id}`)
    expect(keysOf(s)).toEqual([])
  })

  it("a launch killed (SIGKILL) right after the key was created leaves a key `bottle cleanup --keys` finds and revokes", async () => {
    const s = `${slug}-k`
    others.push(s)
    // Its own process group, killed whole (the CLI and the docker commands it runs), as a
    // terminal's kill or the OOM killer would: nothing of the launch goes on after the key.
    const child = spawn(process.execPath, [BIN, "start", "solo", "--yes", "--detach", "--name", s], { cwd, env, detached: true, stdio: "ignore" })
    await waitFor(() => keysOf(s).length > 0 || child.exitCode !== null, 300_000, "the key")
    process.kill(-child.pid!, "SIGKILL")
    expect(keysOf(s)).toHaveLength(1)
    const dry = cli(["cleanup", "--keys", "--dry-run", "--json"], { cwd, env })
    expect(dry.code, dry.stderr).toBe(0)
    expect((JSON.parse(dry.stdout) as { revokedKeys: Array<{ slug: string }> }).revokedKeys.map((k) => k.slug)).toContain(s)
    expect(keysOf(s)).toHaveLength(1)
    const r = cli(["cleanup", "--keys"], { cwd, env })
    expect(r.code, r.stderr).toBe(0)
    expect(r.stdout).toMatch(new RegExp(`revoked deploy key acme/widgets#\\d+ \\(bot-bottle ${s} widgets `))
    expect(keysOf(s)).toEqual([])
  })

  it("after Ctrl-C of an attached `bottle start`, the key is gone and ssh with it is refused", async () => {
    const s = `${slug}-c`
    others.push(s)
    const session = `bb-${s}`
    sessions.push(session)
    const q = (v: string) => `'${v.replaceAll("'", `'\\''`)}'`
    const vars = [`PATH=${process.env["PATH"]}`, `HOME=${process.env["HOME"]}`, `BOTTLE_STATE_DIR=${stateDir}`, "TERM=xterm", `E2E_GIT_TOKEN=${rig.token}`,
      ...(process.env["BOTTLE_EXTRA_CA_CERTS"] ? [`BOTTLE_EXTRA_CA_CERTS=${process.env["BOTTLE_EXTRA_CA_CERTS"]}`] : [])]
    const exitFile = path.join(stateDir, `${s}.exit`)
    const cmd = `cd ${q(cwd)} && env -i ${vars.map(q).join(" ")} ${q(process.execPath)} ${q(BIN)} start sleeper --yes --name ${s}; echo EXIT=$? > ${q(exitFile)}; sleep 600`
    expect(spawnSync("tmux", ["new-session", "-d", "-s", session, "-x", "160", "-y", "40", cmd]).status).toBe(0)
    const agent = bottleNames(stateDir, s).agent
    await waitFor(() => docker(["exec", agent, "pgrep", "-x", "sleep"]).code === 0, 300_000, "the attached agent")
    const key = keyOf(s)
    expect(sshWith(key).status).toBe(0)
    spawnSync("tmux", ["send-keys", "-t", session, "C-c"])
    await waitFor(() => fs.existsSync(exitFile), 120_000, "the start to exit")
    expect(keysOf(s)).toEqual([])
    const after = sshWith(key)
    expect(after.status).not.toBe(0)
    expect(after.stderr).toContain("Permission denied")
  })
})
