/**
 * How the gate reaches an upstream: git over SSH with the bottle's key and pinned host keys.
 *
 * Guarantees: ssh never trusts a host key it does not already have (StrictHostKeyChecking=yes,
 * the upstream's own known_hosts file, no global or user file, no config file); it offers the
 * given key only (IdentitiesOnly), never asks anything (BatchMode); the agent supplies none of
 * these values. An unknown or changed host key is turned into one line saying how to pin it.
 */
import { spawn } from "node:child_process"
import * as path from "node:path"
import { type GateUpstream, sshHostOf } from "../../src/schema/GitGate.ts"

const q = (s: string) => `'${s.replace(/'/gu, `'\\''`)}'`

/** GIT_SSH_COMMAND for `u`, files resolved under the gate's dir. */
export const sshCommand = (dir: string, u: GateUpstream, controlDir?: string): string =>
  [
    "ssh", "-F", "/dev/null", "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=yes", "-o", "IdentitiesOnly=yes",
    "-o", `UserKnownHostsFile=${q(path.join(dir, u.knownHostsFile))}`, "-o", "GlobalKnownHostsFile=/dev/null",
    "-o", "ConnectTimeout=20", "-o", "ServerAliveInterval=15",
    // One SSH connection per upstream, kept for a minute and shared by the mirror's refreshes
    // and the hook's pushes: each git operation then skips the handshake (~300 ms). Named by
    // the upstream, never by host: two upstreams on one host have different keys and pins,
    // and must never share a connection.
    ...(controlDir ? ["-o", "ControlMaster=auto", "-o", `ControlPath=${q(path.join(controlDir, `cm-${u.name}`))}`, "-o", "ControlPersist=60"] : []),
    ...(u.keyFile ? ["-i", q(path.join(dir, u.keyFile))] : [])
  ].join(" ")

/** The environment for git commands that talk to the upstream. */
export const gitEnv = (dir: string, u: GateUpstream, base: NodeJS.ProcessEnv): NodeJS.ProcessEnv => ({
  ...base,
  GIT_SSH_COMMAND: sshCommand(dir, u, base["BOTTLE_GIT_GATE_SSH_CONTROL"]),
  GIT_TERMINAL_PROMPT: "0",
  GIT_ASKPASS: "/bin/false",
  SSH_ASKPASS: "/bin/false"
})

/** What ssh's output means for the operator, when it is about the host key. */
export const explainSshFailure = (u: GateUpstream, output: string): string | undefined => {
  const host = sshHostOf(u.url)
  const where = host ? (host.port === 22 ? host.host : `[${host.host}]:${host.port}`) : u.url
  const scan = host ? `ssh-keyscan${host.port === 22 ? "" : ` -p ${host.port}`} ${host.host}` : "ssh-keyscan <host>"
  if (/REMOTE HOST IDENTIFICATION HAS CHANGED|Host key for .* has changed/u.test(output)) {
    return `the SSH host key of ${where} does not match the one pinned for upstream ${u.name}: if the host really changed its key, check the new fingerprint and replace the line in the manifest's known_hosts_file for ${u.name}`
  }
  if (/Host key verification failed|No [A-Z0-9-]+ host key is known/u.test(output)) {
    return `the SSH host key of ${where} is not pinned for upstream ${u.name}: run \`${scan}\`, check the fingerprint against the one the host publishes, and put the line in a file named by known_hosts_file in the manifest's git.upstreams entry ${u.name}`
  }
  return undefined
}

export interface Run {
  readonly code: number
  readonly output: string
}

/** Runs git with `args`; collects stdout and stderr together. Never throws. */
export const runGit = (args: ReadonlyArray<string>, options: { readonly cwd?: string; readonly env: NodeJS.ProcessEnv; readonly timeoutMs?: number }): Promise<Run> =>
  new Promise((resolve) => {
    let output = ""
    let child
    try {
      child = spawn("git", args, { cwd: options.cwd, env: options.env, stdio: ["ignore", "pipe", "pipe"] })
    } catch (e) {
      return resolve({ code: 127, output: (e as Error).message })
    }
    const timer = setTimeout(() => child.kill("SIGKILL"), options.timeoutMs ?? 120_000)
    child.stdout.on("data", (c: Buffer) => (output += c.toString()))
    child.stderr.on("data", (c: Buffer) => (output += c.toString()))
    child.on("error", (e) => {
      clearTimeout(timer)
      resolve({ code: 127, output: output + e.message })
    })
    child.on("close", (code, signal) => {
      clearTimeout(timer)
      resolve({ code: code ?? (signal ? 128 : 1), output })
    })
  })
