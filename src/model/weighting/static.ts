import { defineWeighting } from './types';

/** Static λ: the loss Σ_t λ_t·L_t, with λ fixed (`--task-weights`); equal weighting when λ = 1, 1, 1. */
export const staticWeighting = defineWeighting({
  name: 'static',
  doc: 'static λ (equal weighting when λ = 1, 1, 1): minimises Σ λ_t·L_t; exact',
  kind: 'loss',
  variant: 'exact',
  options: {},
  needs: () => ({ gradients: 'losses' }),
});
