// Where things are, and what the e2e run uses (no imports with side effects: the browser
// check must set PLAYWRIGHT_BROWSERS_PATH before anything loads playwright).
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const HERE = path.dirname(fileURLToPath(import.meta.url));
export const REPO = path.resolve(HERE, '..', '..', '..');
export const LABEXTENSION = path.join(REPO, 'labextension');
export const BUILT_EXTENSION = path.join(REPO, 'jupyter_crdt_sync', 'labextension');
/** Screenshots, browser consoles and server logs, kept by CI. */
export const ARTIFACTS = path.join(LABEXTENSION, 'e2e', 'artifacts');
export const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium';

/**
 * CRDTSYNC_E2E_INSTALLED=1 tests what `pip install` put in the environment (front-end
 * and Python package, and the server extension enabled by its config). By default the
 * tests use this checkout: its built front-end (through a private JUPYTER_PATH, which
 * takes precedence over an installed copy), its Python package (first on PYTHONPATH),
 * and the server extension enabled in the test server's config.
 */
export const USE_INSTALLED = process.env.CRDTSYNC_E2E_INSTALLED === '1';
