// A routed test upstream: HTTPS under a real-looking host name, run in a container on the
// bottle's egress network. It logs what it received (one JSON line per request) to stdout,
// where the test reads it with `docker logs`, and never echoes credentials back.
import * as fs from "node:fs"
import * as https from "node:https"

const server = https.createServer({ cert: fs.readFileSync("/srv/cert.pem"), key: fs.readFileSync("/srv/key.pem") }, (req, res) => {
  let body = ""
  req.on("data", (c) => (body += c))
  req.on("end", () => {
    console.log(JSON.stringify({ method: req.method, url: req.url, host: req.headers.host, authorization: req.headers.authorization ?? null, bodyLength: body.length }))
    res.writeHead(200, { "content-type": "text/plain" })
    res.end("hello from upstream\n")
  })
})
server.listen(443, () => console.log("upstream listening"))
process.on("SIGTERM", () => process.exit(0))
