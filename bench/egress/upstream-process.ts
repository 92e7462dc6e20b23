/**
 * Bench helper process: the local HTTPS upstream plus the DNS server that maps the bench's
 * made-up host to 127.0.0.1. Prints `{"port":…, "dns":"127.0.0.1:…"}` on stdout when ready.
 * argv[2]: JSON { certPem, keyPem, hosts }.
 */
import { startFakeDns } from "../../test/egress/support/dns.ts"
import { startUpstream } from "../../test/egress/support/upstream.ts"

const input = JSON.parse(process.argv[2] ?? "{}") as { certPem: string; keyPem: string; hosts: Array<string> }
const upstream = await startUpstream({ certPem: input.certPem, keyPem: input.keyPem }, { sseIntervalMs: 50, sseEvents: 3 })
const dns = await startFakeDns(Object.fromEntries(input.hosts.map((h) => [h, "127.0.0.1"])))
process.stdout.write(JSON.stringify({ port: upstream.port, dns: dns.server }) + "\n")
process.on("SIGTERM", () => process.exit(0))
