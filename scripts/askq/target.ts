// Where the askq the commands talk to is, and with which key: ASKQ_URL and ASKQ_API_KEY.
import { withoutTrailingSlashes } from '../lib/base-url.js';
import { usageError } from './cli.js';

/** The environment every command's usage text ends with. */
export const ENVIRONMENT = `Environment:
  ASKQ_URL      askq API base URL (default http://localhost:3000)
  ASKQ_API_KEY  sent as "Authorization: Bearer <key>" when set`;

/** A running askq: its base URL (no trailing slash), the key, and the headers that send it. */
export interface Target {
  url: string;
  apiKey: string | undefined;
  headers: Record<string, string>;
}

/** ASKQ_URL and ASKQ_API_KEY; a URL that is not http(s) is bad usage of the command. */
export function loadTarget(usage: string, env: NodeJS.ProcessEnv = process.env): Target {
  const url = withoutTrailingSlashes(env.ASKQ_URL || 'http://localhost:3000');
  if (!URL.canParse(url) || !/^https?:$/.test(new URL(url).protocol)) {
    throw usageError(usage, `ASKQ_URL is not an http(s) URL: ${url}`);
  }
  const apiKey = env.ASKQ_API_KEY || undefined;
  return { url, apiKey, headers: apiKey ? { authorization: `Bearer ${apiKey}` } : {} };
}

/** `npm run` starts scripts in the package root; paths are meant from where the user typed them. */
export const invocationCwd = () =>
  process.env.npm_lifecycle_event === 'askq' && process.env.INIT_CWD
    ? process.env.INIT_CWD
    : process.cwd();

/** What to tell a user whose askq does not answer. */
export const startHint = (target: Pick<Target, 'url'>) =>
  `Start askq (npm start) or set ASKQ_URL to where it runs (now ${target.url}).`;
