/**
 * The agent's user in the sandbox (`node`) takes the uid/gid of the workspace's owner, as Dev
 * Containers' `updateRemoteUserUID` does: the cwd's files (the overlay's lower layer, or a
 * mounted cwd) are then the agent's own, and nothing walks the workspace to give them away.
 *
 * Guarantees: the agent never gets uid 0 or gid 0 — a root-owned cwd (CI) keeps the image's
 * 1000:1000 (its files are then given to the agent at the first start, entry by entry); an
 * unreadable cwd counts as root's. Pure apart from one `stat` of the cwd.
 */
import * as fs from "node:fs"

/** The image's `node` user. */
export const IMAGE_AGENT_ID = 1000

export interface AgentIds {
  readonly uid: number
  readonly gid: number
}

/** The ids the agent's user gets for a workspace owned by `owner`: its own, never root's. */
export const agentIdsFor = (owner: AgentIds): AgentIds =>
  owner.uid === 0
    ? { uid: IMAGE_AGENT_ID, gid: IMAGE_AGENT_ID }
    : { uid: owner.uid, gid: owner.gid === 0 ? IMAGE_AGENT_ID : owner.gid }

/** The owner of the cwd on the host (root when it cannot be read). */
export const workspaceOwner = (cwd: string): AgentIds => {
  try {
    const st = fs.statSync(cwd)
    return { uid: st.uid, gid: st.gid }
  } catch {
    return { uid: 0, gid: 0 }
  }
}
