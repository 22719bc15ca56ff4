// Mozilla's add-on linter (web-ext lint, as addons.mozilla.org runs it) over the extension:
// the Firefox side of the one manifest. No errors, and no warnings but the one a
// cross-browser manifest cannot avoid.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import config from '../../web-ext-config.mjs';

const EXT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

// Firefox ignores background.service_worker and uses background.scripts; Chromium does the
// opposite. Both keys have to be there for one manifest to serve both.
const EXPECTED_WARNINGS = new Set(['BACKGROUND_SERVICE_WORKER_IGNORED']);

test('web-ext lint finds no errors and no unexpected warnings', async () => {
  let webExt;
  try {
    webExt = (await import('web-ext')).default;
  } catch (e) {
    throw new Error(`web-ext is missing (${e.message}): run \`npm ci\` in extension/ (bash tests/install-deps.sh does)`);
  }
  const result = await webExt.cmd.lint(
    { sourceDir: EXT, selfHosted: false, output: 'json', boring: true, ignoreFiles: config.ignoreFiles },
    { shouldExitProgram: false, runLinter: undefined },
  );
  const brief = (list) => list.map((m) => `${m.code} ${m.file ?? ''}: ${m.message}`);
  assert.deepEqual(brief(result.errors), []);
  assert.deepEqual(brief(result.warnings.filter((w) => !EXPECTED_WARNINGS.has(w.code))), []);
  assert.ok(result.summary, 'the linter ran');
  assert.equal(result.count >= 0, true);
});
