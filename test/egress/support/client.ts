/**
 * Clients that go through the proxy the way an agent does: CONNECT, then TLS trusting only
 * the bottle CA (with SNI), then HTTP/1.1 over that tunnel. Knobs let a test lie (different
 * SNI or Host than the CONNECT target) to check the proxy refuses.
 */
import * as http from "node:http"
import * as http2 from "node:http2"
import * as https from "node:https"
import * as net from "node:net"
import * as tls from "node:tls"

export interface ProxiedRequest {
  readonly proxyPort: number
  readonly ca: string
  readonly host: string
  readonly port: number
  readonly path?: string
  readonly method?: string
  readonly headers?: Record<string, string | Array<string>>
  readonly body?: string | Buffer
  /** Override TLS SNI (default: host). */
  readonly sni?: string
}

export interface ProxiedResponse {
  readonly status: number
  readonly headers: http.IncomingHttpHeaders
  readonly body: string
}

/** Opens a CONNECT tunnel; resolves with the socket or the proxy's refusal. */
export const connectTunnel = (proxyPort: number, target: string): Promise<{ socket: net.Socket } | { status: number; body: string }> =>
  new Promise((resolve, reject) => {
    const req = http.request({ host: "127.0.0.1", port: proxyPort, method: "CONNECT", path: target, headers: { host: target } })
    req.once("connect", (res, socket, head) => {
      if (res.statusCode === 200) {
        if (head.length > 0) socket.unshift(head)
        resolve({ socket })
      } else {
        const chunks: Array<Buffer> = [head]
        socket.on("data", (c: Buffer) => chunks.push(c))
        socket.on("end", () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString() }))
        socket.on("error", () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString() }))
      }
    })
    req.once("error", reject)
    req.end()
  })

export const tlsOverTunnel = (socket: net.Socket, ca: string, servername: string, alpn?: Array<string>): Promise<tls.TLSSocket> =>
  new Promise((resolve, reject) => {
    const t = tls.connect({ socket, ca, servername, ...(alpn ? { ALPNProtocols: alpn } : {}) }, () => resolve(t))
    t.once("error", reject)
  })

export const proxiedRequest = async (r: ProxiedRequest): Promise<ProxiedResponse> => {
  const target = `${r.host}:${r.port}`
  const tunnel = await connectTunnel(r.proxyPort, target)
  if (!("socket" in tunnel)) return { status: tunnel.status, headers: {}, body: tunnel.body }
  const socket = await tlsOverTunnel(tunnel.socket, r.ca, r.sni ?? r.host)
  return new Promise((resolve, reject) => {
    const req = https.request(
      {
        host: r.host,
        port: r.port,
        method: r.method ?? "GET",
        path: r.path ?? "/",
        headers: { host: target, ...r.headers },
        createConnection: () => socket
      },
      (res) => {
        const chunks: Array<Buffer> = []
        res.on("data", (c: Buffer) => chunks.push(c))
        res.on("end", () => {
          socket.destroy()
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString() })
        })
        res.on("error", reject)
      }
    )
    req.on("error", reject)
    req.end(r.body)
  })
}

/**
 * Raw bytes over CONNECT + TLS (HTTP/1.1 by ALPN): for requests no well-behaved client would
 * send (backslashes, two Host lines). Resolves with everything read until the proxy closes.
 */
export const rawOverTunnel = async (r: { proxyPort: number; ca: string; target: string; sni: string; bytes: string | Buffer; waitMs?: number }): Promise<string> => {
  const tunnel = await connectTunnel(r.proxyPort, r.target)
  if (!("socket" in tunnel)) return `TUNNEL REFUSED ${tunnel.status}`
  const socket = await tlsOverTunnel(tunnel.socket, r.ca, r.sni, ["http/1.1"])
  return new Promise((resolve) => {
    const chunks: Array<Buffer> = []
    const done = () => {
      clearTimeout(timer)
      socket.destroy()
      resolve(Buffer.concat(chunks).toString("latin1"))
    }
    const timer = setTimeout(done, r.waitMs ?? 3000)
    socket.on("data", (c: Buffer) => chunks.push(c))
    socket.on("end", done)
    socket.on("error", done)
    socket.write(r.bytes)
  })
}

/** Raw bytes straight to the proxy (plain-HTTP proxying, absolute-form request lines). */
export const rawToProxy = (proxyPort: number, bytes: string, waitMs = 3000): Promise<string> =>
  new Promise((resolve) => {
    const s = net.connect(proxyPort, "127.0.0.1", () => s.write(bytes))
    const chunks: Array<Buffer> = []
    const done = () => {
      clearTimeout(timer)
      s.destroy()
      resolve(Buffer.concat(chunks).toString("latin1"))
    }
    const timer = setTimeout(done, waitMs)
    s.on("data", (c: Buffer) => chunks.push(c))
    s.on("end", done)
    s.on("error", done)
  })

/** One HTTP/2 request over CONNECT + TLS (ALPN h2), with pseudo-headers as given. */
export const h2OverTunnel = async (r: { proxyPort: number; ca: string; target: string; sni: string; headers: http2.OutgoingHttpHeaders }): Promise<{ status: number; body: string }> => {
  const tunnel = await connectTunnel(r.proxyPort, r.target)
  if (!("socket" in tunnel)) return { status: tunnel.status, body: tunnel.body }
  const socket = await tlsOverTunnel(tunnel.socket, r.ca, r.sni, ["h2"])
  const client = http2.connect(`https://${r.target}`, { createConnection: () => socket })
  return new Promise((resolve, reject) => {
    const req = client.request(r.headers)
    let status = 0
    const chunks: Array<Buffer> = []
    req.on("response", (h) => (status = Number(h[":status"])))
    req.on("data", (c: Buffer) => chunks.push(c))
    req.on("end", () => {
      client.close()
      resolve({ status, body: Buffer.concat(chunks).toString() })
    })
    req.on("error", (e) => {
      client.close()
      reject(e)
    })
    req.end()
  })
}

export interface StreamedUpload {
  readonly proxyPort: number
  readonly ca: string
  readonly host: string
  readonly port: number
  readonly path: string
  readonly protocol: "h1" | "h2"
  /**
   * Sent one after another, each when the previous one is written; on HTTP/1.1 chunked, or
   * with a Content-Length when there is one chunk (as `curl -d` sends a form).
   */
  readonly chunks: ReadonlyArray<Buffer>
}

/**
 * A POST whose body is streamed in pieces, over HTTP/1.1 (chunked) or HTTP/2, through CONNECT
 * + TLS. The proxy may answer and close before the upload ends: that is an answer, not an
 * error. Resolves with the status (0 if none came) and whatever body arrived.
 */
export const streamedUpload = async (r: StreamedUpload): Promise<{ status: number; body: string }> => {
  const target = `${r.host}:${r.port}`
  const tunnel = await connectTunnel(r.proxyPort, target)
  if (!("socket" in tunnel)) return { status: tunnel.status, body: tunnel.body }
  const socket = await tlsOverTunnel(tunnel.socket, r.ca, r.host, [r.protocol === "h2" ? "h2" : "http/1.1"])
  return new Promise((resolve) => {
    let status = 0
    const body: Array<Buffer> = []
    let settled = false
    const settle = () => {
      if (settled) return
      settled = true
      socket.destroy()
      resolve({ status, body: Buffer.concat(body).toString() })
    }
    socket.on("error", () => {})
    socket.on("close", () => setTimeout(settle, 50))
    if (r.protocol === "h2") {
      const client = http2.connect(`https://${target}`, { createConnection: () => socket })
      client.on("error", () => {})
      const req = client.request({ ":method": "POST", ":path": r.path, "content-type": "application/octet-stream" })
      req.on("response", (h) => (status = Number(h[":status"])))
      req.on("data", (c: Buffer) => body.push(c))
      req.on("end", settle)
      req.on("close", () => setTimeout(settle, 50))
      req.on("error", () => setTimeout(settle, 50))
      writeAll(req, r.chunks)
    } else {
      const req = https.request(
        { host: r.host, port: r.port, method: "POST", path: r.path, headers: { host: target, ...(r.chunks.length === 1 ? { "content-length": String(r.chunks[0]!.length) } : { "transfer-encoding": "chunked" }) }, createConnection: () => socket },
        (res) => {
          status = res.statusCode ?? 0
          res.on("data", (c: Buffer) => body.push(c))
          res.on("end", settle)
          res.on("error", settle)
        }
      )
      req.on("error", () => setTimeout(settle, 50))
      writeAll(req, r.chunks)
    }
  })
}

const writeAll = (stream: NodeJS.WritableStream & { destroyed?: boolean }, chunks: ReadonlyArray<Buffer>) => {
  let i = 0
  const next = () => {
    if (stream.destroyed) return
    if (i === chunks.length) return void stream.end()
    stream.write(chunks[i++]!, (e) => {
      if (!e) setImmediate(next)
    })
  }
  next()
}

/**
 * A raw TCP connection to the proxy: sends `send` (if any; `halfClose` then ends our side) and
 * returns what it read until the proxy closed the connection (`closed`) or `waitMs` passed.
 */
export const rawConnection = (port: number, opts: { send?: string | Buffer; halfClose?: boolean; waitMs?: number } = {}) =>
  new Promise<{ reply: string; closed: boolean }>((resolve) => {
    const s = net.connect(port, "127.0.0.1")
    let reply = ""
    let done = false
    const finish = (closed: boolean) => {
      if (done) return
      done = true
      clearTimeout(timer)
      s.destroy()
      resolve({ reply, closed })
    }
    s.on("data", (c: Buffer) => (reply += c.toString("latin1")))
    s.on("connect", () => {
      if (opts.send !== undefined) s.write(opts.send)
      if (opts.halfClose) s.end()
    })
    s.on("close", () => finish(true))
    s.on("error", () => finish(true))
    const timer = setTimeout(() => finish(false), opts.waitMs ?? 5000)
  })
