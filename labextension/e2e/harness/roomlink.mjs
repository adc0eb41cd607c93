// A window's room websockets (api/crdtsync/room/...), routed through the test: the test
// can cut them and refuse new ones, as a broken network would, and restore them later.
// Only the room's connection is cut: the window's HTTP requests and kernel still work.

export class RoomLink {
  /**
   * Routes the room websockets of `page`; call before the page loads.
   * @param {import('playwright-core').Page} page
   */
  static async route(page) {
    const link = new RoomLink();
    await page.routeWebSocket(/\/api\/crdtsync\/room\//, socket => link._attach(socket));
    return link;
  }

  constructor() {
    /** Whether the connection is cut now. */
    this.offline = false;
    /** Room websockets that reached the server. */
    this.connected = 0;
    /** Room websockets the window opened while cut (each closed at once). */
    this.refused = 0;
    this._pairs = new Set();
  }

  _attach(socket) {
    if (this.offline) {
      this.refused += 1;
      socket.close({ code: 1001, reason: 'network cut by the test' });
      return;
    }
    const server = socket.connectToServer();
    this.connected += 1;
    const pair = { socket, server };
    this._pairs.add(pair);
    server.onMessage(message => socket.send(message));
    socket.onMessage(message => server.send(message));
    // With close handlers set, playwright forwards no close by itself: pass each on.
    server.onClose((code, reason) => {
      this._pairs.delete(pair);
      socket.close({ code, reason });
    });
    socket.onClose((code, reason) => {
      this._pairs.delete(pair);
      server.close({ code, reason });
    });
  }

  /** Drops every open room websocket, and refuses new ones until `restore()`. */
  cut() {
    this.offline = true;
    for (const pair of this._pairs) {
      this._pairs.delete(pair);
      // The real socket is the page's own WebSocket, whose close() takes only 1000 or
      // 3000-4999; the window is told 1001 (going away), as when a network drops.
      pair.server.close({ code: 1000, reason: 'network cut by the test' });
      pair.socket.close({ code: 1001, reason: 'network cut by the test' });
    }
  }

  /** New room websockets reach the server again (the window reconnects on its own). */
  restore() {
    this.offline = false;
  }
}
