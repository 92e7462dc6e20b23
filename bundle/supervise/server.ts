/**
 * The supervise daemon: an MCP server (Streamable HTTP, Effect's `effect/ai` McpServer) through
 * which the agent asks the operator for approval. Requests go to the durable queue in the
 * daemon's own state dir (src/schema/ApprovalQueue.ts), which the host answers with
 * `bottle approve|deny`; the daemon only reads answers.
 *
 * Guarantees:
 *   - a tool call returns at once (`pending` + id), or after at most MAX_WAIT_SECONDS when the
 *     caller asked to wait, sending progress notifications meanwhile when it gave a token;
 *   - every argument is bounded and checked by Schema before a handler runs (tools.ts): bad
 *     input is an MCP error and nothing is queued; the ids are ours, never the agent's;
 *   - at most LIMITS.pendingPerDaemon requests pending: beyond it, new ones are refused;
 *   - request bodies above MAX_BODY_BYTES are refused before they are parsed; at most
 *     MAX_CONNECTIONS connections at once; at most MAX_SESSIONS MCP sessions (past it the
 *     least recently used one is ended, as its client's DELETE would end it);
 *   - nothing the agent sends stops the daemon: a failure is that call's error and a log line.
 */
import * as crypto from "node:crypto"
import type { Socket } from "node:net"
import { createServer, type IncomingMessage, request as httpRequest, type Server, type ServerResponse } from "node:http"
import { NodeHttpServer } from "@effect/platform-node"
import { ByteSize, Context, Duration, Effect, Layer, Option, Schema } from "effect"
import { McpProtocol, McpSchema, McpServer } from "effect/ai"
import { HttpIncomingMessage, HttpRouter } from "effect/http"
import { type ApprovalRequest, DEFAULT_EXPIRY_SECONDS, displayBlock, LIMITS, newApprovalId, oneLine, statusOf } from "../../src/schema/Approval.ts"
import { pendingCount, pruneExpired, readAnswer, readRequest, writeRequest } from "../../src/schema/ApprovalQueue.ts"
import {
  MAX_WAIT_SECONDS,
  PERMISSION_PROMPT,
  PERMISSION_PROMPT_DESCRIPTION,
  PERMISSION_PROMPT_INPUT_SCHEMA,
  type PermissionDecision,
  PermissionPromptParams,
  SuperviseTools
} from "./tools.ts"

/** The MCP endpoint's path on the daemon's port. */
export const MCP_PATH = "/mcp"
/** Connections served at once. */
export const MAX_CONNECTIONS = 256
/** A JSON-RPC body larger than this is refused unread. */
export const MAX_BODY_BYTES = 256 * 1024
/** MCP sessions kept at once (one per client that initialized; Claude Code holds one). */
export const MAX_SESSIONS = 64
/** The loopback address the daemon's own requests to itself come from (not counted in MAX_CONNECTIONS). */
const SELF_ADDRESS = "127.0.0.2"

export interface SuperviseConfig {
  /** The daemon's state dir (`/run/bottle/supervise` in the bundle): the queue lives under it. */
  readonly dir: string
  /** Requests expire this long after they are made (default 30 min). */
  readonly expirySeconds?: number
  /** How often a waiting call looks for the answer (default 200 ms). */
  readonly pollMillis?: number
  readonly log?: (line: string) => void
}

interface Answered {
  readonly id: string
  readonly status: "pending" | "approved" | "denied" | "expired"
  readonly note?: string
  readonly answeredAt?: string
  readonly expiresAt: string
}

const errorText = (e: unknown) => (e instanceof Error ? e.message : String(e))

/** What permission_prompt shows the operator as the title: the tool and its main argument. */
const permissionTitle = (toolName: string, input: Readonly<Record<string, unknown>>): string => {
  const main = ["command", "file_path", "url", "path", "pattern"].map((k) => input[k]).find((v) => typeof v === "string") as string | undefined
  return oneLine(main === undefined ? `Claude Code wants to use ${toolName}` : `${toolName}: ${main}`, LIMITS.title)
}

const clip = (s: string, max: number) => (s.length > max ? `${s.slice(0, max - 1)}…` : s)

/** The queue operations the tools share, over `config.dir`; `server` sends progress notifications. */
const queueOps = (config: SuperviseConfig, server: McpServer.McpServer["Service"]) => {
  const expiryMs = (config.expirySeconds ?? DEFAULT_EXPIRY_SECONDS) * 1000
  const pollMillis = config.pollMillis ?? 200
  const log = config.log ?? ((line: string) => process.stdout.write(`supervise: ${line}\n`))

  const view = (request: ApprovalRequest): Answered => {
    const answer = readAnswer(config.dir, request.id)
    const status = statusOf(request, answer, Date.now())
    const counted = answer !== undefined && answer.status === status
    return {
      id: request.id,
      status,
      ...(counted && answer.note !== undefined ? { note: answer.note } : {}),
      ...(counted ? { answeredAt: answer.answeredAt } : {}),
      expiresAt: request.expiresAt
    }
  }

  const requesterOf = Effect.gen(function*() {
    const ctx = yield* Effect.serviceOption(McpSchema.McpRequestContext)
    const name = Option.getOrUndefined(ctx)?.clientInfo?.name
    return name === undefined ? "agent" : oneLine(`agent (${name})`, LIMITS.requester)
  })

  const enqueue = Effect.fnUntraced(function*(fields: Pick<ApprovalRequest, "kind" | "title" | "details">) {
    const now = Date.now()
    if (pendingCount(config.dir, now) >= LIMITS.pendingPerDaemon) {
      log(`refused a ${fields.kind} request: ${LIMITS.pendingPerDaemon} requests are pending already`)
      return yield* Effect.fail(`too many pending requests (${LIMITS.pendingPerDaemon}): wait for the operator to answer some`)
    }
    const request: ApprovalRequest = {
      id: newApprovalId(),
      ...fields,
      requester: yield* requesterOf,
      createdAt: new Date(now).toISOString(),
      expiresAt: new Date(now + expiryMs).toISOString()
    }
    const pruned = pruneExpired(config.dir, now)
    if (pruned > 0) log(`deleted ${pruned} requests that expired unanswered (the newest ${LIMITS.expiredKept} are kept)`)
    yield* Effect.try({ try: () => writeRequest(config.dir, request), catch: errorText }).pipe(
      Effect.tapError((e) => Effect.sync(() => log(`could not queue a ${fields.kind} request: ${e}`))),
      Effect.mapError(() => "could not queue the request (the daemon's state dir is not writable)")
    )
    log(`queued ${request.kind} request ${request.id}`)
    return request
  })

  const progress = (sent: number, total: number, message: string) =>
    Effect.gen(function*() {
      const ctx = Option.getOrUndefined(yield* Effect.serviceOption(McpSchema.McpRequestContext))
      const token = (ctx?.requestMetadata as { progressToken?: string | number } | undefined)?.progressToken
      if (token === undefined) return
      yield* server.notifications["notifications/progress"]({ progressToken: token, progress: sent, total, message }).pipe(Effect.ignore)
    })

  /** The request's state once answered, or when `seconds` (at most MAX_WAIT_SECONDS) have passed. */
  const awaitAnswer = (request: ApprovalRequest, seconds: number) =>
    Effect.gen(function*() {
      const span = Math.min(seconds, MAX_WAIT_SECONDS)
      const deadline = Date.now() + span * 1000
      let lastProgress = -1
      for (;;) {
        const state = view(request)
        if (state.status !== "pending" || Date.now() >= deadline) return state
        const waited = Math.floor((Date.now() - (deadline - span * 1000)) / 1000)
        if (waited > lastProgress) {
          lastProgress = waited
          yield* progress(waited, span, `waiting for the operator to answer ${request.id}`)
        }
        yield* Effect.sleep(Duration.millis(Math.min(pollMillis, Math.max(1, deadline - Date.now()))))
      }
    })

  return { view, enqueue, awaitAnswer }
}

/** request_approval and check_approval (the Toolkit), over the queue in `config.dir`. */
export const handlersLayer = (config: SuperviseConfig) =>
  SuperviseTools.toLayer(Effect.gen(function*() {
    const { view, enqueue, awaitAnswer } = queueOps(config, yield* McpServer.McpServer)
    return SuperviseTools.of({
      request_approval: Effect.fn("supervise.request_approval")(function*({ title, details, kind, wait_seconds }) {
        const request = yield* enqueue({ kind: kind ?? "tool", title, details: details ?? "" })
        return wait_seconds !== undefined && wait_seconds > 0 ? yield* awaitAnswer(request, wait_seconds) : view(request)
      }),
      check_approval: Effect.fn("supervise.check_approval")(function*({ id }) {
        const request = readRequest(config.dir, id)
        if (request === undefined) return yield* Effect.fail(`no approval request ${id}`)
        return view(request)
      })
    })
  }))

const decodePermissionPrompt = Schema.decodeUnknownExit(PermissionPromptParams, { onExcessProperty: "ignore", errors: "all" })
const textResult = (text: string, isError = false) => new McpSchema.CallToolResult({ content: [{ type: "text", text }], ...(isError ? { isError } : {}) })

/**
 * permission_prompt, registered on the server directly: its result is one text block holding
 * the JSON decision and nothing else (no `structuredContent`), as Claude Code requires.
 */
export const permissionPromptLayer = (config: SuperviseConfig) =>
  Layer.effectDiscard(Effect.gen(function*() {
    const server = yield* McpServer.McpServer
    const { view, enqueue, awaitAnswer } = queueOps(config, server)
    // The same tool call asked again (Claude Code retries after a `deny` that said "pending")
    // finds its request instead of queueing a twin; an approval is used once: the next identical
    // call after it is a new request.
    const permissionIds = new Map<string, string>()
    const used = new Set<string>()

    const decideOn = Effect.fnUntraced(function*(toolName: string, input: Readonly<Record<string, unknown>>) {
      let inputJson: string
      try {
        inputJson = JSON.stringify(input, null, 2) ?? "{}"
      } catch {
        return yield* Effect.fail("input: not serialisable")
      }
      const key = crypto.createHash("sha256").update(`${toolName}\u0000${inputJson}`).digest("hex")
      const known = permissionIds.get(key)
      const existing = known === undefined ? undefined : readRequest(config.dir, known)
      const status = existing === undefined ? undefined : view(existing).status
      const reuse = existing !== undefined && (status === "pending" || (status === "approved" && !used.has(existing.id))) ? existing : undefined
      const request = reuse ?? (yield* enqueue({
        kind: "permission",
        title: permissionTitle(toolName, input),
        // Claude Code's input is the model's: shown escaped, like anything from the agent.
        details: clip(displayBlock(`Claude Code asks to use ${toolName} with input:\n${inputJson}`), LIMITS.details)
      }))
      permissionIds.set(key, request.id)
      const state = yield* awaitAnswer(request, MAX_WAIT_SECONDS)
      if (state.status === "approved") used.add(request.id)
      const decision: PermissionDecision = state.status === "approved"
        ? { behavior: "allow", updatedInput: input }
        : {
          behavior: "deny",
          message: state.status === "pending"
            ? `Waiting for the operator to approve request ${request.id} (bottle approve ${request.id}). Ask again with the same action later, or check it with check_approval.`
            : `The operator ${state.status === "denied" ? "denied" : "did not answer (expired)"} request ${request.id}${state.note ? `: ${state.note}` : ""}`
        }
      return decision
    })

    yield* server.addTool({
      tool: new McpSchema.Tool({ name: PERMISSION_PROMPT, description: PERMISSION_PROMPT_DESCRIPTION, inputSchema: PERMISSION_PROMPT_INPUT_SCHEMA }),
      annotations: Context.empty(),
      handle: (payload) => {
        const params = decodePermissionPrompt(payload ?? {})
        if (params._tag === "Failure") {
          return Effect.fail(new McpSchema.InvalidParams({ message: `Invalid parameters for tool '${PERMISSION_PROMPT}': ${String(params.cause).split("\n").slice(0, 3).join(" ")}` }))
        }
        return decideOn(params.value.tool_name, params.value.input).pipe(
          Effect.map((decision) => textResult(JSON.stringify(decision))),
          Effect.catch((message: string) => Effect.succeed(textResult(message, true))),
          // Whatever goes wrong in one call stays in that call.
          Effect.catchCause((cause) => Effect.sync(() => textResult(`internal error: ${String(cause).split("\n")[0]}`, true)))
        )
      }
    })
  }))

/** The MCP endpoint at MCP_PATH, tools registered. */
export const mcpLayer = (config: SuperviseConfig) =>
  McpServer.layerHttp({
    name: "bot-bottle supervise",
    version: "1",
    path: MCP_PATH,
    protocols: [McpProtocol.v2025_11_25, McpProtocol.v2025_06_18, McpProtocol.v2025_03_26],
    allowSessionTermination: true,
    registrations: Layer.mergeAll(McpServer.toolkit(SuperviseTools).pipe(Layer.provide(handlersLayer(config))), permissionPromptLayer(config))
  })

/**
 * The Node server, with the body bound enforced before any handler sees the request: a body
 * must declare its length (no chunked uploads) and be at most MAX_BODY_BYTES, else 411/413
 * and the connection is closed unread.
 */
const boundedServer = (log: (line: string) => void) => (): Server => {
  const s = createServer()
  // effect's McpServer never expires a session, and each keeps its initialize payload: a
  // flood of initializes grew the heap until the daemon died. Past MAX_SESSIONS, the least
  // recently used session is ended by a DELETE to ourselves (its client, if any, gets a 404 and
  // initializes again, as the MCP spec says).
  const sessions = new Set<string>()
  let evicted = 0
  const endSession = (id: string) => {
    const at = s.address()
    if (at === null || typeof at === "string") return
    const host = at.address === "0.0.0.0" || at.address === "::" ? "127.0.0.1" : at.address
    const q = httpRequest({ host, port: at.port, localAddress: SELF_ADDRESS, method: "DELETE", path: MCP_PATH, headers: { "mcp-session-id": id } }, (r) => r.resume())
    q.on("error", () => {})
    q.end()
    if (evicted++ % 100 === 0) log(`${MAX_SESSIONS} MCP sessions open: ended the least recently used (${evicted} so far)`)
  }
  const track = (req: IncomingMessage, res: ServerResponse) => {
    const id = req.headers["mcp-session-id"]
    if (typeof id === "string") {
      if (req.method === "DELETE") sessions.delete(id)
      else if (sessions.delete(id)) sessions.add(id)
      return
    }
    const writeHead = res.writeHead.bind(res) as (...args: Array<unknown>) => ServerResponse
    res.writeHead = ((...args: Array<unknown>) => {
      const headers = args.find((a) => typeof a === "object" && a !== null) as Record<string, unknown> | undefined
      const issued = headers?.["mcp-session-id"]
      if (typeof issued === "string" && !sessions.has(issued)) {
        sessions.add(issued)
        if (sessions.size > MAX_SESSIONS) {
          const oldest = sessions.values().next().value!
          sessions.delete(oldest)
          endSession(oldest)
        }
      }
      return writeHead(...args)
    }) as ServerResponse["writeHead"]
  }
  s.headersTimeout = 10_000
  s.requestTimeout = 60_000
  s.maxHeadersCount = 100
  // What one agent may hold open (sessions' SSE streams included); past it, connections are refused.
  // The bound, by hand: our own DELETEs (from SELF_ADDRESS) must get in when the agent holds
  // every connection, or a session they end would stay.
  let open = 0
  s.on("connection", (socket: Socket) => {
    if (socket.remoteAddress === SELF_ADDRESS || socket.remoteAddress === `::ffff:${SELF_ADDRESS}`) return
    if (open >= MAX_CONNECTIONS) return socket.destroy()
    open++
    socket.once("close", () => open--)
  })
  const emit = s.emit.bind(s) as (event: string, ...args: Array<unknown>) => boolean
  s.emit = ((event: string, ...args: Array<unknown>) => {
    if (event === "request") {
      const [req, res] = args as [IncomingMessage, ServerResponse]
      const length = req.headers["content-length"]
      const refuse = req.headers["transfer-encoding"] !== undefined
        ? { status: 411, message: "a request body must declare its length" }
        : length !== undefined && !(/^\d{1,9}$/.test(length) && Number(length) <= MAX_BODY_BYTES)
        ? { status: 413, message: `a request body may be at most ${MAX_BODY_BYTES} bytes` }
        : undefined
      if (refuse) {
        const body = JSON.stringify({ jsonrpc: "2.0", id: null, error: { code: -32600, message: refuse.message } })
        res.writeHead(refuse.status, { "content-type": "application/json", "content-length": Buffer.byteLength(body), connection: "close" })
        res.end(body, () => req.destroy())
        return true
      }
      track(req, res)
    }
    return emit(event, ...args)
  }) as Server["emit"]
  return s
}

/** The whole daemon: the MCP endpoint served on `host:port`. */
export const serveLayer = (config: SuperviseConfig, listen: { readonly host: string; readonly port: number }) =>
  HttpRouter.serve(mcpLayer(config)).pipe(
    Layer.provide(Layer.succeed(HttpIncomingMessage.MaxBodySize, ByteSize.bytes(MAX_BODY_BYTES))),
    Layer.provide(NodeHttpServer.layer(boundedServer(config.log ?? ((line: string) => process.stdout.write(`supervise: ${line}\n`))), listen))
  )
