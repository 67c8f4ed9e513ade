import { it } from 'vitest';
import { optOutVariable } from '../helpers/container-engine.js';

// Run in place of the container tests when they are opted out: the summary counts it as skipped
// and its name says why.
it.skip(`container tests (images, RabbitMQ 4): not run, ${optOutVariable}=1 is set`, () => undefined);
