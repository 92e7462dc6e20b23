/**
 * The start modal's screens and the stop confirmation. The preflight shows `bottle plan`'s own
 * text for the plan (hard-wrapped to the width, scrollable), with credential grants listed
 * first and every line about a credential highlighted; launch progress (steps, and the last
 * line of an image build, cut to one line) is drawn inside the modal, never over it.
 */
import { Box, Text } from "ink"
import type { ReactNode } from "react"
import { LABELS } from "../../cli/progress.ts"
import { describeGrant, type Preflight } from "../feed.ts"
import type { LaunchStep } from "../../schema/LaunchProgress.ts"
import type { AgentChoice } from "../feed.ts"
import { fit } from "../model.ts"
import { displayBlock, displayText } from "../../schema/Approval.ts"
import { useBorderTint, useTint } from "./theme.tsx"

const Frame = (props: { readonly title: string; readonly width: number; readonly children: ReactNode; readonly danger?: boolean | undefined }) => {
  const border = useBorderTint()
  return (
    <Box flexDirection="column" borderStyle="double" {...border(props.danger ? "red" : "cyan")} width={props.width} paddingX={1}>
      <Text bold>{props.title}</Text>
      {props.children}
    </Box>
  )
}

export const AgentPicker = (props: { readonly manifestFile: string | undefined; readonly agents: ReadonlyArray<AgentChoice> | undefined; readonly selected: number; readonly error?: string | undefined; readonly width: number }) => {
  const tint = useTint()
  return (
    <Frame title="Start a bottle: pick an agent" width={props.width}>
      <Text dimColor wrap="truncate">{props.manifestFile ?? "reading the manifest…"}</Text>
      {props.error ? <Text {...tint("red")} wrap="wrap">{props.error}</Text> : null}
      {(props.agents ?? []).map((a, i) => (
        <Text key={a.name} inverse={i === props.selected}>
          {i === props.selected ? "> " : "  "}
          {a.name} <Text {...tint(a.color)}>{a.label !== a.name ? `(${a.label})` : ""}</Text>
        </Text>
      ))}
      <Text dimColor>enter: show the plan · esc: cancel</Text>
    </Frame>
  )
}

/** Lines of the plan about a credential: what the operator must see before confirming. */
const isCredentialLine = (line: string) => /injects |CREDENTIAL GRANT|UNRESTRICTED TOKEN ROUTE|deploy key/.test(line)

/** The plan text hard-wrapped to `width`, each piece marked when its line speaks of a credential. */
export const wrapPlan = (text: string, width: number): ReadonlyArray<{ readonly text: string; readonly credential: boolean }> => {
  const out: Array<{ text: string; credential: boolean }> = []
  const w = Math.max(10, width)
  for (const line of text.split("\n")) {
    const credential = isCredentialLine(line)
    if (line.length === 0) out.push({ text: "", credential })
    for (let i = 0; i < line.length; i += w) out.push({ text: (i > 0 ? " " : "") + line.slice(i, i + w - (i > 0 ? 1 : 0)), credential })
  }
  return out
}

export const PlanModal = (props: { readonly pre: Preflight; readonly scroll: number; readonly width: number; readonly height: number }) => {
  const tint = useTint()
  const { pre } = props
  const inner = props.width - 4
  // One column goes to the credential marker in front of each line.
  const lines = wrapPlan(pre.text, inner - 1)
  const head = (pre.grants.length > 0 ? pre.grants.length + 1 : 0) + (pre.problems.length > 0 ? pre.problems.length + 1 : 0)
  const room = Math.max(3, props.height - 5 - head)
  const first = Math.min(Math.max(0, props.scroll), Math.max(0, lines.length - room))
  return (
    <Frame title={`Start ${pre.plan.slug}? (the plan \`bottle plan ${pre.plan.agent}\` prints)`} width={props.width} danger={pre.grants.length > 0}>
      {pre.grants.length > 0 ? (
        <Box flexDirection="column">
          <Text {...tint("red")} bold>{fit(`!! CREDENTIAL GRANT${pre.grants.length > 1 ? "S" : ""} — confirming approves:`, inner)}</Text>
          {pre.grants.map((g) => <Text key={`${g.host} ${g.token_env}`} {...tint("red")} bold>{fit(`!!   ${describeGrant(g)}`, inner)}</Text>)}
        </Box>
      ) : null}
      {pre.problems.length > 0 ? (
        <Box flexDirection="column">
          <Text {...tint("red")} bold>cannot start:</Text>
          {pre.problems.map((p, i) => <Text key={i} {...tint("red")} wrap="truncate">{fit(`  ${p}`, inner)}</Text>)}
        </Box>
      ) : null}
      {lines.slice(first, first + room).map((l, i) => (
        <Text key={first + i} {...tint(l.credential ? "yellow" : undefined)} bold={l.credential}>{l.credential ? "▌" : " "}{l.text}</Text>
      ))}
      <Text dimColor>{`${first + Math.min(room, lines.length)}/${lines.length} lines · `}{pre.problems.length > 0 ? "esc: close" : `y: ${pre.grants.length > 0 ? "approve and " : ""}start · n/esc: cancel · ↑↓ scroll`}</Text>
    </Frame>
  )
}

export interface LaunchView {
  readonly slug: string
  readonly steps: ReadonlyArray<LaunchStep>
  readonly build: string
  readonly state: "running" | "done" | "failed"
  readonly message: string
}

export const ProgressModal = (props: { readonly view: LaunchView; readonly width: number }) => {
  const tint = useTint()
  const { view } = props
  const inner = props.width - 4
  return (
    <Frame title={`Launching ${view.slug}`} width={props.width} danger={view.state === "failed"}>
      {view.steps.map((s, i) => {
        const current = i === view.steps.length - 1 && view.state === "running"
        return <Text key={s} {...tint(current ? "cyan" : undefined)}>{current ? "… " : "✓ "}{LABELS[s]}</Text>
      })}
      {view.state === "running" && view.build ? <Text dimColor>{fit(`  ${view.build}`, inner)}</Text> : null}
      {view.state !== "running" ? <Text {...tint(view.state === "failed" ? "red" : "green")} wrap="wrap">{view.message}</Text> : null}
      <Text dimColor>{view.state === "running" ? "nothing to press: the launch goes on" : "enter: close"}</Text>
    </Frame>
  )
}

export const ConfirmStop = (props: { readonly slug: string; readonly purge: boolean; readonly width: number }) => (
  <Frame title={`Stop ${props.slug}${props.purge ? " and delete its state" : ""}?`} width={props.width} danger>
    <Text wrap="wrap">
      {props.purge
        ? "Its containers and networks are removed, its deploy keys revoked, and its state (plan, CA, audit log, approvals) deleted: it leaves the list."
        : "Its containers and networks are removed and its deploy keys revoked; its state is kept (`bottle resume` restarts it; X also deletes it)."}
    </Text>
    <Text dimColor>y: stop · n/esc: cancel</Text>
  </Frame>
)

/**
 * The request in full, as the operator must read it before answering: the whole title and all of
 * its details (a permission prompt's tool input), escaped (`displayText` for the title, whose
 * newlines show as \n; `displayBlock` for the details) and hard-wrapped, never cut.
 */
export const requestLines = (title: string, details: string | undefined, width: number): ReadonlyArray<string> => {
  const w = Math.max(10, width)
  const wrap = (line: string) => {
    const out: Array<string> = []
    // (Ink draws an empty Text as nothing: a blank line is a space.)
    if (line.length === 0) out.push(" ")
    for (let i = 0; i < line.length; i += w) out.push(line.slice(i, i + w))
    return out
  }
  const body = details === undefined || details === "" ? [] : [" ", ...displayBlock(details).replace(/\t/g, "  ").split("\n").flatMap(wrap)]
  return [...wrap(displayText(title)), ...body]
}

export const NotePrompt = (props: {
  readonly decision: "approve" | "deny"
  readonly id: string
  readonly title: string
  readonly details?: string | undefined
  readonly note: string
  readonly scroll: number
  readonly width: number
  readonly height: number
}) => {
  const inner = props.width - 4
  const lines = requestLines(props.title, props.details, inner)
  const room = Math.max(3, props.height - 6)
  const first = Math.min(Math.max(0, props.scroll), Math.max(0, lines.length - room))
  const more = lines.length > room
  return (
    <Frame title={`${props.decision === "approve" ? "Approve" : "Deny"} request ${props.id}?`} width={props.width} danger={props.decision === "deny"}>
      {lines.slice(first, first + room).map((l, i) => <Text key={first + i}>{l}</Text>)}
      {more ? <Text dimColor>{`lines ${first + 1}-${first + Math.min(room, lines.length)} of ${lines.length} · ↑↓ to read it all`}</Text> : null}
      <Text>note (optional): {props.note}<Text inverse> </Text></Text>
      <Text dimColor>enter: send · esc: cancel</Text>
    </Frame>
  )
}
