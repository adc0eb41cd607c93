// A window's kernel websockets, routed through the test: what the kernel sends to the
// window can be held back, so that the window learns what the kernel does only from the
// document (the room), as a window whose kernel connection is slow or broken would.

export class KernelLink {
  /**
   * Routes the kernel websockets of `page`; call before the page loads.
   * @param {import('playwright-core').Page} page
   */
  static async route(page) {
    const link = new KernelLink();
    await page.routeWebSocket(/\/api\/kernels\/[^/]+\/channels/, socket => {
      const server = socket.connectToServer();
      link.sockets += 1;
      server.onMessage(message => {
        if (link.holding) {
          link.held += 1;
        } else {
          socket.send(message);
        }
      });
      socket.onMessage(message => server.send(message));
    });
    return link;
  }

  constructor() {
    /** Kernel websockets the window opened. */
    this.sockets = 0;
    /** Whether the kernel's messages are held back now. */
    this.holding = false;
    /** How many kernel messages were held back (and dropped). */
    this.held = 0;
  }

  /** From now on, the kernel's messages do not reach the window. */
  hold() {
    this.holding = true;
  }

  /** They reach it again; those held back are lost, as on a broken connection. */
  release() {
    this.holding = false;
  }
}
