import type { GraphBuilder } from '../onnx/builder';
import type { Node } from '../onnx/ir';

/** What a gradient rule sees: the forward node, the upstream gradients of its outputs, and where to emit ops. */
export interface GradContext {
  b: GraphBuilder;
  node: Node;
  /** Gradient of the loss with respect to each output of `node`; undefined where none flows. */
  dy: (string | undefined)[];
  /** Whether each input of `node` needs a gradient (rules may skip work for the others). */
  needs: boolean[];
}

/** A vector-Jacobian product: returns the gradient for each input (undefined for none). */
export type GradRule = (ctx: GradContext) => (string | undefined)[];
