import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { storageConformance } from './conformance.ts';
import { LocalStorage } from './local.ts';

storageConformance('local disk', async () => new LocalStorage(await mkdtemp(join(tmpdir(), 'sc-local-'))));
