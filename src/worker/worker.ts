import * as Comlink from 'comlink';
import { WebtuneEngine } from '../app/engine';
import { TEST_HOOKS } from '../testing/hooks';
import { testHooksApi } from '../testing/worker-api';

const engine = new WebtuneEngine();
Comlink.expose(TEST_HOOKS ? Object.assign(engine, testHooksApi) : engine);
