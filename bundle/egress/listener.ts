/**
 * The egress port, bound before the proxy engine is loaded (as systemd's socket activation
 * does): the daemon can say "ready" once its configuration is checked and its port is bound,
 * while mockttp (~100 ms of module loading) comes up behind it. Connections that arrive
 * meanwhile wait in the kernel's and this queue, unread, and are handed over whole.
 */
import * as net from "node:net"

export interface HeldListener {
  readonly server: net.Server
  readonly port: number
  /**
   * Moves the bound port to `to` (it listens on the same socket from now on, so its own
   * bookkeeping, e.g. `address()`, holds) and gives it the connections queued so far, unread.
   * This holder is then inert: closing it leaves the port to `to`.
   */
  readonly transferTo: (to: net.Server) => Promise<void>
}

export const holdListener = (listen: { readonly host: string; readonly port: number }): Promise<HeldListener> =>
  new Promise((resolve, reject) => {
    // pauseOnConnect: nothing is read from a socket until its new owner reads.
    const server = net.createServer({ pauseOnConnect: true })
    const queue: Array<net.Socket> = []
    server.on("connection", (socket) => {
      // A reset while queued must not take the daemon down; the new owner adds its own.
      socket.on("error", () => {})
      queue.push(socket)
    })
    server.once("error", reject)
    server.listen({ host: listen.host, port: listen.port }, () => {
      server.off("error", reject)
      resolve({
        server,
        port: (server.address() as net.AddressInfo).port,
        transferTo: (to) =>
          new Promise<void>((done, fail) => {
            to.once("error", fail)
            // listen(server): `to` takes over the same listening socket (Node's listen(handle)).
            to.listen(server, () => {
              to.off("error", fail)
              // The socket is `to`'s now: this holder must never close it.
              ;(server as unknown as { _handle: unknown })._handle = null
              for (const socket of queue.splice(0)) if (!socket.destroyed) to.emit("connection", socket)
              done()
            })
          })
      })
    })
  })
