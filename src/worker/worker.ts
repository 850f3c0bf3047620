import * as Comlink from 'comlink';
import { WebtuneEngine } from './engine';

Comlink.expose(new WebtuneEngine());
