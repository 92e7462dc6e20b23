/**
 * The supervise daemon for real (bundle/supervise/main.ts in its own process, as the init runs
 * it) spoken to by the official MCP TypeScript SDK's Streamable HTTP client, and answered by
 * the real CLI (`bottle approve|deny`, a process of its own each time): the three tools are
 * listed; request → approve → check says approved with the note; the same for deny and
 * expiry; a request survives a daemon restart and a CLI restart; malformed, oversized and
 * control-character input is an MCP error that leaves the queue as it was, and the daemon
 * keeps serving.
 */
import { type ChildProcess, spawn, spawnSync } from "node:child_process"
import * as fs from "node:fs"
import * as http from "node:http"
import * as net from "node:net"
import * as os from "node:os"
import * as path from "node:path"
import { Client } from "@modelcontextprotocol/sdk/client/index.js"
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js"
import { afterAll, afterEach, assert, describe, it } from "vitest"
import { MAX_CONNECTIONS } from "../bundle/supervise/server.ts"

const ROOT = path.resolve(import.meta.dirname, "..")
const DAEMON = path.join(ROOT, "bundle/supervise/main.ts")
const CLI = path.join(ROOT, "src/cli/main.ts")

const freePort = () =>
  new Promise<number>((resolve, reject) => {
    const s = net.createServer()
    s.on("error", reject)
    s.listen(0, "127.0.0.1", () => {
      const port = (s.address() as net.AddressInfo).port
      s.close(() => resolve(port))
    })
  })

interface Daemon {
  readonly url: URL
  readonly dir: string
  readonly proc: ChildProcess
  readonly stop: () => Promise<void>
}

const running: Array<Daemon> = []

/** Starts the daemon on `dir` and resolves once it wrote `ready` on its readiness pipe. */
const startDaemon = async (dir: string, env: Record<string, string> = {}, port?: number): Promise<Daemon> => {
  const p = port ?? (await freePort())
  const proc = spawn(process.execPath, [DAEMON], {
    env: { PATH: process.env["PATH"] ?? "", BOTTLE_SUPERVISE_DIR: dir, BOTTLE_SUPERVISE_LISTEN: `127.0.0.1:${p}`, BOTTLE_READY_FD: "3", ...env },
    stdio: ["ignore", "pipe", "pipe", "pipe"]
  })
  let log = ""
  proc.stdout!.on("data", (d) => (log += d))
  proc.stderr!.on("data", (d) => (log += d))
  await new Promise<void>((resolve, reject) => {
    const ready = proc.stdio[3] as NodeJS.ReadableStream
    ready.on("data", (d) => String(d).includes("ready") && resolve())
    proc.on("exit", (code) => reject(new Error(`supervise exited ${code}: ${log}`)))
  })
  const d: Daemon = {
    url: new URL(`http://127.0.0.1:${p}/mcp`),
    dir,
    proc,
    stop: () =>
      new Promise<void>((resolve) => {
        if (proc.exitCode !== null) return resolve()
        proc.on("exit", () => resolve())
        proc.kill("SIGTERM")
      })
  }
  running.push(d)
  return d
}

const connect = async (url: URL) => {
  const client = new Client({ name: "supervise-test", version: "1" })
  await client.connect(new StreamableHTTPClientTransport(url))
  return client
}

/** The tool's structured result (the SDK validates it against the tool's output schema). */
const call = async (client: Client, name: string, args: Record<string, unknown>) => {
  const r = await client.callTool({ name, arguments: args })
  return r as { isError?: boolean; structuredContent?: Record<string, unknown>; content: Array<{ type: string; text: string }> }
}

/** The real CLI, in a process of its own (each call is a "CLI restart"). */
const bottle = (stateDir: string, ...args: Array<string>) => {
  const r = spawnSync(process.execPath, [CLI, ...args], { env: { PATH: process.env["PATH"] ?? "", BOTTLE_STATE_DIR: stateDir }, encoding: "utf8" })
  return { code: r.status, stdout: r.stdout, stderr: r.stderr }
}

/** A POST over a plain socket: its status and body, or no status if the server cut it off. */
const rawPost = (url: URL, headers: Record<string, string>, body: string) =>
  new Promise<{ status: number | undefined; body: string }>((resolve) => {
    const req = http.request(url, { method: "POST", headers: { ...headers, "content-length": Buffer.byteLength(body) } }, (res) => {
      let text = ""
      res.on("data", (d) => (text += d))
      res.on("end", () => resolve({ status: res.statusCode, body: text }))
      res.on("error", () => resolve({ status: res.statusCode, body: text }))
    })
    req.on("error", () => resolve({ status: undefined, body: "" }))
    req.end(body)
  })

const bottleState = () => {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), "bb-supervise-test-"))
  const dir = path.join(root, "bottles", "b1", "supervise")
  fs.mkdirSync(dir, { recursive: true })
  return { root, dir }
}

const queueFiles = (dir: string) => {
  const out: Record<string, string> = {}
  for (const sub of ["requests", "answers"]) {
    const d = path.join(dir, sub)
    if (!fs.existsSync(d)) continue
    for (const f of fs.readdirSync(d)) out[`${sub}/${f}`] = fs.readFileSync(path.join(d, f), "utf8")
  }
  return out
}

afterEach(async () => {
  await Promise.all(running.splice(0).map((d) => d.stop()))
})
afterAll(async () => {
  await Promise.all(running.splice(0).map((d) => d.stop()))
})

describe("supervise daemon, official MCP SDK client", () => {
  it("lists the three tools; request → approve (CLI) → check_approval says approved with the note", async () => {
    const { root, dir } = bottleState()
    const d = await startDaemon(dir)
    const client = await connect(d.url)
    const tools = (await client.listTools()).tools.map((t) => t.name).sort()
    assert.deepStrictEqual(tools, ["check_approval", "permission_prompt", "request_approval"])

    const asked = await call(client, "request_approval", { title: "deploy to staging", details: "make deploy" })
    assert.isNotTrue(asked.isError)
    const id = asked.structuredContent!["id"] as string
    assert.strictEqual(asked.structuredContent!["status"], "pending")
    assert.match(id, /^[a-z2-9]{12}$/)

    const listed = bottle(root, "approvals", "--json")
    assert.strictEqual(listed.code, 0, listed.stderr)
    assert.deepStrictEqual(JSON.parse(listed.stdout).map((a: { id: string; status: string }) => [a.id, a.status]), [[id, "pending"]])

    const ok = bottle(root, "approve", id, "--note", "go ahead")
    assert.strictEqual(ok.code, 0, ok.stderr)
    assert.include(ok.stdout, `approved ${id}`)
    const checked = await call(client, "check_approval", { id })
    assert.deepInclude(checked.structuredContent, { id, status: "approved", note: "go ahead" })
    // The text content is the same JSON (what clients without structured content read).
    assert.strictEqual(JSON.parse(checked.content[0]!.text).status, "approved")

    const again = bottle(root, "deny", id)
    assert.strictEqual(again.code, 0)
    assert.include(again.stdout, "first answer stands")
    assert.strictEqual((await call(client, "check_approval", { id })).structuredContent!["status"], "approved")
    await client.close()
  })

  it("deny: check_approval says denied with the note", async () => {
    const { root, dir } = bottleState()
    const d = await startDaemon(dir)
    const client = await connect(d.url)
    const id = (await call(client, "request_approval", { title: "drop the table" })).structuredContent!["id"] as string
    const r = bottle(root, "deny", id, "--note", "not in prod")
    assert.strictEqual(r.code, 0, r.stderr)
    assert.deepInclude((await call(client, "check_approval", { id })).structuredContent, { status: "denied", note: "not in prod" })
    await client.close()
  })

  it("expiry: unanswered past its time it is expired, never approved, and cannot be approved late", async () => {
    const { root, dir } = bottleState()
    // As the launcher writes it from `supervise: { expire_minutes }` (here in seconds).
    fs.writeFileSync(path.join(dir, "config.json"), JSON.stringify({ expirySeconds: 1 }))
    const d = await startDaemon(dir)
    const client = await connect(d.url)
    const id = (await call(client, "request_approval", { title: "something slow" })).structuredContent!["id"] as string
    // wait_seconds: the call itself waits, and returns when the request expires.
    const waited = await call(client, "request_approval", { title: "waits", wait_seconds: 3 })
    assert.strictEqual(waited.structuredContent!["status"], "expired")
    assert.strictEqual((await call(client, "check_approval", { id })).structuredContent!["status"], "expired")
    const late = bottle(root, "approve", id)
    assert.notStrictEqual(late.code, 0)
    assert.include(late.stderr, "expired")
    assert.strictEqual((await call(client, "check_approval", { id })).structuredContent!["status"], "expired")
    await client.close()
  })

  it("wait_seconds holds the call (bounded) with progress notifications, and returns the answer when it comes", async () => {
    const { root, dir } = bottleState()
    const d = await startDaemon(dir)
    const client = await connect(d.url)
    const progress: Array<number> = []
    const unanswered = await client.callTool({ name: "request_approval", arguments: { title: "waits", wait_seconds: 2 } }, undefined, {
      onprogress: (p) => progress.push(p.progress)
    })
    assert.strictEqual((unanswered.structuredContent as Record<string, unknown>)["status"], "pending")
    assert.isAbove(progress.length, 0, "progress notifications while waiting")
    const waiting = call(client, "request_approval", { title: "answered while waiting", wait_seconds: 20 })
    let id: string | undefined
    for (let i = 0; i < 200 && id === undefined; i++) {
      await new Promise((r) => setTimeout(r, 50))
      id = (JSON.parse(bottle(root, "approvals", "--json").stdout) as Array<{ id: string; title: string }>).find((a) => a.title === "answered while waiting")?.id
    }
    assert.strictEqual(bottle(root, "approve", id!, "--note", "now").code, 0)
    assert.deepInclude((await waiting).structuredContent, { id, status: "approved", note: "now" })
    await client.close()
  }, 60_000)

  it("a request survives a daemon restart and a CLI restart", async () => {
    const { root, dir } = bottleState()
    const first = await startDaemon(dir)
    let client = await connect(first.url)
    const id = (await call(client, "request_approval", { title: "restart me" })).structuredContent!["id"] as string
    await client.close()
    await first.stop()
    // The CLI (a new process) answers while the daemon is down.
    const r = bottle(root, "approve", id, "--note", "after restart")
    assert.strictEqual(r.code, 0, r.stderr)
    const second = await startDaemon(dir, {}, Number(first.url.port))
    client = await connect(second.url)
    assert.deepInclude((await call(client, "check_approval", { id })).structuredContent, { status: "approved", note: "after restart" })
    const shown = bottle(root, "approvals", "b1", "--json")
    assert.deepInclude(JSON.parse(shown.stdout)[0], { id, status: "approved", note: "after restart" })
    await client.close()
  })

  it("malformed, oversized and control-character input is an MCP error; the queue is intact and the daemon serves on", async () => {
    const { dir } = bottleState()
    const d = await startDaemon(dir)
    const client = await connect(d.url)
    await call(client, "request_approval", { title: "the one good request" })
    const before = queueFiles(dir)
    assert.strictEqual(Object.keys(before).length, 1)

    const bad: Array<[string, Record<string, unknown>]> = [
      ["request_approval", {}],
      ["request_approval", { title: 42 }],
      ["request_approval", { title: "" }],
      ["request_approval", { title: "x".repeat(201) }],
      ["request_approval", { title: "ok", details: "y".repeat(8001) }],
      ["request_approval", { title: "clear\u001b[2J screen" }],
      ["request_approval", { title: "ok", details: "bell \u0007" }],
      ["request_approval", { title: "rtl \u202e override" }],
      ["request_approval", { title: "ok", kind: "egress" }],
      ["request_approval", { title: "ok", wait_seconds: 26 }],
      ["check_approval", { id: "../../etc/passwd" }],
      ["check_approval", { id: "aaaaaaaaaaaa" }],
      ["permission_prompt", { tool_name: "Bash" }],
      ["permission_prompt", { tool_name: "Bash\u0000", input: {} }]
    ]
    for (const [name, args] of bad) {
      let failed = false
      try {
        const r = await call(client, name, args)
        failed = r.isError === true
      } catch {
        failed = true // a JSON-RPC error
      }
      assert.isTrue(failed, `${name} ${JSON.stringify(args).slice(0, 80)} must be refused`)
    }
    // Raw JSON-RPC garbage and an oversized body, straight over HTTP.
    const headers = { "content-type": "application/json", accept: "application/json, text/event-stream" }
    const garbage = await rawPost(d.url, headers, "{not json")
    assert.isTrue((garbage.status ?? 0) >= 400 || /"error"/.test(garbage.body), `garbage is a JSON-RPC error: ${garbage.status} ${garbage.body}`)
    const huge = await rawPost(d.url, headers, JSON.stringify({ jsonrpc: "2.0", id: 1, method: "ping", params: { pad: "z".repeat(2_000_000) } }))
    assert.isTrue(huge.status === undefined || huge.status >= 400, `an oversized body is refused: ${huge.status}`)

    assert.deepStrictEqual(queueFiles(dir), before, "the queue is as it was")
    assert.isNull(d.proc.exitCode, "the daemon is still running")
    const still = await call(client, "request_approval", { title: "still serving" })
    assert.strictEqual(still.structuredContent!["status"], "pending")
    await client.close()
  })

  it("a flood of idle connections is cut at the bound; the daemon lives and serves once they go", async () => {
    const { dir } = bottleState()
    const d = await startDaemon(dir)
    const sockets = await Promise.all(Array.from({ length: 320 }, () => new Promise<net.Socket>((resolve) => {
      const s = net.connect(Number(d.url.port), "127.0.0.1", () => resolve(s))
      s.on("error", () => resolve(s))
    })))
    await new Promise((r) => setTimeout(r, 300))
    const cut = sockets.filter((s) => s.destroyed || s.readableEnded).length
    assert.isAtLeast(cut, 320 - 256, "connections past the bound are refused")
    for (const s of sockets) s.destroy()
    await new Promise((r) => setTimeout(r, 200))
    assert.isNull(d.proc.exitCode)
    const client = await connect(d.url)
    assert.strictEqual((await call(client, "request_approval", { title: "after the flood" })).structuredContent!["status"], "pending")
    await client.close()
  })

  it("a flood of initializes (each a session holding a 200 KB clientInfo) cannot grow the heap until the daemon dies: the oldest sessions are ended", async () => {
    const { dir } = bottleState()
    // A small heap, so that unbounded sessions would kill it within the flood.
    const d = await startDaemon(dir, { NODE_OPTIONS: "--max-old-space-size=96" })
    const first = await connect(d.url)
    const headers = { "content-type": "application/json", accept: "application/json, text/event-stream" }
    const init = JSON.stringify({ jsonrpc: "2.0", id: 0, method: "initialize", params: { protocolVersion: "2025-06-18", capabilities: {}, clientInfo: { name: "x".repeat(200_000), version: "1" } } })
    let ok = 0
    for (let i = 0; i < 600 && d.proc.exitCode === null; i += 20) {
      const rs = await Promise.all(Array.from({ length: 20 }, () => rawPost(d.url, headers, init)))
      ok += rs.filter((r) => r.status === 200).length
    }
    // The same with every connection but one held by the agent: the daemon's own DELETEs still get in.
    http.globalAgent.destroy()
    await new Promise((r) => setTimeout(r, 200))
    const hold = () => new Promise<net.Socket>((resolve) => {
      const s = net.connect(Number(d.url.port), "127.0.0.1", () => {
        s.write("POST /mcp HTTP/1.1\r\nHost: x\r\n") // headers never finished: held until headersTimeout
        resolve(s)
      })
      s.on("error", () => resolve(s))
    })
    let held: Array<net.Socket> = []
    for (let round = 0; round < 20 && held.length < MAX_CONNECTIONS - 1; round++) {
      held.push(...(await Promise.all(Array.from({ length: MAX_CONNECTIONS - 1 - held.length }, hold))))
      await new Promise((r) => setTimeout(r, 200))
      held = held.filter((s) => !(s.destroyed || s.readableEnded))
    }
    assert.strictEqual(held.length, MAX_CONNECTIONS - 1)
    const one = new http.Agent({ keepAlive: true, maxSockets: 1 })
    const post = () => new Promise<string | undefined>((resolve) => {
      const req = http.request(d.url, { method: "POST", agent: one, headers: { ...headers, "content-length": Buffer.byteLength(init) } }, (res) => {
        res.resume()
        res.on("end", () => resolve(res.statusCode === 200 ? String(res.headers["mcp-session-id"]) : undefined))
      })
      req.on("error", () => resolve(undefined))
      req.end(init)
    })
    const made: Array<string> = []
    for (let i = 0; i < 600 && d.proc.exitCode === null; i++) {
      // A connection the server just closed may not be counted down yet: try again shortly.
      for (let tries = 0; tries < 5; tries++) {
        const sid = await post()
        if (sid !== undefined) {
          made.push(sid)
          break
        }
        await new Promise((r) => setTimeout(r, 50))
      }
    }
    one.destroy()
    for (const s of held) s.destroy()
    await new Promise((r) => setTimeout(r, 300))
    assert.isNull(d.proc.exitCode, "the daemon is still running")
    assert.strictEqual(ok, 600)
    assert.isAbove(made.length, 500)
    // The sessions made while the agent held the connections were ended all the same.
    for (const sid of made.slice(0, 20)) {
      const ping = await rawPost(d.url, { ...headers, "mcp-session-id": sid }, JSON.stringify({ jsonrpc: "2.0", id: 1, method: "ping" }))
      assert.strictEqual(ping.status, 404, `session ${sid} was ended`)
    }
    // The first client's session was the least recently used: ended (404), so it must start over.
    let ended = false
    try {
      await call(first, "request_approval", { title: "on an ended session" })
    } catch {
      ended = true
    }
    assert.isTrue(ended, "the oldest session was ended")
    const client = await connect(d.url)
    assert.strictEqual((await call(client, "request_approval", { title: "after the flood" })).structuredContent!["status"], "pending")
    await client.close()
  }, 120_000)

  it("permission_prompt answers in Claude Code's shape: deny while pending (same request on retry), allow with updatedInput once approved", async () => {
    const { root, dir } = bottleState()
    // A short expiry keeps the first (pending, 25 s bounded) call from holding the test long:
    // the wait ends at the expiry.
    const d = await startDaemon(dir)
    const client = await connect(d.url)
    const input = { command: "rm -rf build", description: "clean" }
    const pending = client.callTool({ name: "permission_prompt", arguments: { tool_name: "Bash", input, tool_use_id: "toolu_1" } })
    // The operator answers while the call waits.
    let id: string | undefined
    for (let i = 0; i < 100 && id === undefined; i++) {
      await new Promise((r) => setTimeout(r, 50))
      const listed = JSON.parse(bottle(root, "approvals", "--json").stdout) as Array<{ id: string; kind: string; title: string }>
      id = listed.find((a) => a.kind === "permission")?.id
    }
    assert.isDefined(id)
    const shown = JSON.parse(bottle(root, "approvals", "--json").stdout)[0]
    assert.strictEqual(shown.title, "Bash: rm -rf build")
    assert.strictEqual(bottle(root, "approve", id!).code, 0)
    const r = (await pending) as { content: Array<{ type: string; text: string }>; structuredContent?: unknown }
    // Claude Code's contract: exactly one text block holding the JSON decision, nothing else
    // (it refuses a result that also has structuredContent).
    assert.strictEqual(r.content.length, 1)
    assert.strictEqual(r.content[0]!.type, "text")
    assert.isUndefined(r.structuredContent)
    assert.deepStrictEqual(JSON.parse(r.content[0]!.text), { behavior: "allow", updatedInput: input })

    // An approval is used once: the same call again is a new request, not a standing permission.
    const againCall = client.callTool({ name: "permission_prompt", arguments: { tool_name: "Bash", input, tool_use_id: "toolu_2" } })
    let idAgain: string | undefined
    for (let i = 0; i < 100 && idAgain === undefined; i++) {
      await new Promise((r) => setTimeout(r, 50))
      idAgain = (JSON.parse(bottle(root, "approvals", "--json").stdout) as Array<{ id: string; status: string; kind: string }>).find((a) => a.kind === "permission" && a.status === "pending")?.id
    }
    assert.isDefined(idAgain)
    assert.notStrictEqual(idAgain, id)
    assert.strictEqual(bottle(root, "deny", idAgain!).code, 0)
    assert.strictEqual(JSON.parse(((await againCall) as { content: Array<{ text: string }> }).content[0]!.text).behavior, "deny")

    const other = client.callTool({ name: "permission_prompt", arguments: { tool_name: "Write", input: { file_path: "/etc/x" } } })
    let id2: string | undefined
    for (let i = 0; i < 100 && id2 === undefined; i++) {
      await new Promise((r) => setTimeout(r, 50))
      id2 = (JSON.parse(bottle(root, "approvals", "--json").stdout) as Array<{ id: string; status: string; kind: string }>).find((a) => a.kind === "permission" && a.status === "pending")?.id
    }
    assert.strictEqual(bottle(root, "deny", id2!, "--note", "no writes to /etc").code, 0)
    const denied = JSON.parse(((await other) as { content: Array<{ text: string }> }).content[0]!.text)
    assert.strictEqual(denied.behavior, "deny")
    assert.include(denied.message, "no writes to /etc")
    await client.close()
  }, 60_000)
})
