// The console's browser flow, driven by Playwright (playwright-core) in Debian's Chromium
// against a real `sluice serve`. Run by `cli/tests/console.rs`, which starts the server,
// produces the demo data, registers a PostgreSQL target and creates the tokens, then checks
// the target's rows and the audit log itself. Every step is named; the first failure ends
// the run with a non-zero exit, the step's name, the page's URL and a screenshot.
//
// Environment: SLUICE_E2E_URL, SLUICE_E2E_{REQUESTER,APPROVER,AUDITOR,OWNER}_TOKEN, SLUICE_E2E_TEAM,
// SLUICE_E2E_PRODUCT, SLUICE_E2E_DATASET, SLUICE_E2E_CLUSTER, SLUICE_E2E_TARGET,
// SLUICE_E2E_SCREENSHOTS (a directory), CHROMIUM (default /usr/bin/chromium).

import { chromium } from 'playwright-core';
import { mkdirSync, readFileSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';

function env(name) {
  const value = process.env[name];
  if (!value) {
    console.error(`console e2e: ${name} is not set`);
    process.exit(2);
  }
  return value;
}

const url = env('SLUICE_E2E_URL');
const tokens = {
  requester: env('SLUICE_E2E_REQUESTER_TOKEN'),
  approver: env('SLUICE_E2E_APPROVER_TOKEN'),
  auditor: env('SLUICE_E2E_AUDITOR_TOKEN'),
  owner: env('SLUICE_E2E_OWNER_TOKEN'),
};
const team = env('SLUICE_E2E_TEAM');
const product = env('SLUICE_E2E_PRODUCT');
const dataset = env('SLUICE_E2E_DATASET');
const cluster = env('SLUICE_E2E_CLUSTER');
const target = env('SLUICE_E2E_TARGET');
const shots = env('SLUICE_E2E_SCREENSHOTS');
const qualified = `${team}/${product}`;
mkdirSync(shots, { recursive: true });
rmSync(join(shots, 'failure.png'), { force: true });

// Chromium logs every non-2xx fetch as "Failed to load resource"; the console causes some
// on purpose (a dry run answers 422 while the request is incomplete, a hidden panel's 403).
// Anything else the page logs as an error, or throws, fails the run.
const EXPECTED = /Failed to load resource: the server responded with a status of (403|404|409|422)/;
let current = 'start';
const consoleErrors = [];
// The step that signs in with a wrong token, whose 401 is the point.
const WRONG_TOKEN = 'a wrong token is refused with a message';

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  headless: true,
  args: [
    '--no-sandbox',
    '--disable-gpu',
    '--disable-quic',
    '--no-first-run',
    '--disable-background-networking',
    '--disable-component-update',
    '--disable-sync',
  ],
});
const context = await browser.newContext({ viewport: { width: 1366, height: 900 } });
const page = await context.newPage();
page.setDefaultTimeout(20_000);
page.on('console', (message) => {
  const refusedOnPurpose = current === WRONG_TOKEN && /status of 401/.test(message.text());
  if (message.type() === 'error' && !EXPECTED.test(message.text()) && !refusedOnPurpose) {
    consoleErrors.push(`${page.url()}: ${message.text()}`);
  }
});
page.on('pageerror', (error) => consoleErrors.push(`${page.url()}: uncaught ${error.message}`));


async function step(name, body) {
  current = name;
  const started = Date.now();
  await body();
  console.log(`ok   ${name} (${Date.now() - started} ms)`);
}

// axe-core, evaluated in the page (through the DevTools protocol, so the console's CSP,
// which admits no injected script, does not stand in the way).
const axeSource = readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');

/** Fails on any serious or critical accessibility violation axe-core finds on the page. */
async function accessible(name) {
  const violations = await page.evaluate(async (source) => {
    // eslint-disable-next-line no-eval
    (0, eval)(source);
    const result = await window.axe.run(document, { resultTypes: ['violations'] });
    return result.violations
      .filter((v) => v.impact === 'serious' || v.impact === 'critical')
      .map((v) => `${v.id} (${v.impact}): ${v.help} — ${v.nodes.map((n) => n.target.join(' ')).slice(0, 3).join(', ')}`);
  }, axeSource);
  if (violations.length > 0) {
    throw new Error(`accessibility violations on the ${name} page:\n${violations.join('\n')}`);
  }
}

/** A screenshot of the whole page (transitions finished), after its accessibility check. */
async function shot(name) {
  await accessible(name);
  await page.screenshot({ path: join(shots, `${name}.png`), fullPage: true, animations: 'disabled' });
}

async function expectText(locator, pattern, timeout = 20_000) {
  const deadline = Date.now() + timeout;
  let last = '';
  while (Date.now() < deadline) {
    last = (await locator.textContent().catch(() => '')) ?? '';
    if (pattern.test(last)) return last;
    await page.waitForTimeout(200);
  }
  throw new Error(`expected ${pattern} in ${locator}, last seen ${JSON.stringify(last)}`);
}

async function signIn(role) {
  await page.goto(`${url}/signin`);
  await page.getByRole('heading', { name: 'Sign in to Sluice' }).waitFor();
  await page.getByLabel('API token').fill(tokens[role]);
  await page.getByRole('button', { name: 'Sign in', exact: true }).click();
  await expectText(page.getByTestId('user-role'), new RegExp(role));
}

async function signOut() {
  await page.getByRole('button', { name: 'Sign out' }).click();
  await page.getByRole('heading', { name: 'Sign in to Sluice' }).waitFor();
}

try {
  await step('an unsigned visitor is sent to the sign-in page', async () => {
    await page.goto(url);
    await page.getByRole('heading', { name: 'Sign in to Sluice' }).waitFor();
    await shot('signin');
  });

  await step(WRONG_TOKEN, async () => {
    await page.getByLabel('API token').fill('slc_not-a-real-token-0000000000000000');
    await page.getByRole('button', { name: 'Sign in', exact: true }).click();
    await page.getByRole('alert').waitFor();
  });

  await step('the requester signs in with a token', async () => {
    await signIn('requester');
  });

  await step('the requester finds the orders dataset in the catalog', async () => {
    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Catalog' }).click();
    await page.getByRole('heading', { name: 'Catalog', exact: true, level: 1 }).waitFor();
    await page.getByRole('searchbox', { name: 'Search datasets' }).fill(`${dataset} field:amount`);
    await page.getByRole('link', { name: dataset, exact: true }).waitFor();
    await shot('catalog');
    await page.getByRole('link', { name: dataset, exact: true }).click();
    await page.getByRole('heading', { name: dataset, exact: true, level: 1 }).waitFor();
    await page.getByRole('table', { name: `Fields of ${dataset}` }).waitFor();
    // The schema marks shipping_email as personal data.
    await page.getByRole('row', { name: /shipping_email/ }).getByText('PII').waitFor();
    await shot('dataset');
  });

  await step('its samples come from the topic, personal data masked for a requester', async () => {
    await page.getByRole('tab', { name: 'Samples' }).click();
    await page.getByRole('button', { name: 'Refresh samples' }).waitFor();
    await page.getByText('•••').first().waitFor();
    await shot('dataset-samples');
  });

  await step('the requester builds the product in the form', async () => {
    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Request a product' }).click();
    await page.getByRole('heading', { name: 'Request a data product', level: 1 }).waitFor();
    await page.getByLabel('Name', { exact: true }).fill(product);
    await page.getByLabel('Description', { exact: true }).fill('Orders not cancelled, for the e2e test');
    const sourceDataset = page.getByLabel('Source 1 Dataset');
    if ((await sourceDataset.count()) === 0) {
      await page.getByRole('button', { name: 'Add source' }).click();
    }
    await page.getByLabel('Source 1 Dataset').selectOption(dataset);
    await page.getByLabel('Source 1 Read from').fill('earliest');
    await page.getByLabel('Filter (CEL)').fill('o.status != "CANCELLED"');
    for (const path of ['o.id', 'o.amount', 'o.status']) {
      await page.getByRole('checkbox', { name: path, exact: true }).check();
    }
    // The id field is renamed to order_id.
    for (let n = 1; n <= 3; n += 1) {
      const name = page.getByLabel(`Field ${n} name`);
      if ((await name.inputValue()) === 'id') await name.fill('order_id');
    }
    await page.getByLabel('Target cluster').selectOption(cluster);
    await page.getByLabel('Target name').fill(target);
  });

  await step('the form and the YAML editor show the same request', async () => {
    await page.getByRole('tab', { name: 'YAML' }).click();
    const yaml = await page.getByRole('textbox', { name: 'Product YAML' }).textContent();
    for (const text of [`name: ${product}`, `dataset: ${dataset}`, 'order_id: o.id', `cluster: ${cluster}`]) {
      if (!yaml.includes(text)) throw new Error(`the YAML lacks ${JSON.stringify(text)}:\n${yaml}`);
    }
    await shot('request-yaml');
    await page.getByRole('tab', { name: 'Form' }).click();
  });

  await step('a bad filter is shown at the filter field, then fixed', async () => {
    const filter = page.getByLabel('Filter (CEL)');
    await filter.fill('o.status ==');
    await expectText(page.getByTestId('plan-status'), /problem/);
    await page.waitForFunction(
      () => document.querySelector('[aria-invalid="true"]') !== null,
      null,
      { timeout: 20_000 },
    );
    await filter.fill('o.status != "CANCELLED"');
  });

  await step('the plan shows the output schema, the DDL and the backfill size', async () => {
    await expectText(page.getByTestId('plan-status'), /^Valid/, 30_000);
    const plan = page.getByRole('complementary', { name: 'Plan' });
    await plan.getByRole('table', { name: 'Output schema' }).getByText('order_id').waitFor();
    await plan.getByRole('heading', { name: 'Backfill' }).waitFor();
    const ddl = await plan.getByLabel('DDL statements').textContent();
    if (!/CREATE/i.test(ddl ?? '')) throw new Error(`no DDL in the plan: ${ddl}`);
    await shot('request');
  });

  await step('the requester submits the request', async () => {
    await page.getByRole('button', { name: 'Submit request' }).click();
    await expectText(page.getByRole('status').filter({ hasText: 'Request submitted' }), /awaits approval/);
    await page.getByRole('heading', { name: qualified, level: 1 }).waitFor();
  });

  await step('the approver signs in and sees the request in the inbox', async () => {
    await signOut();
    await signIn('approver');
    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Approvals' }).click();
    await page.getByRole('heading', { name: 'Approvals', exact: true, level: 1 }).waitFor();
    await page.getByRole('link', { name: qualified }).waitFor();
    await shot('approvals');
  });

  await step('the approver approves with a comment', async () => {
    await page.getByLabel(`Comment on ${qualified}`).fill('Looks right: no personal data leaves.');
    await page.getByRole('button', { name: `Approve ${qualified}` }).click();
    await page.getByRole('status').filter({ hasText: `Approved ${qualified}` }).waitFor();
  });

  await step('the product page follows the product until it is Live', async () => {
    await page.goto(`${url}/products/${team}/${product}`);
    await page.getByRole('heading', { name: qualified, level: 1 }).waitFor();
    await page.waitForFunction(
      () => document.querySelector('[data-testid="phase"]')?.getAttribute('data-phase') === 'Live',
      null,
      { timeout: 180_000, polling: 250 },
    );
    await expectText(page.getByTestId('live-mode'), /streaming|polling/);
    await page.getByRole('region', { name: 'Conditions' }).waitFor();
    await shot('product');
  });

  await step("an owner of the team reads the product's connection and credentials", async () => {
    await signOut();
    await signIn('owner');
    await page.goto(`${url}/products/${team}/${product}`);
    const connection = page.getByRole('region', { name: 'Connection' });
    await connection.getByRole('button', { name: 'Show credentials' }).click();
    const password = connection.getByLabel('Password', { exact: true });
    await password.waitFor();
    // Hidden until asked for.
    if ((await password.getAttribute('type')) !== 'password') throw new Error('the password shows before it is revealed');
    if ((await password.inputValue()).length < 16) throw new Error('the reader password is missing or short');
    await connection.getByRole('button', { name: 'Reveal password' }).click();
    if ((await password.getAttribute('type')) === 'password') throw new Error('Reveal password did not reveal it');
    await connection.getByRole('button', { name: 'Hide password' }).click();
    await shot('product-credentials');
  });

  await step('an auditor sees the request and the approval in the audit log, the chain intact', async () => {
    await signOut();
    await signIn('auditor');
    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Audit log' }).click();
    await page.getByRole('heading', { name: 'Audit log', level: 1 }).waitFor();
    await page.getByLabel('Team', { exact: true }).fill(team);
    await page.getByLabel('Name', { exact: true }).fill(product);
    await page.getByRole('button', { name: 'Apply filters' }).click();
    await expectText(page.locator('main'), /approve/, 20_000);
    await expectText(page.locator('main'), /intact/, 20_000);
    await shot('audit');
  });

  await step('the dark theme passes the same accessibility checks', async () => {
    await page.getByLabel('Colour theme').selectOption({ label: 'Dark' });
    await shot('audit-dark');
    await page.goto(`${url}/catalog/${dataset}`);
    await page.getByRole('heading', { name: dataset, exact: true, level: 1 }).waitFor();
    await shot('dataset-dark');
  });

  if (consoleErrors.length > 0) {
    current = 'no errors in the browser console';
    throw new Error(consoleErrors.join('\n'));
  }
  console.log('ok   no errors in the browser console');
} catch (error) {
  console.error(`FAIL ${current}\n  at ${page.url()}\n  ${error.stack ?? error}`);
  await page.screenshot({ path: join(shots, 'failure.png'), fullPage: true }).catch(() => {});
  await browser.close();
  process.exit(1);
}
await browser.close();
