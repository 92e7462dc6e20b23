/**
 * The git host test rig (test/support/git-rig/): a container with a real sshd and real git,
 * whose keys come from a fake GitHub/Gitea API in the same container. Built from the seeded
 * base image with Debian packages (offline but for Debian's mirror, like the project's
 * images); the tag carries a hash of the context, so a changed rig is rebuilt and an unchanged
 * one is reused.
 *
 * A started rig publishes sshd on all host addresses (the bundle reaches it at the docker
 * bridge's gateway, 172.17.0.1) and the API on 127.0.0.1 only (the CLI on the host uses it).
 */
import { execFileSync, spawnSync } from "node:child_process"
import * as crypto from "node:crypto"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"

const HERE = path.join(import.meta.dirname, "git-rig")
const ROOT = path.resolve(import.meta.dirname, "../..")
const CONTEXT_FILES = ["Dockerfile", "api.mjs", "authorized-keys.mjs", "git-shell.sh", "entry.sh", "sshd_config"]

const dockerOut = (args: ReadonlyArray<string>, input?: string) => {
  const r = spawnSync("docker", args, { encoding: "utf8", input: input ?? "", timeout: 600_000 })
  if (r.status !== 0) throw new Error(`docker ${args.join(" ")} failed (${r.status}): ${r.stderr}`)
  return r.stdout.trim()
}

/** Builds the rig image if this context was never built; returns its tag. */
export const buildRigImage = (env: NodeJS.ProcessEnv = process.env): string => {
  const extraCa = env["BOTTLE_EXTRA_CA_CERTS"] ? fs.readFileSync(env["BOTTLE_EXTRA_CA_CERTS"], "utf8") : ""
  const h = crypto.createHash("sha256")
  for (const f of CONTEXT_FILES) h.update(`${f}\0${fs.readFileSync(path.join(HERE, f), "utf8")}\0`)
  for (const f of ["install-extra-ca.sh", "apt-install.sh"]) h.update(fs.readFileSync(path.join(ROOT, "scripts", f), "utf8"))
  h.update(extraCa)
  const tag = `bot-bottle-test/git-rig:${h.digest("hex").slice(0, 16)}`
  if (spawnSync("docker", ["image", "inspect", tag], { stdio: "ignore" }).status === 0) return tag
  const ctx = fs.mkdtempSync(path.join(os.tmpdir(), "git-rig-ctx-"))
  try {
    for (const f of CONTEXT_FILES) fs.copyFileSync(path.join(HERE, f), path.join(ctx, f))
    for (const f of ["install-extra-ca.sh", "apt-install.sh"]) fs.copyFileSync(path.join(ROOT, "scripts", f), path.join(ctx, f))
    fs.writeFileSync(path.join(ctx, "extra-ca.pem"), extraCa)
    execFileSync("docker", ["build", "-q", "-t", tag, ctx], { stdio: ["ignore", "ignore", "inherit"], timeout: 900_000 })
  } finally {
    fs.rmSync(ctx, { recursive: true, force: true })
  }
  return tag
}

export interface DeployKeyView {
  readonly id: number
  readonly key: string
  readonly title: string
  readonly read_only: boolean
  readonly fingerprint: string
}

export interface GitRig {
  readonly container: string
  /** The admin token the API accepts. */
  readonly token: string
  /** The API's base on the host: GitHub-style paths under it, Gitea's under `${apiUrl}/api/v1`. */
  readonly apiUrl: string
  /** The host address the bundle reaches sshd at, and its port. */
  readonly sshHost: string
  readonly sshPort: number
  /** `ssh://git@host:port/<repo>.git` */
  readonly sshUrl: (repo: string) => string
  /** known_hosts lines pinning the rig's host keys for sshHost:sshPort (and 127.0.0.1). */
  readonly knownHosts: string
  readonly keys: (repo: string) => ReadonlyArray<DeployKeyView>
  readonly fault: (f: { method?: string; status?: number; hang?: boolean }) => void
  readonly requests: () => ReadonlyArray<{ method: string; path: string; tokenOk: boolean }>
  /** Runs git as the rig's `git` user against a bare repository (`git --git-dir <repo>`). */
  readonly git: (repo: string, args: ReadonlyArray<string>) => string
  /** A commit on `branch` made on the host side of the upstream (not through any gate). */
  readonly commitUpstream: (repo: string, branch: string, message: string) => string
  readonly stop: () => void
}

const api = async (base: string, p: string, init?: RequestInit) => {
  const r = await fetch(base + p, init)
  return r.json()
}

/** Starts a rig holding `repos` (owner/name). */
/**
 * The default bridge's gateway: the host address every container reaches. A daemon started
 * without `--bip` does not put it in the network's IPAM config until something asks (seen on a
 * fresh dockerd 20.10: `[{"Subnet":"172.17.0.0/16"}]`); it is then the subnet's first address.
 */
export const bridgeGateway = (): string => {
  const config = JSON.parse(dockerOut(["network", "inspect", "bridge", "--format", "{{json .IPAM.Config}}"]) || "[]") as Array<{ Subnet?: string; Gateway?: string }>
  const v4 = config.find((c) => c.Subnet !== undefined && !c.Subnet.includes(":"))
  if (v4?.Gateway) return v4.Gateway
  const m = v4?.Subnet?.match(/^(\d+)\.(\d+)\.(\d+)\.(\d+)\/(\d+)$/)
  if (!m) throw new Error(`the default bridge network has no IPv4 subnet: ${JSON.stringify(config)}`)
  const n = m.slice(1, 5).reduce((a, o) => a * 256 + Number(o), 0)
  const size = 2 ** (32 - Number(m[5]))
  const first = n - (n % size) + 1
  return [24, 16, 8, 0].map((s) => Math.floor(first / 2 ** s) % 256).join(".")
}

export const startRig = (options: { readonly repos: ReadonlyArray<string>; readonly token?: string; readonly env?: NodeJS.ProcessEnv }): GitRig => {
  const image = buildRigImage(options.env)
  const token = options.token ?? `rig-admin-${crypto.randomBytes(12).toString("hex")}`
  const container = dockerOut(["run", "-d", "--rm", "--label", "bot-bottle-test.rig=1", "-e", `RIG_TOKEN=${token}`, "-e", `RIG_REPOS=${options.repos.join(",")}`,
    "-p", "0:22", "-p", "127.0.0.1:0:8080", image])
  const port = (p: string) => Number(dockerOut(["port", container, p]).split("\n")[0]!.split(":").pop())
  const sshPort = port("22/tcp")
  const apiPort = port("8080/tcp")
  const sshHost = bridgeGateway()
  const apiUrl = `http://127.0.0.1:${apiPort}`
  // Wait for sshd and the API (the repositories are made before either starts).
  const deadline = Date.now() + 60_000
  for (;;) {
    const ok = spawnSync("docker", ["exec", container, "sh", "-c", "node -e \"fetch('http://127.0.0.1:8080/_rig/keys').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))\" && pgrep -x sshd >/dev/null"], { stdio: "ignore" }).status === 0
    if (ok) break
    if (Date.now() > deadline) throw new Error(`git rig ${container} did not start: ${spawnSync("docker", ["logs", container], { encoding: "utf8" }).stderr}`)
    spawnSync("sleep", ["0.2"])
  }
  const hostKeys = dockerOut(["exec", container, "sh", "-c", "cat /etc/ssh/ssh_host_ed25519_key.pub /etc/ssh/ssh_host_ecdsa_key.pub /etc/ssh/ssh_host_rsa_key.pub"])
    .split("\n").map((l) => l.split(" ").slice(0, 2).join(" "))
  const knownHosts = hostKeys.map((k) => `[${sshHost}]:${sshPort},[127.0.0.1]:${sshPort} ${k}`).join("\n") + "\n"
  const sync = (p: string) => {
    const r = spawnSync(process.execPath, ["-e", `fetch(${JSON.stringify(apiUrl + p)}).then(r=>r.text()).then(t=>process.stdout.write(t))`], { encoding: "utf8" })
    return JSON.parse(r.stdout)
  }
  const git = (repo: string, args: ReadonlyArray<string>) => dockerOut(["exec", "-u", "git", container, "git", "--git-dir", `/srv/git/${repo}.git`, ...args])
  return {
    container,
    token,
    apiUrl,
    sshHost,
    sshPort,
    sshUrl: (repo) => `ssh://git@${sshHost}:${sshPort}/${repo}.git`,
    knownHosts,
    keys: (repo) => (sync("/_rig/keys")[repo] ?? []) as ReadonlyArray<DeployKeyView>,
    fault: (f) => {
      spawnSync(process.execPath, ["-e", `fetch(${JSON.stringify(apiUrl + "/_rig/fault")},{method:"POST",body:${JSON.stringify(JSON.stringify(f))}}).then(r=>r.text())`], { encoding: "utf8" })
    },
    requests: () => sync("/_rig/requests"),
    git,
    commitUpstream: (repo, branch, message) =>
      dockerOut(["exec", "-u", "git", container, "sh", "-c",
        `set -e; t=$(mktemp -d); git clone -q /srv/git/${repo}.git $t; cd $t; git checkout -q ${branch} 2>/dev/null || git checkout -q -b ${branch}; git -c user.name=up -c user.email=up@up commit -q --allow-empty -m "$1"; git push -q origin HEAD:${branch}; git rev-parse HEAD; rm -rf $t`, "sh", message]),
    stop: () => void spawnSync("docker", ["rm", "-f", container], { stdio: "ignore" })
  }
}

export { api as rigApi }
