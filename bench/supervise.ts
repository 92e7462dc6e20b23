/**
 * `npm run bench:supervise`: how soon `bottle approvals --watch` shows a request after the
 * agent's tool call. Host-only, every part a process of its own as in a bottle: the supervise
 * daemon (dist/supervise-daemon.mjs), the official MCP SDK client calling request_approval,
 * and the built CLI's `approvals --watch`. Per request: from the tool call's start to the
 * watcher's line. Target: under 1 s. Prints figures; asserts nothing.
 */
import { execFileSync, spawn } from "node:child_process"
import * as fs from "node:fs"
import * as net from "node:net"
import * as os from "node:os"
import * as path from "node:path"
import { Client } from "@modelcontextprotocol/sdk/client/index.js"
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js"

const root = path.resolve(import.meta.dirname, "..")
if (!fs.existsSync(path.join(root, "dist", "supervise-daemon.mjs"))) execFileSync("npm", ["run", "-s", "build"], { cwd: root, stdio: "inherit" })
const state = fs.mkdtempSync(path.join(os.tmpdir(), "bottle-bench-supervise-"))
const dir = path.join(state, "bottles", "bench", "supervise")
fs.mkdirSync(dir, { recursive: true })
const runs = Number(process.env["RUNS"] ?? 20)

const port = await new Promise<number>((resolve) => {
  const s = net.createServer().listen(0, "127.0.0.1", () => {
    const p = (s.address() as net.AddressInfo).port
    s.close(() => resolve(p))
  })
})
const daemon = spawn(process.execPath, [path.join(root, "dist", "supervise-daemon.mjs")], {
  env: { ...process.env, BOTTLE_SUPERVISE_DIR: dir, BOTTLE_SUPERVISE_LISTEN: `127.0.0.1:${port}`, BOTTLE_READY_FD: "3" },
  stdio: ["ignore", "ignore", "inherit", "pipe"]
})
await new Promise<void>((resolve) => (daemon.stdio[3] as NodeJS.ReadableStream).on("data", () => resolve()))

const seen = new Map<string, number>()
const watcher = spawn(process.execPath, [path.join(root, "bin", "bottle.js"), "approvals", "--watch"], {
  env: { ...process.env, BOTTLE_STATE_DIR: state },
  stdio: ["ignore", "pipe", "inherit"]
})
let out = ""
watcher.stdout!.on("data", (c: Buffer) => {
  out += c.toString()
  for (const m of c.toString().matchAll(/new tool request ([a-z2-9]{12})/g)) if (!seen.has(m[1]!)) seen.set(m[1]!, performance.now())
})
while (!out.includes("waiting for new ones")) await new Promise((r) => setTimeout(r, 20))

const client = new Client({ name: "bench", version: "1" })
await client.connect(new StreamableHTTPClientTransport(new URL(`http://127.0.0.1:${port}/mcp`)))
const latencies: Array<number> = []
for (let i = 0; i < runs; i++) {
  const t0 = performance.now()
  const r = await client.callTool({ name: "request_approval", arguments: { title: `bench ${i}` } })
  const id = (r.structuredContent as { id: string }).id
  const deadline = Date.now() + 5000
  while (!seen.has(id) && Date.now() < deadline) await new Promise((res) => setTimeout(res, 2))
  if (seen.has(id)) latencies.push(seen.get(id)! - t0)
  else console.log(`request ${id}: no line within 5 s`)
  await new Promise((res) => setTimeout(res, 50))
}
await client.close()
watcher.kill("SIGINT")
daemon.kill("SIGTERM")
fs.rmSync(state, { recursive: true, force: true })

const sorted = [...latencies].sort((a, b) => a - b)
const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? NaN
console.log(`approvals --watch latency (tool call → line), ${sorted.length} requests: p50 ${at(0.5).toFixed(0)} ms, p95 ${at(0.95).toFixed(0)} ms, max ${(sorted.at(-1) ?? NaN).toFixed(0)} ms (target < 1000 ms)`)
process.exit(0)
