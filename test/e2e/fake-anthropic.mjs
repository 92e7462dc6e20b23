// A stand-in for Anthropic's Messages API (HTTPS, under the name api.anthropic.com on the
// bottle's egress network), so Claude Code itself can run in the agent without a model: the
// first turn asks to run a Bash command (a tool_use that needs permission), the turn after a
// tool_result answers in text. It speaks the real wire format (SSE when `stream` is set) and
// logs one JSON line per request (path, x-api-key seen, whether a tool_result came back).
import * as fs from "node:fs"
import * as https from "node:https"

const COMMAND = process.env.FAKE_COMMAND ?? "touch /tmp/permission-proof"

const sse = (res, events) => {
  res.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-cache" })
  for (const e of events) res.write(`event: ${e.type}\ndata: ${JSON.stringify(e)}\n\n`)
  res.end()
}

const reply = (res, body, stream) => {
  const blocks = body.content
  if (!stream) {
    res.writeHead(200, { "content-type": "application/json" })
    res.end(JSON.stringify(body))
    return
  }
  const events = [{ type: "message_start", message: { ...body, content: [], stop_reason: null, usage: { input_tokens: 10, output_tokens: 1 } } }]
  blocks.forEach((b, index) => {
    if (b.type === "tool_use") {
      events.push({ type: "content_block_start", index, content_block: { type: "tool_use", id: b.id, name: b.name, input: {} } })
      events.push({ type: "content_block_delta", index, delta: { type: "input_json_delta", partial_json: JSON.stringify(b.input) } })
    } else {
      events.push({ type: "content_block_start", index, content_block: { type: "text", text: "" } })
      events.push({ type: "content_block_delta", index, delta: { type: "text_delta", text: b.text } })
    }
    events.push({ type: "content_block_stop", index })
  })
  events.push({ type: "message_delta", delta: { stop_reason: body.stop_reason, stop_sequence: null }, usage: { output_tokens: 5 } })
  events.push({ type: "message_stop" })
  sse(res, events)
}

let n = 0
const server = https.createServer({ cert: fs.readFileSync("/srv/cert.pem"), key: fs.readFileSync("/srv/key.pem") }, (req, res) => {
  let text = ""
  req.on("data", (c) => (text += c))
  req.on("end", () => {
    let body = {}
    try { body = JSON.parse(text || "{}") } catch {}
    const messages = Array.isArray(body.messages) ? body.messages : []
    const toolResult = messages.flatMap((m) => (Array.isArray(m.content) ? m.content : [])).find((c) => c && c.type === "tool_result")
    const hasBash = Array.isArray(body.tools) && body.tools.some((t) => t && t.name === "Bash")
    console.log(JSON.stringify({ method: req.method, url: req.url, apiKey: req.headers["x-api-key"] ?? null, tools: hasBash, toolResult: toolResult ? JSON.stringify(toolResult.content).slice(0, 200) : null }))
    if (!req.url.startsWith("/v1/messages") || req.url.startsWith("/v1/messages/count_tokens")) {
      res.writeHead(200, { "content-type": "application/json" })
      res.end(req.url.includes("count_tokens") ? JSON.stringify({ input_tokens: 10 }) : "{}")
      return
    }
    const base = { id: `msg_${++n}`, type: "message", role: "assistant", model: body.model ?? "claude-test", stop_sequence: null, usage: { input_tokens: 10, output_tokens: 5 } }
    if (hasBash && !toolResult) {
      reply(res, { ...base, stop_reason: "tool_use", content: [{ type: "tool_use", id: `toolu_${n}`, name: "Bash", input: { command: COMMAND, description: "Create the proof file" } }] }, body.stream)
    } else {
      reply(res, { ...base, stop_reason: "end_turn", content: [{ type: "text", text: toolResult ? "done" : "ok" }] }, body.stream)
    }
  })
})
server.listen(443, () => console.log("fake anthropic listening"))
process.on("SIGTERM", () => process.exit(0))
