/**
 * Whether this run is CI's: `CI` set to anything but empty, `0` or `false` (GitHub sets `true`,
 * others `1`). Under CI no test may skip because a tool or service is missing; it must fail.
 */
export function isCI(env: NodeJS.ProcessEnv = process.env): boolean {
  return env.CI !== undefined && !['', '0', 'false'].includes(env.CI.trim().toLowerCase());
}
