import * as Comlink from 'comlink';
import { WebtuneEngine } from '../app/engine';

Comlink.expose(new WebtuneEngine());
