/**
 * A real HTTPS upstream on loopback for tests and benchmarks: records what it received
 * (headers, body) and serves a few behaviours — echo, server-sent events, a large streamed
 * body, a token echo, and a WebSocket echo.
 */
import * as https from "node:https"
import type * as net from "node:net"
import * as zlib from "node:zlib"
import { WebSocketServer } from "ws"

export interface Received {
  readonly method: string
  readonly url: string
  readonly headers: Record<string, string | Array<string> | undefined>
  readonly rawHeaders: Array<string>
  readonly rawTrailers: Array<string>
  readonly body: string
}

export interface Upstream {
  readonly port: number
  readonly received: Array<Received>
  readonly close: () => Promise<void>
}

export const startUpstream = (cert: { certPem: string; keyPem: string }, opts: { sseIntervalMs?: number; sseEvents?: number } = {}): Promise<Upstream> =>
  new Promise((resolve) => {
    const received: Array<Received> = []
    const small = Buffer.from("ok\n")
    const server = https.createServer({ cert: cert.certPem, key: cert.keyPem }, (req, res) => {
      const url = req.url ?? "/"
      if (url === "/small") {
        // Hot path for benchmarks: no recording.
        req.resume()
        res.writeHead(200, { "content-type": "text/plain", "content-length": small.length })
        res.end(small)
        return
      }
      if (url.startsWith("/big")) {
        req.resume()
        const total = Number(new URL(url, "https://x").searchParams.get("mb") ?? "64") * 1024 * 1024
        const chunk = Buffer.alloc(64 * 1024, 0x61)
        res.writeHead(200, { "content-type": "application/octet-stream", "content-length": total })
        let sent = 0
        const pump = () => {
          while (sent < total) {
            sent += chunk.length
            if (!res.write(chunk)) return res.once("drain", pump)
          }
          res.end()
        }
        pump()
        return
      }
      const chunks: Array<Buffer> = []
      req.on("data", (c: Buffer) => chunks.push(c))
      req.on("end", () => {
        const body = Buffer.concat(chunks).toString("utf8")
        received.push({ method: req.method ?? "", url, headers: req.headers, rawHeaders: req.rawHeaders, rawTrailers: req.rawTrailers, body })
        if (url.startsWith("/sse")) {
          const n = opts.sseEvents ?? 5
          const every = opts.sseIntervalMs ?? 150
          res.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-cache" })
          res.flushHeaders()
          let i = 0
          const tick = () => {
            res.write(`event: tick\ndata: ${JSON.stringify({ i, at: Date.now() })}\n\n`)
            if (++i < n) setTimeout(tick, every)
            else res.end()
          }
          tick()
          return
        }
        if (url.startsWith("/echo-split")) {
          // The credential's token cut in two and echoed in two headers (?how=adjacent|apart|
          // cookies|name): each half alone is no token, read together they are.
          const token = String(req.headers["authorization"] ?? "").replace(/^Bearer /, "")
          const a = token.slice(0, token.length >> 1)
          const b = token.slice(token.length >> 1)
          const how = new URL(url, "https://x").searchParams.get("how")
          const raw =
            how === "apart" ? ["x-n", a, "x-other", "1", "x-n", b]
            : how === "cookies" ? ["set-cookie", `s.0=${a}; Path=/`, "x-other", "1", "set-cookie", `s.1=${b}; Path=/; Secure`]
            : how === "name" ? [`x-${a}`, b]
            : ["x-part-a", a, "x-part-b", b]
          res.writeHead(200, [...raw, "content-type", "text/plain"])
          res.end("ok")
          return
        }
        if (url.startsWith("/echo-everywhere/hints")) {
          // The credential in a 103 Early Hints header, the reason phrase and a header name.
          const auth = String(req.headers["authorization"] ?? "")
          res.writeEarlyHints({ link: "</style.css>; rel=preload; as=style", "x-hint-auth": auth })
          res.statusMessage = `OK ${auth}`
          res.setHeader(`x-${auth.replace(/^Bearer /, "")}`, "named")
          res.end("ok")
          return
        }
        if (url.startsWith("/echo-everywhere")) {
          // The credential it got, echoed in a header, a trailer and the body (gzip-encoded
          // when the client accepts it, or always with ?gzip=always).
          const auth = String(req.headers["authorization"] ?? "")
          const echo = Buffer.from(JSON.stringify({ auth }))
          const gzip = url.includes("gzip=always") || String(req.headers["accept-encoding"] ?? "").includes("gzip")
          res.writeHead(200, { "content-type": "application/json", "x-echo-auth": auth, trailer: "x-echo-trailer", ...(gzip ? { "content-encoding": "gzip" } : {}) })
          res.write(gzip ? zlib.gzipSync(echo) : echo)
          res.addTrailers({ "x-echo-trailer": auth })
          res.end()
          return
        }
        if (url.startsWith("/echo-auth")) {
          const auth = String(req.headers["authorization"] ?? "")
          res.writeHead(200, { "content-type": "text/plain" })
          res.end(`you sent: ${auth}\n`)
          return
        }
        res.writeHead(200, { "content-type": "application/json" })
        res.end(JSON.stringify({ method: req.method, url, headers: req.headers, body }))
      })
    })
    const wss = new WebSocketServer({ noServer: true })
    server.on("upgrade", (req, socket, head) => {
      received.push({ method: req.method ?? "", url: req.url ?? "", headers: req.headers, rawHeaders: req.rawHeaders, rawTrailers: [], body: "" })
      const auth = String(req.headers["authorization"] ?? "")
      if (req.url?.startsWith("/ws/refuse")) {
        // An upgrade answered without 101, echoing the credential in a header and the body.
        const body = `no websocket for ${auth}\n`
        socket.end(`HTTP/1.1 403 Forbidden ${auth}\r\nx-echo-auth: ${auth}\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`)
        return
      }
      wss.handleUpgrade(req, socket as net.Socket, head, (ws) =>
        ws.on("message", (m) => ws.send(m.toString() === "whoami" ? `you are ${auth}` : `echo:${m.toString()}`))
      )
    })
    server.keepAliveTimeout = 30_000
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as net.AddressInfo
      resolve({
        port,
        received,
        close: () =>
          new Promise<void>((r) => {
            wss.close()
            server.closeAllConnections()
            server.close(() => r())
          })
      })
    })
  })
