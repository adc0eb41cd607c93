// A stock Yjs client for tests/test_yjs_client.py: y-websocket's WebsocketProvider, driven
// one command at a time.
//
//   node yjs_peer.mjs <server url ending in /api/crdtsync/room> <room name> <token>
//
// Each line on stdin is a JSON command, {"cmd": name, ...arguments}; each gets exactly one
// JSON line on stdout, {"ok": true, ...result} or {"ok": false, "error": message}, in order.
// Text indexes are Yjs's own: UTF-16 code units. Cells are named by their id. Closing stdin
// ends the peer.

import * as readline from 'node:readline'
import { isDeepStrictEqual } from 'node:util'
import WebSocket from 'ws'
import { WebsocketProvider } from 'y-websocket'
import * as Y from 'yjs'

const [serverUrl, roomName, token] = process.argv.slice(2)
const doc = new Y.Doc()
const cells = doc.getArray('cells')
/** @type {WebsocketProvider | null} */
let provider = null
// Set when the server closes the connection for good (codes 4400-4499): no reconnecting.
let refused = null
// How many times the websocket connected: a reconnect counts again.
let connections = 0
// A text file's room: jupyter-ydoc's YUnicode layout (root Text `source`).
const fileText = doc.getText('source')

const connected = () => {
  if (provider === null) throw new Error('not connected: send "connect" first')
  return provider
}

const source = (cellId) => {
  const cell = cells.toArray().find((c) => c.get('id') === cellId)
  if (cell === undefined) throw new Error(`no cell with id ${JSON.stringify(cellId)}`)
  return cell.get('source')
}

const ycell = (cellId) => {
  const cell = cells.toArray().find((c) => c.get('id') === cellId)
  if (cell === undefined) throw new Error(`no cell with id ${JSON.stringify(cellId)}`)
  return cell
}

// Cell id -> its outputs as JupyterLab's output model holds them, kept up to date from the
// shared document the way @jupyter/ydoc's YCodeCell reports changes and JupyterLab's
// CodeCellModel applies them: a stream text change is "remove n characters from the end
// of the last output, append"; inserted outputs are appended.
const outputModels = new Map()

const followOutputs = (cellId) => {
  const cell = ycell(cellId)
  const model = cell.get('outputs').toArray().map((output) => output.toJSON())
  outputModels.set(cellId, model)
  cell.observeDeep((events) => {
    const streamEvent = events.find((e) =>
      e.path.length === 3 && e.path[0] === 'outputs' && e.path[2] === 'text')
    const outputsEvent = events.find((e) => e.target === cell.get('outputs'))
    if (streamEvent) {
      for (const change of streamEvent.changes.delta) {
        const last = model[model.length - 1]
        if (change.delete) last.text = last.text.slice(0, last.text.length - change.delete)
        if (change.insert) last.text += change.insert.toString()
      }
    }
    if (outputsEvent) {
      let retain = 0
      for (const change of outputsEvent.changes.delta) {
        if (change.retain) retain += change.retain
        if (change.delete) model.splice(retain, change.delete)
        if (change.insert) {
          for (const output of change.insert) model.push(output.toJSON ? output.toJSON() : output)
        }
      }
    }
  })
}

const remoteStates = () => {
  const states = {}
  for (const [clientId, state] of connected().awareness.getStates()) {
    if (clientId !== doc.clientID) states[clientId] = state
  }
  return states
}

// Resolve once `check()` is true, re-checking after every document, awareness or sync event.
const until = (check, what, timeout = 10) => new Promise((resolve, reject) => {
  const p = connected()
  const recheck = () => {
    if (!check()) return
    done()
    resolve({})
  }
  const timer = setTimeout(() => {
    done()
    reject(new Error(`timed out after ${timeout} s waiting for ${what}`))
  }, timeout * 1000)
  const done = () => {
    clearTimeout(timer)
    doc.off('update', recheck)
    p.awareness.off('change', recheck)
    p.off('sync', recheck)
    p.off('closed', recheck)
  }
  doc.on('update', recheck)
  p.awareness.on('change', recheck)
  p.on('sync', recheck)
  p.on('closed', recheck)
  recheck()
})

const commands = {
  // Connect (or reconnect after "disconnect") and wait for the server's sync step 2, or for
  // the server to refuse the connection for good.
  async connect ({ timeout }) {
    refused = null
    if (provider === null) {
      provider = new WebsocketProvider(serverUrl, roomName, doc, {
        WebSocketPolyfill: WebSocket,
        params: { token },
        disableBc: true
      })
      provider.on('closed', (event) => { refused = event })
      provider.on('status', ({ status }) => { if (status === 'connected') connections += 1 })
    } else {
      provider.connect()
    }
    await until(() => provider.synced || refused !== null, 'sync', timeout)
    return { clientId: doc.clientID, synced: provider.synced, refused }
  },
  // Close the websocket the way a closing tab does: the local awareness state is announced
  // as gone first. The document stays, and edits made meanwhile sync on "connect".
  disconnect () {
    connected().disconnect()
    return {}
  },
  // Whether the websocket is open now, and how many times it connected.
  connection () {
    return { connected: connected().wsconnected, connections }
  },
  file_text () {
    return { text: fileText.toString() }
  },
  insert_file_text ({ index, text }) {
    fileText.insert(index, text)
    return { text: fileText.toString() }
  },
  wait_file_text ({ text, timeout }) {
    return until(() => fileText.toString() === text,
      `the file to read ${JSON.stringify(text)}`, timeout)
  },
  sources () {
    return { sources: cells.toArray().map((cell) => cell.get('source').toString()) }
  },
  insert ({ cell, index, text }) {
    source(cell).insert(index, text)
    return { source: source(cell).toString() }
  },
  delete ({ cell, index, length }) {
    source(cell).delete(index, length)
    return { source: source(cell).toString() }
  },
  wait_source ({ cell, text, timeout }) {
    return until(() => source(cell).toString() === text,
      `cell ${cell} to read ${JSON.stringify(text)}`, timeout)
  },
  // Follow these cells' outputs as JupyterLab would (see followOutputs).
  follow_outputs ({ cells: cellIds }) {
    for (const cellId of cellIds) followOutputs(cellId)
    return {}
  },
  // The followed outputs, and the shared types they are made of.
  outputs ({ cell }) {
    const types = ycell(cell).get('outputs').toArray().map((output) => ({
      map: output instanceof Y.Map,
      text: output.get('output_type') === 'stream' ? output.get('text') instanceof Y.Text : null
    }))
    return { model: outputModels.get(cell), shared: ycell(cell).get('outputs').toJSON(), types }
  },
  set_awareness ({ state }) {
    connected().awareness.setLocalState(state)
    return {}
  },
  awareness () {
    return { states: remoteStates() }
  },
  wait_awareness ({ state, timeout }) {
    return until(() => Object.values(remoteStates()).some((s) => isDeepStrictEqual(s, state)),
      `a peer with awareness state ${JSON.stringify(state)}`, timeout)
  }
}

const reply = (message) => process.stdout.write(JSON.stringify(message) + '\n')

for await (const line of readline.createInterface({ input: process.stdin })) {
  if (line.trim() === '') continue
  try {
    const { cmd, ...args } = JSON.parse(line)
    const command = commands[cmd]
    if (command === undefined) throw new Error(`unknown command ${JSON.stringify(cmd)}`)
    reply({ ok: true, ...(await command(args)) })
  } catch (error) {
    reply({ ok: false, error: String(error?.message ?? error) })
  }
}
// stdin closed: leave like a closing tab, and stop the awareness timer so that node exits.
provider?.destroy()
doc.destroy()
