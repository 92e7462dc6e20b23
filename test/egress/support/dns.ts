/**
 * A minimal DNS server on loopback answering A queries for a fixed map of names, so the proxy
 * can reach made-up hosts (api.example.test → 127.0.0.1) through its ordinary resolver path
 * (mockttp `lookupOptions.servers`), without touching /etc/hosts or faking the protocol.
 */
import * as dgram from "node:dgram"

export interface FakeDns {
  readonly server: string
  readonly close: () => Promise<void>
}

const readName = (msg: Buffer, offset: number): { name: string; end: number } => {
  const labels: Array<string> = []
  let i = offset
  while (i < msg.length && msg[i] !== 0) {
    const len = msg[i]!
    labels.push(msg.subarray(i + 1, i + 1 + len).toString("latin1"))
    i += 1 + len
  }
  return { name: labels.join(".").toLowerCase(), end: i + 1 }
}

export const startFakeDns = (records: Record<string, string>): Promise<FakeDns> =>
  new Promise((resolve, reject) => {
    const socket = dgram.createSocket("udp4")
    socket.on("message", (msg, rinfo) => {
      if (msg.length < 12) return
      const { name, end } = readName(msg, 12)
      const qtype = msg.readUInt16BE(end)
      const question = msg.subarray(12, end + 4)
      const known = Object.prototype.hasOwnProperty.call(records, name)
      const answer = known && qtype === 1
      const head = Buffer.alloc(12)
      msg.copy(head, 0, 0, 2)
      head.writeUInt16BE(known ? 0x8180 : 0x8183, 2)
      head.writeUInt16BE(1, 4)
      head.writeUInt16BE(answer ? 1 : 0, 6)
      const parts = [head, question]
      if (answer) {
        const rr = Buffer.alloc(16)
        rr.writeUInt16BE(0xc00c, 0)
        rr.writeUInt16BE(1, 2)
        rr.writeUInt16BE(1, 4)
        rr.writeUInt32BE(60, 6)
        rr.writeUInt16BE(4, 10)
        records[name]!.split(".").forEach((o, i) => rr.writeUInt8(Number(o), 12 + i))
        parts.push(rr)
      }
      socket.send(Buffer.concat(parts), rinfo.port, rinfo.address)
    })
    socket.once("error", reject)
    socket.bind(0, "127.0.0.1", () => {
      const { port } = socket.address()
      resolve({ server: `127.0.0.1:${port}`, close: () => new Promise<void>((r) => socket.close(() => r())) })
    })
  })
