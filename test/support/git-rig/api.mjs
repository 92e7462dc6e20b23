// The rig's fake git host API, speaking GitHub's deploy-key REST API
// (/repos/{owner}/{repo}/keys) and Gitea's (/api/v1/repos/{owner}/{repo}/keys) with their
// shapes and status codes: token auth (401 without a good token, 404 for an unknown repo or
// key, 422 for a bad or duplicate key, 201/200/204 on success). sshd asks it which keys exist
// (/_rig/authorized), so what this API holds is exactly what can log in.
//
// Test controls (never part of the real APIs): POST /_rig/fault {"method":"DELETE","status":500}
// or {"method":"DELETE","hang":true}; POST /_rig/fault {} clears; GET /_rig/requests lists the
// requests seen (method, path, whether the token was good); GET /_rig/keys all keys.
import * as crypto from "node:crypto"
import * as http from "node:http"

const TOKEN = process.env.RIG_TOKEN ?? "rig-admin-token"
const repos = new Map()
for (const r of (process.env.RIG_REPOS ?? "acme/widgets").split(",")) repos.set(r, [])
let nextId = 1000
let fault = {}
const requests = []

const send = (res, status, body) => {
  res.writeHead(status, body === undefined ? {} : { "content-type": "application/json; charset=utf-8" })
  res.end(body === undefined ? undefined : JSON.stringify(body))
}
const fingerprint = (blob) => "SHA256:" + crypto.createHash("sha256").update(Buffer.from(blob, "base64")).digest("base64").replace(/=+$/, "")

const shape = (flavour, repo, k, base) => flavour === "gitea"
  ? { id: k.id, key: k.key, url: `${base}/api/v1/repos/${repo}/keys/${k.id}`, title: k.title, fingerprint: k.fingerprint, created_at: k.created_at, read_only: k.read_only }
  : { id: k.id, key: k.key, url: `${base}/repos/${repo}/keys/${k.id}`, title: k.title, verified: true, created_at: k.created_at, read_only: k.read_only, added_by: "rig-admin", last_used: null }

const body = (req) => new Promise((resolve) => {
  let s = ""
  req.on("data", (c) => (s += c))
  req.on("end", () => resolve(s))
})

http.createServer(async (req, res) => {
  const url = new URL(req.url, "http://rig")
  const text = await body(req)
  if (url.pathname.startsWith("/_rig/")) {
    if (url.pathname === "/_rig/authorized") {
      const blob = url.searchParams.get("key")
      const grants = []
      for (const [repo, keys] of repos) for (const k of keys) if (k.key.split(" ")[1] === blob) grants.push({ repo, readOnly: k.read_only })
      return send(res, 200, grants)
    }
    if (url.pathname === "/_rig/fault" && req.method === "POST") return (fault = JSON.parse(text || "{}"), send(res, 200, fault))
    if (url.pathname === "/_rig/requests") return send(res, 200, requests)
    if (url.pathname === "/_rig/keys") return send(res, 200, Object.fromEntries(repos))
    return send(res, 404, { message: "Not Found" })
  }
  const auth = req.headers.authorization ?? ""
  const m = /^(?:\/api\/v1)?\/repos\/([^/]+)\/([^/]+)\/keys(?:\/(\d+))?$/.exec(url.pathname)
  const flavour = url.pathname.startsWith("/api/v1/") ? "gitea" : "github"
  const tokenOk = auth === `Bearer ${TOKEN}` || auth === `token ${TOKEN}`
  requests.push({ method: req.method, path: url.pathname, tokenOk })
  if (fault.method === req.method && m) {
    if (fault.hang) return // never answered
    if (fault.status) return send(res, fault.status, { message: "Server Error" })
  }
  if (!tokenOk) return send(res, 401, flavour === "gitea" ? { message: "token is required" } : { message: "Bad credentials", documentation_url: "https://docs.github.com/rest" })
  if (!m) return send(res, 404, { message: "Not Found" })
  const repo = `${m[1]}/${m[2]}`
  const keys = repos.get(repo)
  if (!keys) return send(res, 404, { message: "Not Found" })
  const base = `http://${req.headers.host}`
  const id = m[3] === undefined ? undefined : Number(m[3])
  if (id === undefined && req.method === "GET") return send(res, 200, keys.map((k) => shape(flavour, repo, k, base)))
  if (id === undefined && req.method === "POST") {
    let input
    try { input = JSON.parse(text) } catch { return send(res, 400, { message: "Problems parsing JSON" }) }
    const parts = String(input.key ?? "").trim().split(/\s+/)
    if (!/^(ssh-ed25519|ssh-rsa|ecdsa-sha2-nistp256)$/.test(parts[0] ?? "") || !parts[1]) {
      return send(res, 422, { message: "Validation Failed", errors: [{ resource: "PublicKey", code: "custom", field: "key", message: "key is invalid. You must supply a key in OpenSSH public key format" }] })
    }
    if (keys.some((k) => k.key.split(" ")[1] === parts[1])) {
      return send(res, 422, { message: "Validation Failed", errors: [{ resource: "PublicKey", code: "custom", field: "key", message: "key is already in use" }] })
    }
    const k = { id: nextId++, key: `${parts[0]} ${parts[1]}`, title: String(input.title ?? ""), read_only: input.read_only === true, created_at: new Date().toISOString(), fingerprint: fingerprint(parts[1]) }
    keys.push(k)
    return send(res, 201, shape(flavour, repo, k, base))
  }
  const i = keys.findIndex((k) => k.id === id)
  if (req.method === "GET") return i < 0 ? send(res, 404, { message: "Not Found" }) : send(res, 200, shape(flavour, repo, keys[i], base))
  if (req.method === "DELETE") {
    if (i < 0) return send(res, 404, { message: "Not Found" })
    keys.splice(i, 1)
    return send(res, 204)
  }
  return send(res, 404, { message: "Not Found" })
}).listen(8080, "0.0.0.0")
