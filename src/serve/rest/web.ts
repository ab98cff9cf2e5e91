/** Everything the web app needs from the REST server, as one Router: its files, model files, weights uploads. */
import express from 'express';
import type { JobManager } from '../../finetune/manager';
import { createModelFilesRouter } from './model-files';
import { createWebAppRouter, type WebAppOptions } from './web-app';
import type { Route } from './respond';
import { createWeightsRouter } from './weights';

export interface WebOptions extends WebAppOptions {
  models: string;
  /** Weights uploads need the fine-tune job system (its keys, its per-model slot, its gate). */
  finetune?: JobManager;
  onServingChanged?: (model: string) => Promise<void> | void;
  /** Where a weights upload reports what it did. */
  log?: (message: string) => void;
  /** The server's route wrapper: every endpoint runs as a service call. */
  route: Route;
}

export function createWebRouter(options: WebOptions): express.Router {
  const router = express.Router();
  router.use(createWebAppRouter(options));
  router.use(createModelFilesRouter(options.models, options.route));
  if (options.finetune) router.use(createWeightsRouter(options.finetune, options.route, { models: options.models, onServingChanged: options.onServingChanged, log: options.log }));
  return router;
}
