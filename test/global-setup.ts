import type { TestProject } from 'vitest/node';
import { startTestServices } from './support/services.js';

declare module 'vitest' {
  export interface ProvidedContext {
    redisUrl: string;
    chromaUrl: string;
  }
}

/** One Redis and one Chroma for the whole run; each test file isolates itself by key prefix. */
export default async function setup(project: TestProject) {
  const services = await startTestServices();
  project.provide('redisUrl', services.redisUrl);
  project.provide('chromaUrl', services.chromaUrl);
  return () => services.stop();
}
