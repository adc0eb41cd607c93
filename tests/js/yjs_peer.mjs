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

const connected = () => {
  if (provider === null) throw new Error('not connected: send "connect" first')
  return provider
}

const source = (cellId) => {
  const cell = cells.toArray().find((c) => c.get('id') === cellId)
  if (cell === undefined) throw new Error(`no cell with id ${JSON.stringify(cellId)}`)
  return cell.get('source')
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
