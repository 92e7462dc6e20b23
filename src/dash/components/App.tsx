/**
 * `bottle dash`: the list, a bottle's detail, the start modal, the stop confirmation, alerts and
 * the help line, driven from the keyboard. State comes from the DashStore (live) and actions go
 * through the DashApi (the CLI's programs); every action is asynchronous, so the screen keeps
 * drawing while a launch or a stop runs. Sized to the terminal (re-laid out on resize; 80×24
 * fits everything).
 */
import { Box, Text, useApp, useInput, useWindowSize } from "ink"
import { useEffect, useRef, useState, useSyncExternalStore } from "react"
import type { LaunchStep } from "../../schema/LaunchProgress.ts"
import type { AgentChoice, DashApi, Preflight } from "../feed.ts"
import type { DashStore } from "../store.ts"
import { Alerts } from "./Alerts.tsx"
import { BottleList } from "./BottleList.tsx"
import { Detail } from "./Detail.tsx"
import { HelpLine } from "./HelpLine.tsx"
import { useTint } from "./theme.tsx"
import { AgentPicker, ConfirmStop, type LaunchView, NotePrompt, PlanModal, ProgressModal, requestLines } from "./Modal.tsx"

type Modal =
  | { readonly k: "pick"; readonly manifestFile?: string; readonly agents?: ReadonlyArray<AgentChoice>; readonly selected: number; readonly error?: string }
  | { readonly k: "planning"; readonly agent: string }
  | { readonly k: "plan"; readonly pre: Preflight; readonly scroll: number }
  | { readonly k: "launch"; readonly view: LaunchView }
  | { readonly k: "stop"; readonly slug: string; readonly purge: boolean }
  | { readonly k: "note"; readonly slug: string; readonly id: string; readonly title: string; readonly details: string | undefined; readonly decision: "approve" | "deny"; readonly note: string; readonly scroll: number }

export interface AppProps {
  readonly store: DashStore
  readonly api: DashApi
  /** Fixed size (tests); default: the terminal's, following resizes. */
  readonly size?: { readonly columns: number; readonly rows: number }
}

export const App = (props: AppProps) => {
  const { store, api } = props
  const snap = useSyncExternalStore(store.subscribe, store.getSnapshot)
  const win = useWindowSize()
  const columns = Math.max(40, props.size?.columns ?? win.columns ?? 80)
  const rows = Math.max(10, props.size?.rows ?? win.rows ?? 24)
  const width = columns - 1
  const app = useApp()
  const tint = useTint()
  const [selected, setSelected] = useState(0)
  const [view, setView] = useState<"list" | "detail">("list")
  const [approval, setApproval] = useState(0)
  const [modal, setModal] = useState<Modal | undefined>(undefined)
  const [info, setInfo] = useState("")

  const row = snap.rows[Math.min(selected, snap.rows.length - 1)]
  const detail = row ? store.detail(row.slug) : undefined
  useEffect(() => {
    if (selected >= snap.rows.length && snap.rows.length > 0) setSelected(snap.rows.length - 1)
    if (view === "detail" && !row) setView("list")
  }, [snap.rows.length, selected, view, row])

  const fail = (what: string) => (e: unknown) => store.alert("error", `${what}: ${(e as Error).message}`)

  const openStart = () => {
    setModal({ k: "pick", selected: 0 })
    api.agents().then(
      (r) => setModal((m) => (m?.k === "pick" ? { ...m, manifestFile: r.manifestFile, agents: r.agents } : m)),
      (e: Error) => setModal((m) => (m?.k === "pick" ? { ...m, error: e.message } : m))
    )
  }

  const showPlan = (agent: string) => {
    setModal({ k: "planning", agent })
    api.preflight(agent).then(
      (pre) => setModal((m) => (m?.k === "planning" ? { k: "plan", pre, scroll: 0 } : m)),
      (e: Error) => setModal((m) => (m?.k === "planning" ? { k: "pick", selected: 0, error: e.message } : m))
    )
  }

  const startLaunch = (pre: Preflight) => {
    const slug = pre.plan.slug
    let v: LaunchView = { slug, steps: [], build: "", state: "running", message: "" }
    const show = () => setModal((m) => (m?.k === "launch" && m.view.slug === slug ? { k: "launch", view: v } : m))
    setModal({ k: "launch", view: v })
    api.launch(pre, (event) => {
      v = event._tag === "Step"
        ? { ...v, steps: v.steps.includes(event.step) ? v.steps : [...v.steps, event.step as LaunchStep], build: "" }
        : { ...v, build: event.line }
      show()
    }).then(
      async () => {
        void store.refreshList()
        const said = await api.openTerminal(slug).catch((e: Error) => `could not open its terminal (${e.message}): run \`bottle resume ${slug}\``)
        v = { ...v, state: "done", message: `bottle ${slug} is running. ${said}` }
        show()
      },
      (e: Error) => {
        v = { ...v, state: "failed", message: e.message }
        show()
        void store.refreshList()
      }
    )
  }

  const stop = (slug: string, purge: boolean) => {
    setInfo(`stopping ${slug}…`)
    api.stop(slug, purge).then((out) => {
      if (out._tag === "Stopped") {
        setInfo(out.leftovers.length > 0 ? `${slug} stopped; left behind: ${out.leftovers.join(", ")}` : `${slug} stopped${purge ? " and purged" : ""}`)
      } else {
        setInfo("")
        for (const r of out.revocation) store.alert("revocation", `${slug}: ${r}`)
        for (const o of out.other) store.alert("error", `stopping ${slug}: ${o}`)
      }
      void store.refreshList()
    }, fail(`stopping ${slug}`))
  }

  const answer = (m: Extract<Modal, { k: "note" }>) => {
    setModal(undefined)
    api.answer(m.slug, m.id, m.decision, m.note.trim() === "" ? undefined : m.note.trim()).then(
      (said) => {
        setInfo(said)
        void store.refreshBottle(m.slug)
      },
      fail(`answering ${m.id}`)
    )
  }

  const openTerminal = (slug: string) => api.openTerminal(slug).then(setInfo, fail(`opening ${slug}`))

  // The latest state, for the key handler: a key may arrive after a render but before Ink hands
  // the new handler over (an effect), and must then act on what is on the screen.
  const live = useRef({ modal, view, row, detail, approval, count: snap.rows.length })
  live.current = { modal, view, row, detail, approval, count: snap.rows.length }

  useInput((input, key) => {
    const { modal, view, row, detail, approval } = live.current
    if (modal) {
      switch (modal.k) {
        case "pick": {
          const n = modal.agents?.length ?? 0
          if (key.escape || input === "q") setModal(undefined)
          else if (key.upArrow || input === "k") setModal({ ...modal, selected: Math.max(0, modal.selected - 1) })
          else if (key.downArrow || input === "j") setModal({ ...modal, selected: Math.min(n - 1, modal.selected + 1) })
          else if (key.return && n > 0) showPlan(modal.agents![modal.selected]!.name)
          return
        }
        case "planning":
          if (key.escape) setModal(undefined)
          return
        case "plan":
          if (key.escape || input === "n" || input === "q") setModal(undefined)
          else if (key.upArrow || input === "k") setModal({ ...modal, scroll: Math.max(0, modal.scroll - 1) })
          else if (key.downArrow || input === "j") setModal({ ...modal, scroll: modal.scroll + 1 })
          else if (input === "y" && modal.pre.problems.length === 0) startLaunch(modal.pre)
          return
        case "launch":
          if (modal.view.state !== "running" && (key.return || key.escape)) setModal(undefined)
          return
        case "stop":
          if (input === "y") {
            setModal(undefined)
            stop(modal.slug, modal.purge)
          } else if (input === "n" || key.escape || key.return) setModal(undefined)
          return
        case "note":
          if (key.escape) setModal(undefined)
          else if (key.return) answer(modal)
          // The request may be longer than the modal: arrows read it all (they type nothing).
          else if (key.upArrow) setModal({ ...modal, scroll: Math.max(0, modal.scroll - 1) })
          else if (key.downArrow) setModal({ ...modal, scroll: Math.min(modal.scroll + 1, Math.max(0, requestLines(modal.title, modal.details, width - 4).length - Math.max(3, body - 6))) })
          // Text and Enter in one read (a paste, a fast terminal): the text, then send.
          else if (/[\r\n]/.test(input) && !key.ctrl && !key.meta) answer({ ...modal, note: (modal.note + input.split(/[\r\n]/)[0]!).replace(/[\u0000-\u001f\u007f]/g, "").slice(0, 500) })
          else if (key.backspace || key.delete) setModal({ ...modal, note: modal.note.slice(0, -1) })
          else if (input && !key.ctrl && !key.meta && modal.note.length < 500) setModal({ ...modal, note: modal.note + input.replace(/[\u0000-\u001f\u007f]/g, "") })
          return
      }
    }
    if (input === "q" || (key.ctrl && input === "c")) {
      app.exit()
      return
    }
    if (input === "c") return store.dismiss()
    if (input === "s") return openStart()
    if (!row) return
    if (input === "x" || input === "X") return setModal({ k: "stop", slug: row.slug, purge: input === "X" })
    if (input === "o") return void openTerminal(row.slug)
    if (view === "list") {
      if (key.upArrow || input === "k") setSelected((s) => Math.max(0, s - 1))
      else if (key.downArrow || input === "j") setSelected((s) => Math.min(live.current.count - 1, s + 1))
      else if (key.return) {
        setView("detail")
        setApproval(0)
        void store.refreshBottle(row.slug)
      }
      return
    }
    const approvals = detail?.approvals ?? []
    if (key.escape || key.leftArrow) setView("list")
    else if (key.upArrow || input === "k") setApproval((a) => Math.max(0, a - 1))
    else if (key.downArrow || input === "j") setApproval((a) => Math.min(approvals.length - 1, a + 1))
    else if (input === "a" || input === "d") {
      const target = approvals[Math.min(approval, approvals.length - 1)]
      if (target?.status === "pending") setModal({ k: "note", slug: row.slug, id: target.id, title: target.title, details: target.details, decision: input === "a" ? "approve" : "deny", note: "", scroll: 0 })
      else setInfo(target ? `${target.id} is already ${target.status}` : "no approval request selected")
    }
  })

  const pending = snap.rows.reduce((n, r) => n + r.pending, 0)
  const alertRows = snap.alerts.length === 0 ? 0 : Math.min(3, snap.alerts.length) + 3
  const body = rows - 3 - alertRows
  const helpMode = modal ? (modal.k === "note" ? "note" : modal.k === "launch" ? "progress" : "modal") : view
  return (
    <Box flexDirection="column" width={columns} height={rows}>
      <Text bold wrap="truncate">
        {`bottle dash · ${snap.rows.length} bottle${snap.rows.length === 1 ? "" : "s"} · ${snap.rows.filter((r) => r.status === "running").length} running · `}
        <Text {...tint(pending > 0 ? "yellow" : undefined)}>{`${pending} pending approval${pending === 1 ? "" : "s"}`}</Text>
      </Text>
      <Alerts alerts={snap.alerts} width={width} />
      <Box flexDirection="column" height={body} overflow="hidden">
        {modal?.k === "pick" ? <AgentPicker manifestFile={modal.manifestFile} agents={modal.agents} selected={modal.selected} error={modal.error} width={width} />
          : modal?.k === "planning" ? <Text>{`planning ${modal.agent}… (nothing is built or started before you confirm)`}</Text>
          : modal?.k === "plan" ? <PlanModal pre={modal.pre} scroll={modal.scroll} width={width} height={body} />
          : modal?.k === "launch" ? <ProgressModal view={modal.view} width={width} />
          : modal?.k === "stop" ? <ConfirmStop slug={modal.slug} purge={modal.purge} width={width} />
          : modal?.k === "note" ? <NotePrompt decision={modal.decision} id={modal.id} title={modal.title} details={modal.details} note={modal.note} scroll={modal.scroll} width={width} height={body} />
          : view === "detail" && row && detail ? <Detail row={row} detail={detail} selected={approval} now={snap.now} width={width} height={body} />
          : <BottleList rows={snap.rows} selected={selected} now={snap.now} height={body} loaded={snap.loaded} />}
      </Box>
      <Text wrap="truncate">{info}</Text>
      <HelpLine mode={helpMode} width={width} />
    </Box>
  )
}
