/**
 * `npm run bench:git`: clone and a small push through the git gate, against the same
 * operations directly over SSH to the same git host rig (test/support/git-rig), one run each.
 * The gate's side runs in the agent (agent → gate → rig); the direct side runs in the bundle
 * with the same deploy key (bundle → rig), so both cross the same networks to the same sshd.
 * Each operation is timed inside its container (date, around the git command alone).
 * Prints figures; asserts nothing.
 *
 * Targets: clone through the gate ≤ 1.3 × direct; ≤ 250 ms added per push.
 */
import { spawnSync } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { bottleNames } from "../src/programs/bottleNames.ts"
import { startRig } from "../test/support/git-rig.ts"

const root = path.resolve(import.meta.dirname, "..")
const bin = path.join(root, "bin", "bottle.js")
spawnSync("npm", ["run", "-s", "build"], { cwd: root, stdio: "inherit" })

const rig = startRig({ repos: ["acme/bench"] })
const cwd = fs.mkdtempSync(path.join(os.tmpdir(), "bottle-bench-git-"))
const state = fs.mkdtempSync(path.join(os.tmpdir(), "bottle-bench-git-state-"))
const env = { ...process.env, BOTTLE_STATE_DIR: state, BENCH_GIT_TOKEN: rig.token }
const slug = "bench-git"
const run = (cmd: string, args: ReadonlyArray<string>) => {
  const r = spawnSync(cmd, args, { cwd, env, encoding: "utf8" })
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(" ")} failed: ${r.stderr}${r.stdout}`)
  return r.stdout
}
/** Runs `script` in a container; it prints the milliseconds its timed part took. */
const timed = (container: string, user: string, script: string) =>
  Number(run("docker", ["exec", "-u", user, container, "sh", "-c", `set -e; ${script}`]).trim().split("\n").pop())
const clock = (cmd: string) => `s=$(date +%s%N); ${cmd}; e=$(date +%s%N); echo $(( (e - s) / 1000000 ))`

try {
  // A repository of some size: 400 files over 20 commits (~4 MB).
  run("docker", ["exec", "-u", "git", rig.container, "sh", "-c",
    `set -e; t=$(mktemp -d); git clone -q /srv/git/acme/bench.git $t; cd $t; for c in $(seq 1 20); do for f in $(seq 1 20); do head -c 10000 /dev/urandom | base64 > f$c-$f.txt; done; git add -A; git -c user.name=b -c user.email=b@b commit -q -m c$c; done; git push -q origin main; rm -rf $t`])
  fs.writeFileSync(path.join(cwd, "known_hosts"), rig.knownHosts)
  fs.writeFileSync(path.join(cwd, "bottle.yaml"), `
agents:
  bench:
    bottle: box
    command: [sleep, infinity]
bottles:
  box:
    git:
      upstreams:
        - name: bench
          url: ${rig.sshUrl("acme/bench")}
          known_hosts_file: ./known_hosts
          deploy_key: { provider: github, api_url: ${rig.apiUrl}, repo: acme/bench, token_env: BENCH_GIT_TOKEN }
`)
  run(process.execPath, [bin, "start", "bench", "--yes", "--detach", "--name", slug])
  const names = bottleNames(state, slug)
  const url = rig.sshUrl("acme/bench")
  const direct = `GIT_SSH_COMMAND="ssh -F /dev/null -o BatchMode=yes -o StrictHostKeyChecking=yes -o UserKnownHostsFile=/run/bottle/git-gate/known_hosts/bench -o IdentitiesOnly=yes -i /run/bottle/git-gate/keys/bench"`
  const user = spawnSync("docker", ["inspect", "-f", "{{.Config.User}}", names.bundle], { encoding: "utf8" }).stdout.trim() || "bundle"
  // Warm both paths once (ssh, the mirror's first fetch), untimed.
  timed(names.agent, "node", `cd /tmp && ${clock(`git clone -q ${url} warm`)}`)
  timed(names.bundle, user, `cd /tmp && export ${direct} && ${clock(`git clone -q ${url} warm`)}`)
  const gateClone = timed(names.agent, "node", `cd /tmp && ${clock(`git clone -q ${url} c`)}`)
  const directClone = timed(names.bundle, user, `cd /tmp && export ${direct} && ${clock(`git clone -q ${url} c`)}`)
  const commit = "git -c user.name=b -c user.email=b@b commit -q --allow-empty -m push"
  const gatePush = timed(names.agent, "node", `cd /tmp/c && ${commit} && ${clock("git push -q origin HEAD:refs/heads/bottle/gate 2>/dev/null")}`)
  const directPush = timed(names.bundle, user, `cd /tmp/c && export ${direct} && ${commit} && ${clock("git push -q origin HEAD:refs/heads/bottle/direct")}`)
  console.log(`clone (400 files, 20 commits): gate ${gateClone} ms, direct ssh ${directClone} ms, ratio ${(gateClone / directClone).toFixed(2)}× (target ≤ 1.3×)`)
  console.log(`small push: gate ${gatePush} ms, direct ssh ${directPush} ms, added ${gatePush - directPush} ms (target ≤ 250 ms)`)
} finally {
  spawnSync(process.execPath, [bin, "stop", slug, "--purge"], { cwd, env, stdio: "ignore" })
  rig.stop()
}
