/**
 * A bottle's detail: its approval requests (the selected one answered with a/d), its git-gate
 * pushes, and the live tail of its egress audit (newest at the bottom), fitted to the height.
 */
import { Box, Text } from "ink"
import { visible } from "../../cli/render.ts"
import { age, type BottleDetail, type DashRow, egressText, fit } from "../model.ts"
import { statusColor, useTint } from "./theme.tsx"

export const Detail = (props: {
  readonly row: DashRow
  readonly detail: BottleDetail
  readonly selected: number
  readonly now: number
  readonly width: number
  readonly height: number
}) => {
  const tint = useTint()
  const { row, detail, width } = props
  const approvals = detail.approvals
  const pending = approvals.filter((a) => a.status === "pending").length
  // Room: header 1, approvals title 1 + up to 5, pushes title 1 + up to 3, egress title 1 + rest.
  const approvalLines = Math.min(5, Math.max(1, approvals.length))
  const pushLines = Math.min(3, Math.max(1, detail.pushes.length))
  const egressRoom = Math.max(1, props.height - 4 - approvalLines - pushLines)
  const firstApproval = Math.min(Math.max(0, props.selected - approvalLines + 1), Math.max(0, approvals.length - approvalLines))
  return (
    <Box flexDirection="column" width={width}>
      <Text wrap="truncate">
        <Text bold>{row.slug}</Text> <Text {...tint(row.color)}>{row.label}</Text> <Text {...tint(statusColor(row.status))}>{row.status}</Text>
        {` ${row.backend} · up ${age(row.createdAt, props.now) || "?"} · egress ${row.egress.allowed} ok / ${row.egress.denied} refused (5 min) · ${row.pushes} pushes`}
      </Text>
      <Text bold {...tint(pending > 0 ? "yellow" : undefined)}>{`Approvals (${pending} pending)`}</Text>
      {approvals.length === 0 ? <Text dimColor>  none</Text> : approvals.slice(firstApproval, firstApproval + approvalLines).map((a, i) => {
        const sel = firstApproval + i === props.selected
        const mark = a.status === "pending" ? "?" : a.status === "approved" ? "✓" : a.status === "denied" ? "✗" : "-"
        const note = a.note ? ` — ${visible(a.note)}` : ""
        return (
          <Text key={a.id} inverse={sel} wrap="truncate" {...tint(a.status === "pending" ? "yellow" : undefined)}>
            {fit(`${sel ? ">" : " "} ${mark} ${a.status.padEnd(8)} ${visible(a.kind).padEnd(10)} ${visible(a.title)}${note} [${visible(a.id)}]`, width)}
          </Text>
        )
      })}
      <Text bold>{`Pushes (${row.pushes})`}</Text>
      {detail.pushes.length === 0 ? <Text dimColor>  none</Text> : detail.pushes.slice(-pushLines).map((p, i) => (
        <Text key={i} wrap="truncate">{fit(`  ${p.time.slice(11, 19)} ${visible(p.ref)} ${visible(p.outcome)}`, width)}</Text>
      ))}
      <Text bold>Egress (newest last)</Text>
      {detail.egress.length === 0 ? <Text dimColor>  no requests yet</Text> : detail.egress.slice(-egressRoom).map((e, i) => (
        <Text key={i} wrap="truncate" {...tint(e.decision === "allow" ? undefined : "red")}>{fit(`  ${egressText(e)}`, width)}</Text>
      ))}
    </Box>
  )
}
