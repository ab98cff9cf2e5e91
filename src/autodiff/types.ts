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
  /**
   * The node producing `value` when `node` is the only consumer of its outputs and none of them is a
   * seed or a value whose gradient was asked for; a rule may then differentiate through it (see Absorbed).
   */
  soleProducer(value: string): Node | undefined;
  /** Whether `value` needs a gradient. */
  wants(value: string): boolean;
}

/**
 * Gradients for the inputs of `through`, a sole producer of an input of the rule's node: the rule
 * differentiated both nodes at once, and `through` is skipped afterwards.
 */
export interface Absorbed {
  through: Node;
  grads: (string | undefined)[];
}

/** A vector-Jacobian product: returns the gradient for each input (undefined for none). */
export type GradRule = (ctx: GradContext) => (string | undefined)[] | Absorbed;
