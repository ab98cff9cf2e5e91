/** Everything the web app needs from the REST server, as one Router: its files, model files, weights uploads. */
import express from 'express';
import type { JobManager } from '../finetune/manager';
import { createModelFilesRouter } from './model-files';
import { createWebAppRouter, type WebAppOptions } from './web-app';
import { createWeightsRouter } from './weights-rest';

export interface WebOptions extends WebAppOptions {
  models: string;
  /** Weights uploads need the fine-tune job system (its keys, its per-model slot, its gate). */
  finetune?: JobManager;
  onServingChanged?: (model: string) => Promise<void> | void;
  log?: (message: string) => void;
}

export function createWebRouter(options: WebOptions): express.Router {
  const router = express.Router();
  router.use(createWebAppRouter(options));
  router.use(createModelFilesRouter(options.models));
  if (options.finetune) router.use(createWeightsRouter(options.finetune, { models: options.models, onServingChanged: options.onServingChanged, log: options.log }));
  return router;
}
