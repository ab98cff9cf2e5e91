import { GRADIENTS_OPTION, gramNeeds } from './gradient-source';
import { dot, numbers, quadratic } from './scalars';
import { defineWeighting, type HostState } from './types';

const matVec = (g: readonly (readonly number[])[], x: readonly number[]) => g.map((row) => dot(numbers, row, x));

/** Euclidean projection onto the probability simplex (sort-based). */
export function projectOntoSimplex(v: readonly number[]): number[] {
  const u = [...v].sort((a, b) => b - a);
  let cumulative = 0;
  let theta = 0;
  u.forEach((x, i) => {
    cumulative += x;
    const t = (cumulative - 1) / (i + 1);
    if (x - t > 0) theta = t;
  });
  return v.map((x) => Math.max(x - theta, 0));
}

/**
 * CAGrad's inner problem, min over the simplex of F(w) = wᵀ·G·b + c·‖g₀‖·√(wᵀGw) with b = 1/T and
 * ‖g₀‖ = √(bᵀGb), solved by projected gradient descent with backtracking (F is convex; its
 * minimiser does not change when G is scaled, so G is normalised by its trace first).
 */
export function cagradInner(gram: readonly (readonly number[])[], c: number, iterations = 300): number[] {
  const T = gram.length;
  const trace = gram.reduce((a, row, t) => a + row[t], 0);
  if (!(trace > 0)) return new Array<number>(T).fill(1 / T);
  const g = gram.map((row) => row.map((v) => (v * T) / trace));
  const b = new Array<number>(T).fill(1 / T);
  const gb = matVec(g, b);
  const cn = c * Math.sqrt(Math.max(dot(numbers, b, gb), 0));
  const f = (w: number[]) => dot(numbers, w, gb) + cn * Math.sqrt(Math.max(quadratic(numbers, g, w), 0) + 1e-12);
  let w = [...b];
  let fw = f(w);
  let step = 1;
  for (let i = 0; i < iterations; i++) {
    const gw = matVec(g, w);
    const norm = Math.sqrt(Math.max(dot(numbers, w, gw), 0) + 1e-12);
    const grad = gb.map((v, k) => v + (cn * gw[k]) / norm);
    let moved = false;
    for (let tries = 0; tries < 30 && !moved; tries++) {
      const candidate = projectOntoSimplex(w.map((v, k) => v - step * grad[k]));
      const fc = f(candidate);
      if (fc <= fw - 1e-15) {
        w = candidate;
        fw = fc;
        moved = true;
        step *= 2;
      } else step /= 2;
    }
    if (!moved) break;
  }
  return w;
}

/**
 * CAGrad's update as weights on the task gradients: d = g₀ + (c·‖g₀‖/‖g_w‖)·g_w with g₀ the mean
 * gradient and w the inner problem's solution; divided by 1 + c² (rescale=1, the reference
 * default), by 1 + c (rescale=2) or not at all (rescale=0).
 */
export function cagradWeights(gram: readonly (readonly number[])[], c: number, rescale: number): number[] {
  const T = gram.length;
  const w = cagradInner(gram, c);
  const b = 1 / T;
  const meanNorm = Math.sqrt(Math.max(gram.flat().reduce((a, v) => a + v, 0), 0)) / T;
  const wNorm = Math.sqrt(Math.max(quadratic(numbers, gram, w), 0));
  const lambda = (c * meanNorm) / (wNorm + 1e-30);
  const divisor = rescale === 1 ? 1 + c * c : rescale === 2 ? 1 + c : 1;
  return w.map((wt) => (b + lambda * wt) / divisor);
}

interface CagradState extends HostState {
  weights: number[];
}

/**
 * CAGrad. The inner problem needs an iterative solve, so it runs on the host: after each step the
 * host solves it on that step's Gram matrix and feeds the weights to the next step (one step
 * stale; the trainer then runs one step per ONNX Runtime run). The first step uses the mean gradient.
 */
export const cagrad = defineWeighting({
  name: 'cagrad',
  doc: 'CAGrad: the update within c·‖g₀‖ of the mean gradient that maximises the worst task’s improvement; host solve on the Gram matrix; one step stale',
  paper: {
    title: 'Conflict-Averse Gradient Descent for Multi-task Learning',
    authors: 'Bo Liu, Xingchao Liu, Xiaojie Jin, Peter Stone, Qiang Liu',
    year: 2021,
    url: 'https://arxiv.org/abs/2110.14048',
  },
  kind: 'gradient',
  variant: 'one step stale',
  options: {
    c: { kind: 'number', doc: 'radius c of the ball around the mean gradient', default: 0.4, min: 0 },
    rescale: { kind: 'number', doc: '0: none, 1: divide by 1 + c², 2: divide by 1 + c', default: 1, min: 0, max: 2, integer: true },
    gradients: GRADIENTS_OPTION,
  },
  needs: gramNeeds,
  graph: ({ hostInput }) => ({ weights: hostInput('weights') }),
  host: {
    init: (T): CagradState => ({ weights: new Array<number>(T).fill(1 / T) }),
    feeds: (state) => ({ inputs: { weights: (state as CagradState).weights } }),
    afterStep: (state, { gram }, o): CagradState => ({ weights: gram ? cagradWeights(gram, Number(o.c), Number(o.rescale)) : (state as CagradState).weights }),
    stepsPerRun: 1,
  },
});
