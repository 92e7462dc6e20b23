/**
 * The git gate's smart-HTTP front: one port per upstream, each serving one repository
 * (`/<name>.git`) from a bare mirror through Debian's `git http-backend` (CGI).
 *
 * Guarantees:
 *   - fetch and clone: the mirror is brought up to date from the upstream before the ref
 *     advertisement is answered (a commit pushed upstream after start is seen by the next
 *     fetch); refreshes of one mirror never overlap. A failed refresh is answered as a git
 *     protocol error (`ERR …`), which git prints as `remote error: …`;
 *   - push: receive-pack runs the pre-receive hook (hook.ts), which checks the policy and
 *     forwards to the upstream; pushes are refused at the door only for what git would send
 *     no hook (the dumb protocol, other paths);
 *   - only the smart protocol's three endpoints of the one repository are served; anything
 *     else is a 404. A request, however malformed, ends in an answer or a closed socket, never
 *     in the daemon's death; http-backends are bounded in number and time, connections in
 *     number (past MAX_CONNECTIONS a new one is closed at once, and the log says so).
 */
import { spawn } from "node:child_process"
import * as fs from "node:fs"
import * as http from "node:http"
import * as path from "node:path"
import type { GateUpstream } from "../../src/schema/GitGate.ts"
import { explainSshFailure, gitEnv, runGit } from "./upstream.ts"

const MAX_BACKENDS = 16
/** Connections one port serves at once: the agent's git needs a few. */
export const MAX_CONNECTIONS = 256
const BACKEND_TIMEOUT_MS = 10 * 60_000

export interface Mirror {
  readonly upstream: GateUpstream
  /** The bare repository, `<root>/<name>.git`. */
  readonly gitDir: string
  /** Brings the mirror up to date; resolves with why it failed, if it did. */
  readonly refresh: () => Promise<string | undefined>
}

/** Creates the bare mirror of `u` under `root`, its hook calling back into this program. */
export const makeMirror = async (dir: string, root: string, u: GateUpstream, hookArgv: ReadonlyArray<string>): Promise<Mirror> => {
  const gitDir = path.join(root, `${u.name}.git`)
  const init = await runGit(["init", "-q", "--bare", gitDir], { env: process.env })
  if (init.code !== 0) throw new Error(`git init ${gitDir}: ${init.output.trim()}`)
  for (const [k, v] of [
    ["http.receivepack", "true"],
    ["http.uploadpack", "true"],
    ["receive.fsckObjects", "true"],
    ["receive.denyDeletes", "false"],
    ["receive.denyNonFastForwards", "false"],
    ["gc.auto", "0"],
    ["core.hooksPath", path.join(gitDir, "hooks")]
  ] as const) {
    const r = await runGit(["--git-dir", gitDir, "config", k, v], { env: process.env })
    if (r.code !== 0) throw new Error(`git config ${k}: ${r.output.trim()}`)
  }
  const q = (s: string) => `'${s.replace(/'/gu, `'\\''`)}'`
  fs.writeFileSync(path.join(gitDir, "hooks", "pre-receive"), `#!/bin/sh\nexec ${hookArgv.map(q).join(" ")}\n`, { mode: 0o755 })
  // The mirror's HEAD follows the upstream's default branch (asked once), so a clone checks it out.
  let headKnown = false
  const setHead = async () => {
    const r = await runGit(["ls-remote", "--symref", u.url, "HEAD"], { env: gitEnv(dir, u, process.env) })
    const m = /^ref: (refs\/heads\/\S+)\s+HEAD$/mu.exec(r.output)
    if (r.code !== 0 || !m) return
    if ((await runGit(["--git-dir", gitDir, "symbolic-ref", "HEAD", m[1]!], { env: process.env })).code === 0) headKnown = true
  }
  let running: Promise<string | undefined> | undefined
  let again: Promise<string | undefined> | undefined
  const once = async (): Promise<string | undefined> => {
    const r = await runGit(
      ["--git-dir", gitDir, "fetch", "--quiet", "--prune", "--force", "--no-write-fetch-head", u.url, "+refs/heads/*:refs/heads/*", "+refs/tags/*:refs/tags/*"],
      { env: gitEnv(dir, u, process.env) }
    )
    if (r.code === 0) {
      if (!headKnown) await setHead()
      return undefined
    }
    return explainSshFailure(u, r.output) ?? `could not fetch ${u.name} from its upstream: ${r.output.trim().split("\n").slice(-3).join(" / ")}`
  }
  // One refresh at a time; a request arriving during one waits for the next, which starts
  // after it (so it sees everything pushed upstream before the request came).
  const refresh = (): Promise<string | undefined> => {
    if (!running) {
      running = once().finally(() => (running = undefined))
      return running
    }
    if (!again) again = running.then(() => (again = undefined, refresh()))
    return again
  }
  return { upstream: u, gitDir, refresh }
}

const pkt = (s: string) => (s.length + 4).toString(16).padStart(4, "0") + s

/** A smart-protocol ref advertisement that is an error: git prints `remote error: <message>`. */
const advertiseError = (res: http.ServerResponse, service: string, message: string) => {
  res.writeHead(200, { "content-type": `application/x-${service}-advertisement`, "cache-control": "no-cache" })
  res.end(pkt(`# service=${service}\n`) + "0000" + pkt(`ERR git-gate: ${message.replace(/\s+/gu, " ")}\n`))
}

export interface GateServer {
  readonly server: http.Server
  readonly port: number
}

/** Serves `mirror` on host:port; resolves once listening. */
export const serveMirror = (mirror: Mirror, host: string, port: number, log: (line: string) => void): Promise<GateServer> => {
  const name = mirror.upstream.name
  const root = path.dirname(mirror.gitDir)
  let backends = 0
  const handle = async (req: http.IncomingMessage, res: http.ServerResponse) => {
    const url = new URL(req.url ?? "/", "http://gate")
    const prefix = `/${name}.git/`
    const tail = url.pathname.startsWith(prefix) ? url.pathname.slice(prefix.length) : undefined
    const service = url.searchParams.get("service")
    const ok =
      (tail === "info/refs" && req.method === "GET" && (service === "git-upload-pack" || service === "git-receive-pack")) ||
      ((tail === "git-upload-pack" || tail === "git-receive-pack") && req.method === "POST")
    if (!ok) {
      res.writeHead(404, { "content-type": "text/plain" })
      return res.end(`git-gate: this port serves ${prefix} over git's smart HTTP protocol only\n`)
    }
    if (backends >= MAX_BACKENDS) {
      res.writeHead(503, { "content-type": "text/plain", "retry-after": "1" })
      return res.end("git-gate: busy\n")
    }
    backends++
    try {
      if (tail === "info/refs") {
        const failed = await mirror.refresh()
        if (failed !== undefined) {
          log(`refresh of ${name} failed: ${failed}`)
          // A push still reaches the hook, which forwards and reports the upstream's answer;
          // a fetch from a mirror that cannot be refreshed would be stale: refused.
          if (service === "git-upload-pack") return advertiseError(res, service, failed)
          if (service === "git-receive-pack" && /host key/u.test(failed)) return advertiseError(res, service, failed)
        }
      }
      await cgi(req, res, root, `/${name}.git/${tail}`, url.search.slice(1))
    } finally {
      backends--
    }
  }
  const server = http.createServer((req, res) => {
    handle(req, res).catch((e: unknown) => {
      log(`request failed: ${(e as Error).message}`)
      if (!res.headersSent) res.writeHead(500, { "content-type": "text/plain" })
      res.end("git-gate: internal error\n")
    })
  })
  server.on("clientError", (_e, socket) => socket.destroy())
  server.maxConnections = MAX_CONNECTIONS
  let dropped = 0
  server.on("drop", () => {
    if (dropped++ % 1000 === 0) log(`${name}: ${MAX_CONNECTIONS} connections open, refused a new one (${dropped} so far)`)
  })
  server.headersTimeout = 30_000
  server.requestTimeout = BACKEND_TIMEOUT_MS
  return new Promise((resolve, reject) => {
    server.once("error", reject)
    server.listen(port, host, () => {
      server.off("error", reject)
      server.on("error", (e) => log(`server error: ${e.message}`))
      resolve({ server, port })
    })
  })
}

/** Runs `git http-backend` for one request (CGI/1.1), streaming both ways. */
const cgi = (req: http.IncomingMessage, res: http.ServerResponse, root: string, pathInfo: string, query: string): Promise<void> =>
  new Promise((resolve) => {
    const env: NodeJS.ProcessEnv = {
      PATH: process.env["PATH"],
      HOME: process.env["HOME"],
      ...(process.env["BOTTLE_GIT_GATE_SSH_CONTROL"] ? { BOTTLE_GIT_GATE_SSH_CONTROL: process.env["BOTTLE_GIT_GATE_SSH_CONTROL"] } : {}),
      ...(process.env["NODE_COMPILE_CACHE"] ? { NODE_COMPILE_CACHE: process.env["NODE_COMPILE_CACHE"] } : {}),
      GIT_PROJECT_ROOT: root,
      GIT_HTTP_EXPORT_ALL: "1",
      GATEWAY_INTERFACE: "CGI/1.1",
      REQUEST_METHOD: req.method ?? "GET",
      PATH_INFO: pathInfo,
      QUERY_STRING: query,
      REMOTE_ADDR: req.socket.remoteAddress ?? "",
      REMOTE_USER: "agent",
      CONTENT_TYPE: req.headers["content-type"] ?? "",
      ...(req.headers["content-length"] ? { CONTENT_LENGTH: req.headers["content-length"] } : {}),
      ...(req.headers["content-encoding"] ? { HTTP_CONTENT_ENCODING: req.headers["content-encoding"] } : {}),
      ...(typeof req.headers["git-protocol"] === "string" ? { GIT_PROTOCOL: req.headers["git-protocol"] } : {})
    }
    const child = spawn("git", ["http-backend"], { env, stdio: ["pipe", "pipe", "pipe"] })
    const timer = setTimeout(() => child.kill("SIGKILL"), BACKEND_TIMEOUT_MS)
    let head = Buffer.alloc(0)
    let headersDone = false
    let stderr = ""
    const finish = () => {
      clearTimeout(timer)
      resolve()
    }
    child.on("error", (e) => {
      if (!res.headersSent) res.writeHead(500, { "content-type": "text/plain" })
      res.end(`git-gate: ${e.message}\n`)
      finish()
    })
    child.stderr.on("data", (c: Buffer) => (stderr = (stderr + c.toString()).slice(-4000)))
    child.stdin.on("error", () => {})
    req.on("error", () => child.kill("SIGKILL"))
    res.on("close", () => {
      if (child.exitCode === null) child.kill("SIGKILL")
    })
    req.pipe(child.stdin)
    child.stdout.on("data", (c: Buffer) => {
      if (headersDone) {
        res.write(c)
        return
      }
      head = Buffer.concat([head, c])
      const end = head.indexOf("\r\n\r\n")
      const endLf = head.indexOf("\n\n")
      const cut = end >= 0 ? { at: end, len: 4 } : endLf >= 0 ? { at: endLf, len: 2 } : undefined
      if (!cut) {
        if (head.length > 64 * 1024) child.kill("SIGKILL")
        return
      }
      headersDone = true
      let status = 200
      const headers: Record<string, string> = {}
      for (const line of head.subarray(0, cut.at).toString().split(/\r?\n/u)) {
        const i = line.indexOf(":")
        if (i <= 0) continue
        const k = line.slice(0, i).trim()
        const v = line.slice(i + 1).trim()
        if (k.toLowerCase() === "status") status = Number(v.split(" ")[0]) || 500
        else headers[k] = v
      }
      res.writeHead(status, headers)
      res.write(head.subarray(cut.at + cut.len))
    })
    child.on("close", () => {
      if (!headersDone) {
        if (!res.headersSent) res.writeHead(500, { "content-type": "text/plain" })
        res.end(`git-gate: http-backend failed: ${stderr.trim().slice(-500)}\n`)
      } else res.end()
      finish()
    })
  })
