/**
 * BatchNormalization (ONNX inference form: y = (x − mean)/√(var + ε)·scale + bias, per channel on
 * axis 1) and its gradient.
 *
 * ONNX Runtime's inference builds do not run BatchNormalization's training mode, so training-mode
 * batch norm is emitted as `batchStatistics` (batch mean and biased variance) feeding the
 * inference-form op. Its rule then has two cases:
 * - mean and var are arbitrary inputs (evaluation mode): the plain vector-Jacobian product for all
 *   five inputs;
 * - mean and var are the batch statistics of x, as `batchStatistics` emits them: the rule returns
 *   the total derivative for x, the paths through the mean and the variance included, in the fused
 *   form dx = scale/σ · (g − mean(g) − x̂·mean(g·x̂)), and no gradient for mean and var, so the
 *   statistics' nodes are not differentiated one by one (fewer full-size passes).
 */
import type { GraphBuilder } from '../onnx/builder';
import type { Node } from '../onnx/ir';
import { getAttr } from '../onnx/ir';
import { expandLike, range, reducedCount, reductionAxes, scalarLike } from './helpers';
import type { GradContext } from './types';

/** PyTorch's BatchNorm2d defaults. */
export const BN_EPSILON = 1e-5;
export const BN_MOMENTUM = 0.1;

/** Every axis but the channel axis 1. */
function statisticsAxes(rank: number): number[] {
  return [0, ...range(rank - 2, 2)];
}

export interface BatchStatistics {
  /** [C] batch mean. */
  mean: string;
  /** [C] biased batch variance (divided by the count), as training-mode batch norm normalises with. */
  variance: string;
  /** Values per channel (N·H·W), as a float scalar. */
  count: string;
}

/** Batch mean and variance of x over every axis but axis 1, in the form batchNormGrad recognises. */
export function batchStatistics(b: GraphBuilder, x: string): BatchStatistics {
  const axes = statisticsAxes(b.shape(x).length);
  const meanKept = b.op('ReduceMean', [x], { axes, keepdims: 1 });
  const centred = b.op('Sub', [x, meanKept]);
  const variance = b.op('ReduceMean', [b.op('Mul', [centred, centred])], { axes, keepdims: 0 });
  const mean = b.op('Reshape', [meanKept, b.ints([-1])]);
  return { mean, variance, count: reducedCount(b, producerOf(b, meanKept)!) };
}

function producerOf(b: GraphBuilder, value: string): Node | undefined {
  for (let i = b.nodes.length - 1; i >= 0; i--) if (b.nodes[i].outputs.includes(value)) return b.nodes[i];
  return undefined;
}

function sameAxes(b: GraphBuilder, node: Node, axes: number[]): boolean {
  return (reductionAxes(b, node) ?? []).join() === axes.join();
}

/** The pattern batchStatistics emits, traced back from a BatchNormalization node: x − mean(x) and the mean's node. */
function batchStatisticsOf(b: GraphBuilder, node: Node): { centred: string; meanNode: Node } | undefined {
  const [x, , , mean, variance] = node.inputs;
  const axes = statisticsAxes(b.shape(x).length);
  const varNode = producerOf(b, variance);
  if (varNode?.opType !== 'ReduceMean' || getAttr(varNode, 'keepdims', 'int', 1) !== 0 || !sameAxes(b, varNode, axes)) return undefined;
  const square = producerOf(b, varNode.inputs[0]);
  if (square?.opType !== 'Mul' || square.inputs[0] !== square.inputs[1]) return undefined;
  const centred = square.inputs[0];
  const sub = producerOf(b, centred);
  if (sub?.opType !== 'Sub' || sub.inputs[0] !== x) return undefined;
  const meanNode = producerOf(b, sub.inputs[1]);
  if (meanNode?.opType !== 'ReduceMean' || meanNode.inputs[0] !== x || getAttr(meanNode, 'keepdims', 'int', 1) !== 1 || !sameAxes(b, meanNode, axes)) return undefined;
  const flat = producerOf(b, mean);
  if (flat?.opType !== 'Reshape' || flat.inputs[0] !== sub.inputs[1]) return undefined;
  return { centred, meanNode };
}

export function batchNormGrad({ b, node, dy, needs }: GradContext): (string | undefined)[] {
  const [x, scale, , mean, variance] = node.inputs;
  const g = dy[0];
  if (!g) return node.inputs.map(() => undefined);
  if (getAttr(node, 'training_mode', 'int', 0) !== 0) throw new Error(`BatchNormalization gradient (node ${node.name}) supports training_mode 0 only`);
  const rank = b.shape(x).length;
  const axes = statisticsAxes(rank);
  // [C] → [1, C, 1, …] so that it broadcasts over x.
  const perChannel = (v: string) => b.op('Reshape', [v, b.ints([1, -1, ...new Array(rank - 2).fill(1)])]);
  const sumOverChannel = (v: string) => b.op('ReduceSum', [v, b.ints(axes)], { keepdims: 0 });
  const epsilon = getAttr(node, 'epsilon', 'float', BN_EPSILON);
  const inv = b.op('Reciprocal', [b.op('Sqrt', [b.op('Add', [variance, scalarLike(b, epsilon, variance)])])]);
  const gain = b.op('Mul', [scale, inv]);
  let sumG: string | undefined;
  const gSum = () => (sumG ??= sumOverChannel(g));

  const stats = batchStatisticsOf(b, node);
  if (stats) {
    const s = sumOverChannel(b.op('Mul', [g, stats.centred]));
    let dx: string | undefined;
    if (needs[0]) {
      const count = reducedCount(b, stats.meanNode);
      const meanG = b.op('Div', [gSum(), count]);
      const slope = b.op('Div', [b.op('Mul', [b.op('Mul', [inv, inv]), s]), count]);
      const inner = b.op('Sub', [b.op('Sub', [g, perChannel(meanG)]), b.op('Mul', [stats.centred, perChannel(slope)])]);
      dx = b.op('Mul', [inner, perChannel(gain)]);
    }
    return [dx, needs[1] ? b.op('Mul', [s, inv]) : undefined, needs[2] ? gSum() : undefined, undefined, undefined];
  }

  let sumGCentred: string | undefined;
  const s = () => (sumGCentred ??= sumOverChannel(b.op('Mul', [g, b.op('Sub', [x, perChannel(mean)])])));
  return [
    needs[0] ? b.op('Mul', [g, perChannel(gain)]) : undefined,
    needs[1] ? b.op('Mul', [s(), inv]) : undefined,
    needs[2] ? gSum() : undefined,
    needs[3] ? b.op('Neg', [b.op('Mul', [gSum(), gain])]) : undefined,
    // d/dvar of (x − mean)·scale·(var + ε)^(−1/2) = −½·(x − mean)·scale·inv³
    needs[4] ? b.op('Mul', [b.op('Mul', [s(), b.op('Mul', [gain, b.op('Mul', [inv, inv])])]), scalarLike(b, -0.5, variance)]) : undefined,
  ];
}

/** GlobalAveragePool: each input element gets dy / (H·W) of its channel. */
export function globalAveragePoolGrad({ b, node, dy }: GradContext): (string | undefined)[] {
  const x = node.inputs[0];
  const spatial = b.shape(x).slice(2);
  if (spatial.some((d) => typeof d !== 'number')) throw new Error(`GlobalAveragePool gradient (node ${node.name}) needs static spatial dims, got [${b.shape(x)}]`);
  const area = (spatial as number[]).reduce((p, q) => p * q, 1);
  return [expandLike(b, b.op('Div', [dy[0]!, scalarLike(b, area, x)]), x)];
}
