import { existsSync, mkdirSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer, connect, type Server, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, inject, it, vi, type TestContext } from 'vitest';
import { createKeys } from '@askq/shared';
import { startAskq, waitForIngestion, type TestAskq } from '../support/askq.js';
import { isCI } from '../support/ci.js';
import { EVENT_NAMES } from '../support/sse-client.js';
import {
  createFakeLlm,
  promptSources,
  type FakeLlm,
  type FakeLlmRequest,
} from '../support/fake-llm.js';

// The demo page at GET / (apps/api/public), driven in headless Chromium through the real API.
// Debian's chromium is used with playwright-core; nothing is downloaded.

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const HAVE_CHROMIUM = existsSync(CHROMIUM);
const SKIP_REASON =
  !HAVE_CHROMIUM && !isCI()
    ? `${CHROMIUM} is not installed (apt-get install chromium); under CI=true this fails instead`
    : undefined;

// The README's screenshots are rewritten only when asked (UPDATE_SCREENSHOTS=1); otherwise they
// go to a folder of this run, so a test run leaves the tracked files alone.
const DOCS_DIR = process.env.UPDATE_SCREENSHOTS
  ? fileURLToPath(new URL('../../docs/', import.meta.url))
  : `${mkdtempSync(join(tmpdir(), 'askq-screens-'))}/`;
const SCREENSHOT = `${DOCS_DIR}demo-page.png`;
const SCREENSHOT_PHONE = `${DOCS_DIR}demo-page-phone.png`;

const DOCS = [
  {
    id: 'tides',
    title: 'Tides',
    text: '# Tides\n\nTides are caused by the gravitational pull of the Moon and the Sun on the oceans. Spring tides happen at new and full moon, when the pulls line up; neap tides happen at the quarter moons, when they work against each other.',
  },
  {
    id: 'volcanoes',
    title: 'Volcanoes',
    text: '# Volcanoes\n\nA volcano erupts when magma rises through the crust. Basalt lava is runny; rhyolite lava is thick and traps gas.',
  },
];
const ANSWER =
  'Tides are caused by the gravitational pull of the Moon and the Sun on the oceans [1]. Spring tides happen at new and full moon, when the pulls line up [1].';
const SLOW_ANSWER = Array.from(
  { length: 8 },
  () =>
    'Neap tides happen at the quarter moons, when the Moon and the Sun work against each other [1].',
).join(' ');
const API_KEY = 'demo-page-key-0123456789';

// Two ferries told alike. "How long does the crossing take?" on its own finds the Skye one (its
// passage says "crossing" twice); only the conversation can make it mean the Mull one. Their own
// collection leaves DOCS' counts as they are.
const FERRY_COLLECTION = 'ferries';
const FERRIES = [
  {
    id: 'mull-ferry',
    title: 'The Oban ferry to Mull',
    text: '# The Oban ferry to Mull\n\nThe Oban ferry to Mull sails from Oban to Craignure on the Isle of Mull. The Mull ferry carries cars, bicycles and foot passengers across the Firth of Lorn. The crossing takes 46 minutes. Tickets for the Oban ferry to Mull are sold at the Oban terminal.',
  },
  {
    id: 'skye-ferry',
    title: 'The Mallaig ferry to Skye',
    text: '# The Mallaig ferry to Skye\n\nThe Mallaig ferry to Armadale on Skye sails from Mallaig to Armadale on the Isle of Skye. The Skye ferry carries cars, bicycles and foot passengers across the Sound of Sleat. The crossing takes 30 minutes; in rough weather the crossing can take longer. Tickets for the Mallaig ferry to Skye are sold at the Mallaig terminal.',
  },
];

/**
 * A fake model that reads its prompt, so the answer shows what retrieval found: asked to rewrite
 * a follow-up, it names the conversation's first question in it; asked to answer, it quotes the
 * sentence of source [1] that shares most words with the question, citing it.
 */
function readingModel(req: FakeLlmRequest): { text: string; chunkDelayMs: number } {
  const messages = (req.body?.messages ?? []) as Array<{ role: string; content: string }>;
  const last = messages.at(-1)?.content ?? '';
  const followUp = /^Follow-up question: (.*)$/m.exec(last);
  if (followUp) {
    const first = /^User: (.*)$/m.exec(last)?.[1] ?? '';
    return { text: `${followUp[1]} (${first})`, chunkDelayMs: 0 };
  }
  const question = /^Question: (.*)$/m.exec(last)?.[1] ?? '';
  const [first] = promptSources(req);
  // The passage begins with its heading, a Markdown line of its own: no sentence to quote.
  const source = (first?.text ?? '').replace(/^#{1,6} [^\n]*\n+/, '').replace(/\s+/g, ' ');
  const words = (text: string) => new Set(text.toLowerCase().match(/[a-z]+/g) ?? []);
  const asked = words(question);
  const shared = (sentence: string) => [...words(sentence)].filter((w) => asked.has(w)).length;
  const sentences = source.trim().split(/(?<=\.)\s+/);
  const best = sentences.reduce((a, b) => (shared(b) > shared(a) ? b : a), sentences[0] ?? '');
  return { text: `${best} [1]`, chunkDelayMs: 10 };
}

let llm: FakeLlm;
let askq: TestAskq;
let proxy: Proxy;
let browser: Browser;

beforeAll(async () => {
  if (SKIP_REASON) {
    console.warn(`demo page tests skipped: ${SKIP_REASON}`);
    return;
  }
  if (!HAVE_CHROMIUM) throw new Error(`${CHROMIUM} is missing: CI must install chromium`);
  llm = await createFakeLlm();
  askq = await startAskq({
    env: { LLM_BASE_URL: llm.baseURL, TOKEN_BATCH_MS: '10', RETRY_BASE_DELAY_MS: '50' },
  });
  await askq.seed(DOCS);
  await askq.seed(FERRIES, FERRY_COLLECTION);
  // The browser reaches the API through a TCP proxy, so a test can cut its connections.
  proxy = await startProxy(Number(new URL(askq.url).port));
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--no-first-run',
    ],
  });
  mkdirSync(DOCS_DIR, { recursive: true });
});

afterAll(async () => {
  await browser?.close();
  await proxy?.close();
  await askq?.stop();
  await llm?.close();
});

function skipWithoutChromium(ctx: TestContext): void {
  if (SKIP_REASON) ctx.skip(SKIP_REASON);
}

async function openPage(
  base: string,
  options: { width: number; height: number; phone?: boolean },
): Promise<{ context: BrowserContext; page: Page }> {
  const context = await browser.newContext({
    viewport: { width: options.width, height: options.height },
    deviceScaleFactor: 1,
    isMobile: options.phone === true,
    hasTouch: options.phone === true,
    colorScheme: 'light',
    reducedMotion: 'reduce',
  });
  const page = await context.newPage();
  const problems: string[] = [];
  page.on('pageerror', (error) => problems.push(error.message));
  const res = await page.goto(`${base}/`);
  expect(res?.status(), 'GET / must serve the demo page').toBe(200);
  expect(problems).toEqual([]);
  return { context, page };
}

const answerOf = async (page: Page) => (await page.locator('#answer').textContent()) ?? '';

async function ask(page: Page, question: string): Promise<void> {
  await page.getByLabel('Question', { exact: true }).fill(question);
  await page.getByRole('button', { name: 'Ask', exact: true }).click();
}

async function waitForStatus(page: Page, status: string, timeout = 20_000): Promise<void> {
  await page.locator(`#status-line[data-status="${status}"]`).waitFor({ timeout });
}

/** The answer text at a moment when some tokens are shown and generation is still running. */
async function partialAnswer(page: Page): Promise<string> {
  // Read in the same evaluation as the check, so the answer cannot complete in between. In-page
  // code is given as a string: this project type-checks without the DOM library.
  const handle = await page.waitForFunction(
    `document.querySelector('#stages [data-stage="generation"]').dataset.state === 'started' &&
      document.querySelector('#answer .placeholder') === null &&
      document.getElementById('answer').textContent`,
    undefined,
    { timeout: 20_000, polling: 10 },
  );
  return String(await handle.jsonValue());
}

async function expectCompletedAnswer(page: Page, partial: string): Promise<void> {
  // Every stage completed, with its duration in milliseconds.
  for (const stage of ['retrieval', 'generation', 'validation']) {
    const item = page.locator(`#stages [data-stage="${stage}"]`);
    expect(await item.getAttribute('data-state')).toBe('completed');
    expect(await item.locator('.stage-state').textContent()).toBe('completed');
    expect(await item.locator('.stage-ms').textContent()).toMatch(/^\d+ ms$/);
  }
  // The answer grew token by token: what was shown mid-stream is a strict prefix of the answer.
  const final = await answerOf(page);
  expect(final).toBe(ANSWER);
  expect(partial.length).toBeGreaterThan(0);
  expect(partial.length).toBeLessThan(final.length);
  expect(final.startsWith(partial)).toBe(true);
  // Citations link to their sources.
  expect(await page.locator('#answer a.cite').first().getAttribute('href')).toBe('#source-1');

  const sources = page.locator('#sources li');
  expect(await sources.count()).toBeGreaterThan(0);
  expect(await sources.first().locator('.source-title').textContent()).toBe('[1] Tides');
  expect(await sources.first().locator('.source-id').textContent()).toBe('tides#0');
  expect(await sources.first().locator('.score').textContent()).toMatch(/^score \d\.\d\d$/);
  expect(await sources.first().locator('.excerpt').textContent()).toContain('gravitational pull');

  const names = await page.locator('#checks li .check-name').allTextContents();
  const verdicts = await page.locator('#checks li .check-verdict').allTextContents();
  const checks = names.map((name, i) => [name, verdicts[i]]);
  expect(checks).toEqual([
    ['non_empty', 'pass'],
    ['length', 'pass'],
    ['citations', 'pass'],
    ['grounding', 'pass'],
  ]);
  expect(await page.locator('#validation-summary').textContent()).toBe('All 4 checks passed.');

  const field = (name: string) => page.locator(`#result [data-field="${name}"]`).textContent();
  expect(await field('route')).toBe('fast');
  expect(await field('cached')).toBe('no');
  expect(await field('model')).not.toBe('—');
  expect(await field('usage')).toMatch(/^\d+ \/ \d+$/);
  expect(await field('totalMs')).toMatch(/^\d+ ms$/);
  expect(await page.getByRole('button', { name: 'Cancel' }).isDisabled()).toBe(true);
  expect(await page.locator('#error').isHidden()).toBe(true);
}

describe('the demo page at GET /', () => {
  it('asks, shows stages, tokens as they stream, sources and checks; saves a screenshot', async (ctx) => {
    skipWithoutChromium(ctx);
    llm.reply(() => ({ text: ANSWER, chunkDelayMs: 30 }));
    const { context, page } = await openPage(proxy.url, { width: 1280, height: 900 });
    try {
      // Every form control has a label, and the collection picker knows the seeded collection.
      const unlabelled = await page.evaluate<string[]>(
        `[...document.querySelectorAll('input, select, textarea')]
          .filter((el) => el.labels.length === 0)
          .map((el) => el.id)`,
      );
      expect(unlabelled).toEqual([]);
      await expect
        .poll(() => page.locator('#collection-hint').textContent())
        .toContain('default (2 documents)');
      expect(await page.locator('#collection-list option').first().getAttribute('value')).toBe(
        'default',
      );

      await page.getByLabel('Model').selectOption('fast');
      await ask(page, 'What causes tides?');
      const partial = await partialAnswer(page);
      expect(await page.getByRole('button', { name: 'Cancel' }).isEnabled()).toBe(true);
      expect(await page.locator('#answer').getAttribute('aria-live')).toBe('polite');
      await waitForStatus(page, 'completed');
      await expectCompletedAnswer(page, partial);

      await page.screenshot({ path: SCREENSHOT, fullPage: true });

      // The same question again, on its own (a follow-up is another question): the exact cache
      // answers the POST with the result at once.
      await page.getByRole('button', { name: 'New conversation' }).click();
      await ask(page, 'What causes tides?');
      await waitForStatus(page, 'completed');
      expect(await page.locator('#status-text').textContent()).toBe(
        'Completed — answered from the cache.',
      );
      expect(await page.locator('#result [data-field="cached"]').textContent()).toBe('yes');
      expect(await answerOf(page)).toBe(ANSWER);
    } finally {
      await context.close();
    }
  });

  it('asks a follow-up that continues the conversation, and starts a new one', async (ctx) => {
    skipWithoutChromium(ctx);
    llm.reply(readingModel);
    const { context, page } = await openPage(proxy.url, { width: 1280, height: 900 });
    const posted = () =>
      page
        .waitForRequest((r) => r.method() === 'POST' && r.url().endsWith('/v1/questions'))
        .then((r) => JSON.parse(r.postData() ?? '{}') as Record<string, unknown>);
    try {
      await page.getByLabel('Collection').fill(FERRY_COLLECTION);
      // One source: the follow-up must find the Mull passage itself, not merely list it too.
      await page.getByLabel('Sources to retrieve').fill('1');
      expect(await page.locator('#conversation').isHidden()).toBe(true);

      let request = posted();
      await ask(page, 'Tell me about the ferry to Mull');
      expect((await request).previousQuestionId).toBeUndefined();
      await waitForStatus(page, 'completed');
      const first = (await page.locator('#question-id').textContent()) ?? '';
      expect(await answerOf(page)).toBe(
        'The Oban ferry to Mull sails from Oban to Craignure on the Isle of Mull. [1]',
      );

      // The completed turn is the conversation now, and the next question follows it up.
      const conversation = page.getByRole('region', { name: 'Conversation' });
      await conversation.waitFor();
      const turns = conversation.locator('.turn');
      expect(await turns.count()).toBe(1);
      expect(await turns.first().locator('.turn-question').textContent()).toContain(
        'Tell me about the ferry to Mull',
      );
      expect(await page.getByLabel('Question', { exact: true }).inputValue()).toBe('');
      expect(await page.locator('#question-mode').textContent()).toMatch(/follows up/);

      request = posted();
      await ask(page, 'How long does the crossing take?');
      expect((await request).previousQuestionId).toBe(first);
      expect(await page.locator('#asked').textContent()).toMatch(
        /Follow-up\s+How long does the crossing take\?/,
      );
      await waitForStatus(page, 'completed');
      // The Mull ferry's crossing, not the Skye one's: the conversation said which ferry.
      expect(await answerOf(page)).toBe('The crossing takes 46 minutes. [1]');
      const sources = page.locator('#sources li');
      expect(await sources.count()).toBe(1);
      expect(await sources.first().locator('.source-title').textContent()).toBe(
        '[1] The Oban ferry to Mull',
      );
      expect(await page.locator('#validation-summary').textContent()).toBe('All 4 checks passed.');
      const followUp = (await page.locator('#question-id').textContent()) ?? '';
      const view = (await (await fetch(`${askq.url}/v1/questions/${followUp}`)).json()) as {
        previousQuestionId?: string;
      };
      expect(view.previousQuestionId).toBe(first);
      expect(await turns.count()).toBe(2);
      expect(await turns.nth(1).locator('.turn-answer').textContent()).toContain('46 minutes');

      // "New conversation", from the keyboard: the thread goes, the focus goes to the question.
      await page.getByRole('button', { name: 'New conversation' }).focus();
      await page.keyboard.press('Enter');
      expect(await conversation.isHidden()).toBe(true);
      expect(await page.evaluate<string>('document.activeElement.id')).toBe('question');
      expect(await page.locator('#question-mode').textContent()).toMatch(/stands alone/);

      request = posted();
      await page.keyboard.type('How long does the crossing take?');
      await page.keyboard.press('Control+Enter');
      expect(await request).not.toHaveProperty('previousQuestionId');
      expect(await page.locator('#asked-kind').textContent()).toBe('Question');
      await waitForStatus(page, 'completed');
      // On its own the question finds the other ferry: it was the conversation that said Mull.
      expect(await answerOf(page)).toContain('30 minutes');
      expect(await sources.first().locator('.source-title').textContent()).toBe(
        '[1] The Mallaig ferry to Skye',
      );
      // It starts a conversation of its own.
      expect(await turns.count()).toBe(1);
      expect(await turns.first().getAttribute('data-question-id')).toBe(
        await page.locator('#question-id').textContent(),
      );
    } finally {
      await context.close();
    }
  });

  it('reads well on a phone: one column, nothing wider than the screen', async (ctx) => {
    skipWithoutChromium(ctx);
    llm.reply(() => ({ text: ANSWER, chunkDelayMs: 10 }));
    const { context, page } = await openPage(proxy.url, { width: 390, height: 844, phone: true });
    try {
      await page.getByLabel('Model').selectOption('fast');
      await page.getByLabel('Use the answer cache').uncheck();
      await ask(page, 'What causes the tides?');
      await waitForStatus(page, 'completed');
      expect(await answerOf(page)).toBe(ANSWER);

      const layout = await page.evaluate<{
        scrollWidth: number;
        columns: number;
        fontSize: string;
      }>(
        `({
          scrollWidth: document.documentElement.scrollWidth,
          columns: getComputedStyle(document.querySelector('main')).gridTemplateColumns.split(' ')
            .length,
          fontSize: getComputedStyle(document.getElementById('answer')).fontSize,
        })`,
      );
      expect(layout.scrollWidth).toBeLessThanOrEqual(390);
      expect(layout.columns).toBe(1);
      expect(parseFloat(layout.fontSize)).toBeGreaterThanOrEqual(16);

      await page.screenshot({ path: SCREENSHOT_PHONE, fullPage: true });
    } finally {
      await context.close();
    }
  });

  it('cancels a slow question', async (ctx) => {
    skipWithoutChromium(ctx);
    llm.reply(() => ({ text: SLOW_ANSWER, chunkDelayMs: 200 }));
    const { context, page } = await openPage(proxy.url, { width: 1280, height: 900 });
    try {
      await ask(page, 'When do neap tides happen?');
      const partial = await partialAnswer(page);
      const id = await page.locator('#question-id').textContent();
      const cancel = page.getByRole('button', { name: 'Cancel' });
      expect(await cancel.isEnabled()).toBe(true);
      await cancel.click();

      await waitForStatus(page, 'cancelled');
      expect(await page.locator('#status-text').textContent()).toBe('Cancelled.');
      expect(
        await page.locator('#stages [data-stage="generation"]').getAttribute('data-state'),
      ).toBe('cancelled');
      expect(await cancel.isDisabled()).toBe(true);
      // The tokens shown before the cancel stay; the rest never came.
      const shown = await answerOf(page);
      expect(shown.startsWith(partial)).toBe(true);
      expect(shown.length).toBeLessThan(SLOW_ANSWER.length);

      const view = (await (await fetch(`${askq.url}/v1/questions/${id}`)).json()) as {
        status: string;
      };
      expect(view.status).toBe('cancelled');
    } finally {
      await context.close();
    }
  });

  it('discards the tokens of a failed attempt when a retry event comes', async (ctx) => {
    skipWithoutChromium(ctx);
    let calls = 0;
    // The first attempt's model server dies after a few words; the second answers in full.
    llm.reply(() =>
      ++calls === 1
        ? { text: 'Wrong words that must go away before the real answer', dropAfterChunks: 4 }
        : { text: ANSWER, chunkDelayMs: 10 },
    );
    const { context, page } = await openPage(proxy.url, { width: 1280, height: 900 });
    try {
      await page.getByLabel('Model').selectOption('fast');
      await ask(page, 'What do the Moon and the Sun pull on?');
      await waitForStatus(page, 'completed');
      expect(await answerOf(page)).toBe(ANSWER);
      expect(await page.locator('#attempt').textContent()).toBe('2');
      expect(await page.locator('#notices').textContent()).toMatch(
        /Attempt 1 failed \(LLM_UNAVAILABLE\); the answer so far was discarded/,
      );
    } finally {
      await context.close();
    }
  });

  it('resumes the stream with Last-Event-ID after a network blip, losing and repeating nothing', async (ctx) => {
    skipWithoutChromium(ctx);
    llm.reply(() => ({ text: ANSWER, chunkDelayMs: 80 }));
    const { context, page } = await openPage(proxy.url, { width: 1280, height: 900 });
    try {
      const resumes: string[] = [];
      page.on('request', (request) => {
        const last = request.headers()['last-event-id'];
        if (request.url().endsWith('/events') && last) resumes.push(last);
      });
      await page.getByLabel('Model').selectOption('fast');
      await page.getByLabel('Use the answer cache').uncheck();
      await ask(page, 'What pulls on the oceans to make tides?');
      const partial = await partialAnswer(page);

      proxy.cut();
      await waitForStatus(page, 'completed');
      expect(resumes.length).toBeGreaterThan(0);
      expect(resumes[0]).toMatch(/^\d+-\d+$/);
      expect(await page.locator('#connection').textContent()).toMatch(/resumed [1-9]\d*×/);
      const final = await answerOf(page);
      expect(final).toBe(ANSWER);
      expect(final.startsWith(partial)).toBe(true);
    } finally {
      await context.close();
    }
  });
});

describe('a browser’s own EventSource', () => {
  it('follows a question to its end, and resumes by itself with Last-Event-ID after a cut', async (ctx) => {
    skipWithoutChromium(ctx);
    llm.reply(() => ({ text: ANSWER, chunkDelayMs: 80 }));
    const { context, page } = await openPage(proxy.url, { width: 800, height: 600 });
    try {
      const asked = await askq.ask('What pulls on the oceans, by EventSource?', { cache: false });
      const resumes: string[] = [];
      // The browser adds Last-Event-ID itself, below what request.headers() shows.
      page.on('request', (request) => {
        void request.allHeaders().then((headers) => {
          const last = headers['last-event-id'];
          if (request.url().endsWith('/events') && last) resumes.push(last);
        });
      });
      // The browser's EventSource, not askq's page: what any web client would use.
      const following = page.evaluate(
        ({ path, names }) =>
          new Promise<Array<{ type: string; id: string; data: string }>>((resolve, reject) => {
            const seen: Array<{ type: string; id: string; data: string }> = [];
            const source = new EventSource(path);
            const take = (e: { type: string; lastEventId: string; data: string }) => {
              seen.push({ type: e.type, id: e.lastEventId, data: e.data });
              if (e.type === 'completed' || e.type === 'failed' || e.type === 'cancelled') {
                source.close();
                resolve(seen);
              }
            };
            for (const type of names) {
              source.addEventListener(
                type,
                take as unknown as Parameters<typeof source.addEventListener>[1],
              );
            }
            setTimeout(() => reject(new Error(`no end: ${JSON.stringify(seen)}`)), 20_000);
          }),
        { path: new URL(asked.events).pathname, names: EVENT_NAMES },
      );
      // Cut once some tokens have come: the browser reconnects on its own.
      const redis = new Redis(inject('redisUrl'));
      const logged = async () =>
        (await redis.xrange(createKeys(askq.prefix).events(asked.id), '-', '+')).map(
          ([id, fields]) => ({ id, event: fields[fields.indexOf('e') + 1] }),
        );
      await vi.waitFor(async () => {
        if ((await logged()).filter((e) => e.event === 'token').length < 2)
          throw new Error('not yet');
      });
      proxy.cut();
      const seen = await following;
      expect(seen.at(-1)?.type).toBe('completed');
      expect(resumes.length).toBeGreaterThan(0);
      // Nothing lost, nothing repeated: the ids are the log's, once each, in order.
      expect(seen.map((e) => e.id)).toEqual((await logged()).map((e) => e.id));
      redis.disconnect();
      const text = seen
        .filter((e) => e.type === 'token')
        .map((e) => (JSON.parse(e.data) as { text: string }).text);
      expect(text.join('')).toBe(ANSWER);
    } finally {
      await context.close();
    }
  });
});

describe('the demo page with auth on', () => {
  let secured: TestAskq;
  let securedProxy: Proxy;

  beforeAll(async () => {
    if (SKIP_REASON) return;
    secured = await startAskq({
      env: { LLM_BASE_URL: llm.baseURL, TOKEN_BATCH_MS: '10', API_KEYS: `acme:${API_KEY}` },
    });
    const auth = { authorization: `Bearer ${API_KEY}` };
    const res = await secured.post('/v1/documents', { documents: DOCS }, auth);
    expect(res.status).toBe(202);
    const { ingestionId } = (await res.json()) as { ingestionId: string };
    await waitForIngestion(secured.url, ingestionId, auth);
    securedProxy = await startProxy(Number(new URL(secured.url).port));
  });

  afterAll(async () => {
    await securedProxy?.close();
    await secured?.stop();
  });

  it('asks for the key, keeps it in the session, and answers with it (keyboard only)', async (ctx) => {
    skipWithoutChromium(ctx);
    llm.reply(() => ({ text: ANSWER, chunkDelayMs: 10 }));
    const { context, page } = await openPage(securedProxy.url, { width: 1280, height: 900 });
    try {
      await expect.poll(() => page.locator('#collection-hint').textContent()).toContain('API key');
      expect(await page.locator('#auth-details').getAttribute('open')).not.toBeNull();

      // Without the key: the API's error, code and message, shown where a screen reader hears it.
      await ask(page, 'What causes tides?');
      await waitForStatus(page, 'failed');
      expect(await page.getByRole('alert').textContent()).toContain('UNAUTHORIZED');
      expect(await page.getByLabel('API key', { exact: true }).getAttribute('aria-invalid')).toBe(
        'true',
      );

      // With it, typed and sent from the keyboard alone.
      await page.getByLabel('API key', { exact: true }).focus();
      await page.keyboard.type(API_KEY);
      await expect
        .poll(() => page.locator('#collection-hint').textContent())
        .toContain('default (2 documents)');
      await page.getByLabel('Question', { exact: true }).focus();
      await page.keyboard.press('Control+a');
      await page.keyboard.type('Why are there spring tides?');
      await page.keyboard.press('Control+Enter');
      await waitForStatus(page, 'completed');
      expect(await answerOf(page)).toBe(ANSWER);
      expect(await page.locator('#sources li').count()).toBeGreaterThan(0);

      // Kept for the tab's session (sessionStorage), not beyond it (localStorage).
      await page.reload();
      expect(await page.getByLabel('API key', { exact: true }).inputValue()).toBe(API_KEY);
      expect(await page.evaluate<number>('localStorage.length')).toBe(0);
      await expect
        .poll(() => page.locator('#collection-hint').textContent())
        .toContain('default (2 documents)');
    } finally {
      await context.close();
    }
  });
});

/** A TCP proxy to the API whose open connections a test can cut, as a network blip would. */
interface Proxy {
  readonly url: string;
  cut(): void;
  close(): Promise<void>;
}

async function startProxy(targetPort: number): Promise<Proxy> {
  const open = new Set<Socket>();
  const server: Server = createServer((client) => {
    const upstream = connect(targetPort, '127.0.0.1');
    open.add(client);
    const drop = () => {
      open.delete(client);
      client.destroy();
      upstream.destroy();
    };
    client.on('error', drop).on('close', drop);
    upstream.on('error', drop).on('close', drop);
    client.pipe(upstream);
    upstream.pipe(client);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    cut() {
      for (const socket of [...open]) socket.resetAndDestroy();
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of [...open]) socket.destroy();
        server.close(() => resolve());
      }),
  };
}
